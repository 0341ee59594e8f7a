import Conntrack
import KernelIO
import NetCore
import Netlink

/// What `pressure --reap` did with one stale entry.
public struct StaleReapOutcome: Sendable {
    public enum Result: String, Sendable {
        case deleted
        /// A dry run (no --yes): it qualified.
        case wouldDelete = "would-delete"
        /// Gone, or changed, when looked up again: not touched.
        case skipped
        case failed
    }

    public var entry: ConntrackEntry
    public var result: Result
    public var detail: String
}

/// Deletes conntrack entries whose DNAT points at an address that is no endpoint, each
/// looked up again by its reply tuple just before it goes: an entry that expired, or
/// whose target has become live again, is left alone.
public struct StaleEntryReaper: Sendable {
    public typealias TransportFactory = @Sendable () throws -> any NetlinkTransport
    let makeTransport: TransportFactory

    public init(transportFactory: @escaping TransportFactory) {
        self.makeTransport = transportFactory
    }

    public init(namespace: NetworkNamespace) {
        self.init(transportFactory: { try namespace.run { try NetlinkSocket(bus: .netfilter) } })
    }

    /// - Parameter stillStale: the re-check on the entry as it is now.
    public func reap(
        _ entries: [ConntrackEntry], dryRun: Bool, stillStale: (ConntrackEntry) -> Bool
    ) throws -> [StaleReapOutcome] {
        let transport = try makeTransport()
        var sequence = UInt32.random(in: 1...(UInt32.max / 2))
        var outcomes: [StaleReapOutcome] = []
        for entry in entries {
            let key = ReplyTupleKey(replyOf: entry)
            sequence &+= 1
            var current: ConntrackEntry?
            do {
                _ = try NetlinkDump.run(
                    transport: transport,
                    request: ConntrackRequest.getByReply(key, protocolNumber: entry.protocolNumber, acknowledged: true, sequence: sequence),
                    sequence: sequence
                ) { buffer, message in
                    if ConntrackMessageDecoder.carriesEntry(message) { current = try ConntrackMessageDecoder.decode(buffer, message) }
                }
            } catch let error as NetlinkKernelError where error.errno == .noSuchFileOrDirectory {
                outcomes.append(StaleReapOutcome(entry: entry, result: .skipped, detail: "gone before it was looked up again"))
                continue
            }
            guard let current, current.original == entry.original, current.reply.source == entry.reply.source, stillStale(current) else {
                outcomes.append(StaleReapOutcome(entry: entry, result: .skipped, detail: "changed since the pass: no longer the same stale entry"))
                continue
            }
            let target = "DNAT to \(current.reply.sourceEndpoint), no endpoint"
            if dryRun {
                outcomes.append(StaleReapOutcome(entry: current, result: .wouldDelete, detail: target))
                continue
            }
            sequence &+= 1
            do {
                _ = try NetlinkDump.run(
                    transport: transport,
                    request: ConntrackRequest.delete(replyOf: key, protocolNumber: entry.protocolNumber, sequence: sequence),
                    sequence: sequence
                ) { _, _ in }
                outcomes.append(StaleReapOutcome(entry: current, result: .deleted, detail: target))
            } catch let error as NetlinkKernelError where error.errno == .noSuchFileOrDirectory {
                outcomes.append(StaleReapOutcome(entry: current, result: .skipped, detail: "expired between the check and the delete"))
            } catch let error as NetlinkKernelError {
                outcomes.append(StaleReapOutcome(entry: current, result: .failed, detail: "\(error)"))
            }
        }
        return outcomes
    }
}

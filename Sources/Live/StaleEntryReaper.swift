import Conntrack
import KernelIO
import NetCore
import Netlink
import Pressure

/// Deletes conntrack entries whose DNAT points at an address that is no endpoint, each
/// looked up again by its reply tuple just before it goes: an entry that expired, or
/// that now stands for another flow or another target (the tuple reused), is left alone.
/// The target is what was judged stale, so the same target is still stale.
public struct StaleEntryReaper: Sendable {
    public typealias TransportFactory = @Sendable () throws -> any NetlinkTransport
    let makeTransport: TransportFactory

    public init(transportFactory: @escaping TransportFactory) {
        self.makeTransport = transportFactory
    }

    public init(namespace: NetworkNamespace) {
        self.init(transportFactory: { try namespace.run { try NetlinkSocket(bus: .netfilter) } })
    }

    public func reap(_ entries: [ConntrackEntry], dryRun: Bool) throws -> StaleReapRun {
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
            } catch {
                // This entry's failure is its row; the others are still judged.
                outcomes.append(StaleReapOutcome(entry: entry, result: .failed, detail: "looking it up again failed: \(error)", cause: error))
                continue
            }
            guard let current, current.protocolNumber == entry.protocolNumber, current.original == entry.original,
                current.reply.sourceEndpoint == entry.reply.sourceEndpoint
            else {
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
                    request: ConntrackRequest.delete(replyOf: key, protocolNumber: entry.protocolNumber, id: current.id, sequence: sequence),
                    sequence: sequence
                ) { _, _ in }
                outcomes.append(StaleReapOutcome(entry: current, result: .deleted, detail: target))
            } catch let error as NetlinkKernelError where error.errno == .noSuchFileOrDirectory {
                outcomes.append(StaleReapOutcome(entry: current, result: .skipped, detail: "expired, or replaced by another entry, between the check and the delete"))
            } catch {
                outcomes.append(StaleReapOutcome(entry: current, result: .failed, detail: "\(error)", cause: error))
            }
        }
        return StaleReapRun(dryRun: dryRun, outcomes: outcomes)
    }
}

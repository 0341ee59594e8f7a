import Conntrack
import Dispatch
import KernelIO
import NetCore
import Netlink
import Synchronization
import SystemPackage

/// Finds conntrack entries by reply tuple, one GET per flow, many GETs per sendmsg.
///
/// This is what makes diagnosis cost proportional to the suspect sockets instead of
/// the table: 2,000 lookups cost what a 262,144-entry dump costs in its first 1%.
public struct ConntrackReplyLookup: Sendable {
    public typealias TransportFactory = @Sendable () throws -> any NetlinkTransport

    let makeTransport: TransportFactory
    /// GETs per sendmsg; their replies must fit the receive buffer together.
    public var batchSize = 128
    /// At most this many sockets and threads at once.
    public var parallelism = 2
    /// Room for one GET reply: an entry with every attribute (counters, labels, helper,
    /// sequence adjustments) stays well under 1 KiB; an error reply echoes the request.
    static let replySlotBytes = 2048

    public init(transportFactory: @escaping TransportFactory) {
        self.makeTransport = transportFactory
    }

    /// A lookup in a namespace, with a receive buffer sized for a batch of replies.
    public init(namespace: NetworkNamespace) {
        self.init(transportFactory: {
            try namespace.run { try NetlinkSocket(bus: .netfilter, receiveBufferBytes: 4 << 20) }
        })
    }

    /// Why the fast path is not available here, so a caller can fall back to a dump.
    public struct Unsupported: SystemCallFailure, CustomStringConvertible {
        /// The kernel's refusal (EINVAL on kernels before reply-only GETs, EOPNOTSUPP).
        public var refusal: NetlinkKernelError
        public var errno: Errno { refusal.errno }
        public var description: String { "conntrack lookup by reply tuple refused: \(refusal)" }
    }

    /// The entry for each key that has one. Keys without an entry are absent.
    /// - Throws: `Unsupported` when the kernel refuses reply-only GETs (EINVAL,
    ///   EOPNOTSUPP); `ConntrackReadError` for permission and other failures.
    public func entries(for keys: [ReplyTupleKey]) throws -> [ReplyTupleKey: ConntrackEntry] {
        let unique = Array(Set(keys)).sorted()
        // The kernel answers each GET inside sendmsg (~4 µs each): with thousands of
        // keys, two sockets on two threads halve the wait.
        let lanes = min(parallelism, max(1, unique.count / Self.keysPerExtraLane))
        guard lanes > 1 else { return try entries(unique, on: try makeTransport()) }
        let share = (unique.count + lanes - 1) / lanes
        let chunks = stride(from: 0, to: unique.count, by: share).map { Array(unique[$0..<min($0 + share, unique.count)]) }
        let results = Mutex<[Result<[ReplyTupleKey: ConntrackEntry], any Error>]>([])
        let group = DispatchGroup()
        for chunk in chunks.dropFirst() {
            group.enter()
            DispatchQueue(label: "ctdoctor.conntrack.lookup").async {
                let result = Result { try entries(chunk, on: try makeTransport()) }
                results.withLock { $0.append(result) }
                group.leave()
            }
        }
        let first = Result { try entries(chunks[0], on: try makeTransport()) }
        group.wait()
        var found = try first.get()
        for result in results.withLock({ $0 }) {
            found.merge(try result.get()) { kept, _ in kept }
        }
        return found
    }

    /// Below this many keys per lane, a second thread and socket cost more than they save.
    static let keysPerExtraLane = 512

    func entries(_ keys: [ReplyTupleKey], on transport: any NetlinkTransport) throws -> [ReplyTupleKey: ConntrackEntry] {
        guard !keys.isEmpty else { return [:] }
        var found: [ReplyTupleKey: ConntrackEntry] = [:]
        var pending = keys
        var sequence = UInt32.random(in: 1...(UInt32.max / 2))
        var size = batchSize
        var overruns = 0
        var buffer = [UInt8](repeating: 0, count: Self.replySlotBytes * batchSize)
        while !pending.isEmpty {
            let batch = Array(pending.prefix(size))
            var bySequence: [UInt32: ReplyTupleKey] = [:]
            var request: [UInt8] = []
            for key in batch {
                sequence &+= 1
                bySequence[sequence] = key
                request += ConntrackRequest.getByReply(key, sequence: sequence)
            }
            try transport.send(request)
            var answered = Set<UInt32>()
            do {
                while answered.count < batch.count {
                    if let socket = transport as? NetlinkSocket, try !socket.waitReadable(milliseconds: 5000) {
                        throw ConntrackReadError.dumpFailed(cause: nil, note: "no conntrack reply within 5 s to \(batch.count - answered.count) lookups")
                    }
                    let counts = try transport.receiveMany(into: &buffer, slotSize: Self.replySlotBytes)
                    for (slot, count) in counts.enumerated() {
                        let start = slot * Self.replySlotBytes
                        var reader = NetlinkMessageReader(buffer, range: start..<(start + count))
                        while let message = try reader.next() {
                            guard let key = bySequence[message.sequence] else { continue }
                            answered.insert(message.sequence)
                            if message.type == NetlinkConstant.error {
                                try Self.checkLookupError(buffer, message)
                            } else if ConntrackMessageDecoder.carriesEntry(message) {
                                found[key] = try ConntrackMessageDecoder.decode(buffer, message)
                            }
                        }
                    }
                }
            } catch let error as KernelIOError where error.errno == .noBufferSpace {
                // Replies overran the socket: ask again, in smaller batches, for what
                // went unanswered. The kernel has finished the whole batch by now.
                overruns += 1
                guard overruns < 8 else { throw ConntrackReadError.dumpFailed(cause: error, note: "on every retry") }
                size = max(1, size / 4)
                if let socket = transport as? NetlinkSocket {
                    while (try? socket.waitReadable(milliseconds: 0)) == true {
                        _ = try? socket.receiveMany(into: &buffer, slotSize: Self.replySlotBytes)
                    }
                }
            }
            let unanswered = bySequence.filter { !answered.contains($0.key) }.map(\.value)
            pending = Array(pending.dropFirst(batch.count)) + unanswered.sorted()
        }
        return found
    }

    /// ENOENT is the answer "no such entry"; anything else is a failure.
    static func checkLookupError(_ buffer: [UInt8], _ message: NetlinkMessage) throws {
        do {
            try NetlinkDump.checkErrorMessage(buffer, message)
        } catch let error as NetlinkKernelError {
            switch error.errno {
            case .noSuchFileOrDirectory: return
            case .invalidArgument, .notSupported: throw Unsupported(refusal: error)
            case .notPermitted, .permissionDenied:
                throw ConntrackReadError.permissionDenied(cause: error, note: "its lookups by reply tuple were refused")
            default: throw ConntrackReadError.dumpFailed(cause: error)
            }
        }
    }
}

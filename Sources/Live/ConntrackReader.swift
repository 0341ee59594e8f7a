import Conntrack
import KernelIO
import Netlink
import SystemPackage

/// Why the table could not be read at all, with the error that said so.
public enum ConntrackReadError: WrapsCause, Sendable, CustomStringConvertible {
    /// Netlink needs CAP_NET_ADMIN and the /proc fallback failed too (`cause`: the
    /// fallback's error), or, with a `note`, a refusal no fallback can answer.
    case permissionDenied(cause: any Error, note: String? = nil)
    /// The kernel has no conntrack here (module not loaded, or not built).
    case unavailable(cause: any Error)
    /// `cause` is nil when no error stands behind it (a pass that never completed).
    case dumpFailed(cause: (any Error)?, note: String? = nil)

    public var cause: (any Error)? {
        switch self {
        case .permissionDenied(let cause, _), .unavailable(let cause): cause
        case .dumpFailed(let cause, _): cause
        }
    }

    public var description: String {
        switch self {
        case .permissionDenied(let cause, let note?):
            "reading the conntrack table needs CAP_NET_ADMIN in this network namespace: \(note) (\(cause))"
        case .permissionDenied(let cause, nil):
            "reading the conntrack table needs CAP_NET_ADMIN in this network namespace (netlink answered EPERM), and the /proc fallback failed: \(cause)"
        case .unavailable(let cause):
            "conntrack is not available in this network namespace (is the nf_conntrack module loaded?): \(cause)"
        case .dumpFailed(let cause, let note):
            "conntrack dump failed: " + [cause.map { "\($0)" }, note].compactMap { $0 }.joined(separator: " ")
        }
    }
}

/// Reads the conntrack table of one network namespace.
///
/// Streams: each entry is decoded and handed over while the next datagram is still
/// being received, so memory stays flat however large the table is. Retries a dump the
/// kernel marks interrupted (NLM_F_DUMP_INTR) or that overran the socket (ENOBUFS) —
/// without handing over any entry twice, which bounds the retries to tables of
/// `maximumRememberedEntries` — and falls back to /proc/net/nf_conntrack when netlink
/// refuses for lack of CAP_NET_ADMIN.
public struct ConntrackReader: Sendable {
    /// Opens a fresh netlink socket in the right namespace, with a receive buffer size
    /// to ask for (nil for the default).
    public typealias TransportFactory = @Sendable (_ receiveBufferBytes: Int?) throws -> any NetlinkTransport
    /// Reads /proc/net/nf_conntrack (in the right namespace).
    public typealias FallbackFile = @Sendable () throws -> [UInt8]

    let makeTransport: TransportFactory
    let readFallbackFile: FallbackFile
    /// The most passes before giving up on a consistent dump.
    public var maximumPasses = 4
    /// The most entries the passes remember (8 bytes each) so that a retry hands none
    /// over twice: 262,144, 2 MiB. Past it a pass is not retried but reported
    /// inconsistent, so that memory stays flat on a node's largest tables instead of
    /// growing by 8–16 MB a million entries for a retry ctnetlink dumps hardly ever need.
    public var maximumRememberedEntries = 1 << 18

    public init(transportFactory: @escaping TransportFactory, fallbackFile: @escaping FallbackFile) {
        self.makeTransport = transportFactory
        self.readFallbackFile = fallbackFile
    }

    /// A reader for a namespace; its sockets and the fallback file are opened inside it.
    public init(namespace: NetworkNamespace, procfs: ProcFS = ProcFS()) {
        self.init(
            transportFactory: { bytes in
                try namespace.run { try NetlinkSocket(bus: .netfilter, receiveBufferBytes: bytes) }
            },
            fallbackFile: {
                try namespace.run { try procfs.readNet("nf_conntrack") }
            })
    }

    /// An entry's identity across dump passes: its id with its original tuple and zone,
    /// hashed to 64 bits (8 bytes an entry while a retried dump remembers them).
    static func identity(of entry: ConntrackEntry) -> UInt64? {
        guard let id = entry.id else { return nil }
        var hasher = Hasher()
        hasher.combine(id)
        hasher.combine(entry.protocolNumber)
        hasher.combine(entry.original)
        hasher.combine(entry.zone)
        return UInt64(bitPattern: Int64(hasher.finalize()))
    }

    /// Hands every entry matching `filter` to `body`, in kernel order.
    @discardableResult
    public func forEachEntry(
        matching filter: ConntrackFilter = .all,
        _ body: (ConntrackEntry) throws -> Void
    ) throws -> ConntrackReadReport {
        // Entries handed over in earlier passes, by id *and* tuple: ids are 32-bit hashes
        // and repeat in large tables, so an id alone would drop a different flow.
        var delivered: Set<UInt64> = []
        var deliveredThisPass: [UInt64] = []
        var remembering = true
        var retrying = false
        var matched = 0
        return try withRetries { transport, sequence in
            if retrying {
                delivered.formUnion(deliveredThisPass)
                deliveredThisPass.removeAll(keepingCapacity: true)
            }
            retrying = true
            return try NetlinkDump.runPipelined(
                transport: transport, request: ConntrackRequest.dump(sequence: sequence), sequence: sequence
            ) { buffer, message in
                guard ConntrackMessageDecoder.carriesEntry(message) else { return }
                let entry = try ConntrackMessageDecoder.decode(buffer, message)
                guard filter.matches(entry) else { return }
                if let key = Self.identity(of: entry) {
                    if !delivered.isEmpty && delivered.contains(key) { return }
                    if remembering {
                        if delivered.count + deliveredThisPass.count < maximumRememberedEntries {
                            deliveredThisPass.append(key)
                        } else {
                            remembering = false
                            deliveredThisPass = []
                        }
                    }
                } else {
                    // Without an id an entry cannot be told from a retry's copy of it.
                    remembering = false
                }
                matched += 1
                try body(entry)
            }
        } matched: {
            matched
        } canRetry: {
            remembering
        } fallback: { reason in
            let entries = try fallbackEntries()
            for entry in entries where filter.matches(entry) {
                matched += 1
                try body(entry)
            }
            return ConntrackReadReport(source: .procFile(reason: reason), matched: matched, passes: 1, consistent: true)
        }
    }

    /// Counts entries matching `filter`. Without a filter no entry is decoded: the
    /// messages are only counted, which is as cheap as a dump can be.
    public func count(matching filter: ConntrackFilter = .all) throws -> ConntrackReadReport {
        if !filter.isEmpty { return try forEachEntry(matching: filter) { _ in } }
        var counted = 0
        return try withRetries { transport, sequence in
            counted = 0
            return try NetlinkDump.run(
                transport: transport, request: ConntrackRequest.dump(sequence: sequence), sequence: sequence
            ) { _, message in
                if ConntrackMessageDecoder.carriesEntry(message) { counted += 1 }
            }
        } matched: {
            counted
        } fallback: { reason in
            let entries = try fallbackEntries()
            return ConntrackReadReport(source: .procFile(reason: reason), matched: entries.count, passes: 1, consistent: true)
        }
    }

    /// Reads everything into memory. For small tables and tests; listings stream.
    public func entries(matching filter: ConntrackFilter = .all) throws -> ([ConntrackEntry], ConntrackReadReport) {
        var entries: [ConntrackEntry] = []
        let report = try forEachEntry(matching: filter) { entries.append($0) }
        return (entries, report)
    }

    private func fallbackEntries() throws -> [ConntrackEntry] {
        let bytes: [UInt8]
        do {
            bytes = try readFallbackFile()
        } catch let error as KernelIOError where error.errno == .noSuchFileOrDirectory {
            throw ConntrackReadError.unavailable(cause: error)
        } catch {
            throw ConntrackReadError.permissionDenied(cause: error)
        }
        return try ConntrackTextParser.parse(bytes, source: "/proc/net/nf_conntrack").entries
    }

    /// Runs dump passes until one is clean, retrying interrupted or overrun passes with
    /// a fresh socket (a socket mid-dump cannot start another) while `canRetry` says a
    /// retry would hand no entry over twice.
    private func withRetries(
        pass: (any NetlinkTransport, UInt32) throws -> NetlinkDumpPass,
        matched: () -> Int,
        canRetry: () -> Bool = { true },
        fallback: (String) throws -> ConntrackReadReport
    ) throws -> ConntrackReadReport {
        var receiveBuffer: Int?
        var sequence = UInt32.random(in: 1...(UInt32.max / 2))
        for attempt in 1...maximumPasses {
            sequence &+= 1
            let transport: any NetlinkTransport
            do {
                transport = try makeTransport(receiveBuffer)
            } catch let error as KernelIOError where error.errno == .protocolNotSupported {
                throw ConntrackReadError.unavailable(cause: error)
            }
            do {
                let result = try pass(transport, sequence)
                let mayRetry = canRetry()
                if result.interrupted && attempt < maximumPasses && mayRetry { continue }
                return ConntrackReadReport(
                    source: .netlink, matched: matched(), passes: attempt, consistent: !result.interrupted,
                    stoppedRetrying: result.interrupted && attempt < maximumPasses && !mayRetry)
            } catch let error as KernelIOError where error.errno == .noBufferSpace {
                guard attempt < maximumPasses else {
                    throw ConntrackReadError.dumpFailed(cause: error, note: "after \(attempt) passes with growing buffers")
                }
                guard canRetry() else {
                    throw ConntrackReadError.dumpFailed(
                        cause: error, note: "after \(matched()) entries, more than a retry can skip without listing one twice")
                }
                receiveBuffer = (receiveBuffer ?? 1 << 20) * 4
            } catch let error as NetlinkKernelError
                where error.errno == .notPermitted || error.errno == .permissionDenied
            {
                guard matched() == 0 else { throw ConntrackReadError.dumpFailed(cause: error) }
                return try fallback(
                    "netlink dump refused with \(error.errno.symbol) (needs CAP_NET_ADMIN); read /proc/net/nf_conntrack instead")
            } catch let error as NetlinkKernelError
                where error.errno == .protocolNotSupported || error.errno == .noSuchFileOrDirectory
            {
                throw ConntrackReadError.unavailable(cause: error)
            } catch let error as NetlinkKernelError where error.errno == .invalidArgument && matched() == 0 {
                // nfnetlink's answer when no ctnetlink subsystem is registered
                // (nf_conntrack_netlink not loaded); the /proc file may still be there.
                return try fallback(
                    "netlink dump refused with EINVAL (is nf_conntrack_netlink loaded?); read /proc/net/nf_conntrack instead")
            } catch let error as NetlinkFramingError {
                throw ConntrackReadError.dumpFailed(cause: error)
            } catch let error as NetlinkKernelError {
                throw ConntrackReadError.dumpFailed(cause: error)
            } catch let error as KernelIOError {
                throw ConntrackReadError.dumpFailed(cause: error)
            }
        }
        throw ConntrackReadError.dumpFailed(cause: nil, note: "no pass completed")
    }
}

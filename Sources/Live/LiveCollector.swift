import Conntrack
import Diagnosis
import Dispatch
import KernelIO
import NetCore
import Netlink
import Sockets
import Synchronization

/// Gathers a `DiagnosisInput` from a live network namespace, at a cost proportional to
/// the suspect sockets rather than to the tables:
///
/// 1. sock_diag, filtered in the kernel by state (LISTEN, then FIN_WAIT2, ESTABLISHED
///    and SYN_RECV) and by local port (the capture ports, in bytecode), each socket sorted
///    as it is decoded so only the ones with a use are held;
/// 2. one conntrack GET by reply tuple per FIN_WAIT2 suspect, batched;
/// 3. a second filtered sock_diag dump for the app's ends of those flows;
/// 4. per-namespace sysctls and counters, the proxy's process facts, and the rules —
///    the latter read on a thread of their own while the rest runs.
///
/// Where the kernel lacks a fast path (no sock_diag, no reply-only GET) it falls back to
/// /proc/net/tcp or a full conntrack dump, and says so in the input's notices.
public struct LiveCollector: Sendable {
    public var namespace: NetworkNamespace
    public var procfs: ProcFS
    /// Receives each phase's name and wall time (CTDOCTOR_TRACE=1 prints them).
    public var trace: (@Sendable (String, Duration) -> Void)?
    /// Up to this many TCP sockets in the namespace, one walk serves the capture ports
    /// and the app sockets (`defaultSingleWalkSockets`).
    public var singleWalkSockets = LiveCollector.defaultSingleWalkSockets
    /// The processes a caller already found living in the namespace (a node sweep's
    /// inventory): the listeners' owners are looked for among them first, without
    /// reading every process's namespace link again for each namespace swept.
    public var processesInside: [Int32]?

    public init(namespace: NetworkNamespace, procfs: ProcFS = ProcFS(), trace: (@Sendable (String, Duration) -> Void)? = nil) {
        self.namespace = namespace
        self.procfs = procfs
        self.trace = trace
    }

    /// Runs one phase, timing it when tracing.
    func phase<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        guard let trace else { return try body() }
        let start = ContinuousClock.now
        defer { trace(name, ContinuousClock.now - start) }
        return try body()
    }

    /// - Parameters:
    ///   - profile: the sidecar's ports when known; otherwise every known profile's
    ///     capture ports are inspected.
    ///   - stallAfterSeconds: accepted connections silent at least this long are kept
    ///     (and looked up in conntrack) for stall detection; the others are not.
    public func collect(profile: SidecarProfile?, stallAfterSeconds: Double = StallAnalysis.defaultThresholdSeconds) throws -> DiagnosisInput {
        // The capture ports, and ambient's HBONE listener (15008) when the mesh may be
        // ambient: detection tells it from a sidecar by that listener.
        let ports = profile.map { Array(Set($0.capturePorts + ($0.hbonePort.map { [$0] } ?? []))).sorted() } ?? SidecarProfile.listenerPorts
        let capturePorts = Set((profile.map { [$0] } ?? SidecarProfile.known).flatMap(\.capturePorts))
        var notices: [String] = []

        let namespace = self.namespace
        let procfs = self.procfs
        let local = try phase("namespace facts") { try namespace.run { try readNamespaceFacts() } }
        notices += local.notices

        let socketReader = SocketReader(
            transportFactory: { [namespace] in try namespace.run { try NetlinkSocket(bus: .sockDiag) } },
            netFileReader: { [namespace, procfs] name in try namespace.run { try procfs.readNet(name) } }, kernel: .thisKernel)
        // Listeners first: a LISTEN-only dump walks just the small listening hash. The
        // FIN_WAIT2 and ESTABLISHED dump that follows walks every socket once (both
        // families in one walk) and copies back only the families that have a capture
        // listener (a dual-stack [::] listener's IPv4 clients are IPv6 sockets with mapped
        // addresses). A sidecar given by hand without a listener found gets both.
        let (listening, socketSource) = try phase("sock_diag: listeners") {
            try socketReader.sockets(in: [.listen], withInfo: false, localPorts: ports)
        }
        if case .procFile(let reason) = socketSource { notices.append(reason) }
        let families = listening.isEmpty ? AddressFamily.allCases : Array(Set(listening.map(\.family))).sorted { $0.rawValue < $1.rawValue }

        // The app's ends of half-closed flows (CLOSE_WAIT, LAST_ACK...) say what the app
        // dialled and whether it closed, once conntrack has forgotten a flow. They sit on
        // ephemeral ports, which one two-test bytecode selects at constant cost per
        // socket; the walk runs on the other core, beside the capture-port walk. Apps
        // behind an IPv6 listener may connect over IPv4 (mapped), so both families then.
        let appFamilies: [AddressFamily] = families.contains(.ipv6) ? AddressFamily.allCases : families
        let ephemeral = local.kernel.portRange ?? KernelFacts.defaultPortRange
        // Each dump walks the whole node's socket hash, whatever it hands back (the hash
        // is shared by every namespace): a pod's two walks cost as much as a node's
        // sockets twice. With few sockets of its own, one unfiltered walk that brings them
        // all, split here, costs one walk and a few thousand copies instead.
        let singleWalk = (local.tcpSocketsInUse ?? Int.max) <= singleWalkSockets
        let background = try BackgroundReads(
            appSocketsOf: singleWalk ? nil : socketReader, families: appFamilies, ephemeral: ephemeral,
            namespace: namespace, procfs: procfs, trace: trace)

        // The same walk brings the accepted connections: the silent ones are stall
        // candidates, and the inbound ones (ESTABLISHED or half-open, up to a limit) have
        // entries that show clashes on the redirect port. Each socket is sorted as the
        // dump decodes it: on a busy node most accepted connections are neither, and
        // holding them all (with tcp_info) would cost memory in proportion to the proxy's
        // connections.
        var sorted = CapturePortSockets(
            capturePorts: capturePorts, inboundPorts: Set((profile.map { [$0] } ?? SidecarProfile.known).map(\.inboundPort)),
            silentAfterMilliseconds: UInt64(saturating: stallAfterSeconds * 1000))
        var walkedAppSockets: [TCPSocket] = []
        if singleWalk {
            let capture = Set(ports)
            _ = try phase("sock_diag: one walk for capture ports and app sockets (\(local.tcpSocketsInUse ?? 0) sockets; \(appFamilies.map(\.name).joined(separator: ", ")))") {
                try socketReader.forEachSocket(in: Self.captureStates.union(Self.appStates), families: appFamilies) { socket in
                    if families.contains(socket.family) && Self.captureStates.contains(socket.state) && capture.contains(socket.local.port) {
                        sorted.sort(socket)
                    } else if Self.appStates.contains(socket.state) && ephemeral.contains(socket.local.port) {
                        walkedAppSockets.append(socket)
                    }
                }
            }
        } else {
            _ = try phase("sock_diag: FIN_WAIT2, ESTABLISHED and SYN_RECV on capture ports (\(families.map(\.name).joined(separator: ", ")))") {
                try socketReader.forEachSocket(in: Self.captureStates, localPorts: ports, families: families) { sorted.sort($0) }
            }
        }
        let (halfClosed, silent, idleTunnels, accepted) = (sorted.halfClosed, sorted.silent, sorted.idleTunnels, sorted.accepted)
        let captured = listening + halfClosed + silent + idleTunnels
        let suspects = halfClosed.filter { $0.inode != 0 }
        if sorted.acceptedCount > accepted.count {
            notices.append("\(sorted.acceptedCount) accepted inbound connections on the inbound capture port: the first \(accepted.count) were checked for clashes on it")
        }
        let inbound = accepted
        let (found, conntrackSource) = try phase("conntrack lookups (\(suspects.count + silent.count + inbound.count))") {
            try lookUpFlows(of: suspects + silent + inbound, notices: &notices)
        }
        let entries = found ?? []
        // Diagnosis reads only the app ends of the suspects' flows, the ones on a suspect's
        // peer port: a busy namespace holds tens of thousands of other half-closed app
        // sockets (40,000 at the benchmark's 500,000), which every pass over the input
        // would otherwise copy and skip. Kept by port, as LeakAnalysis indexes them.
        let peerPorts = Set(halfClosed.map(\.remote.port))
        let appSockets = (singleWalk ? walkedAppSockets : phase("app sockets (waiting)") { background.appSockets() })
            .filter { peerPorts.contains($0.local.port) }

        // Only the capture listeners' owners are looked up: every socket a listener
        // accepted is held by that process (the proxy), and finding each leaked socket's
        // own descriptor would mean reading all of the proxy's, a cost that grows with
        // its connections instead of with the suspects.
        let (owners, sidecarProcess) = ownersOfListeners(captured.filter { $0.state == .listen }, local: local, notices: &notices)

        let rules = phase("rules (waiting)") { background.rules() }
        return DiagnosisInput(
            namespace: namespace.name,
            sockets: captured + appSockets,
            socketSource: socketSource,
            conntrack: entries,
            conntrackSource: conntrackSource,
            owners: owners,
            sidecarProcess: sidecarProcess,
            kernel: local.kernel,
            counters: local.counters,
            rules: rules,
            notices: notices)
    }

    /// What the collection reads on the other core while the capture ports are walked:
    /// the app's ends of half-closed flows (CLOSE_WAIT, LAST_ACK...), which say what the
    /// app dialled and whether it closed once conntrack has forgotten a flow; then the
    /// rule listings, which spawn processes, beside the conntrack lookups rather than
    /// against both socket walks.
    final class BackgroundReads: Sendable {
        private final class Results: Sendable {
            let sockets = Mutex<[TCPSocket]>([])
            let rules = Mutex<RulesFacts?>(nil)
            let socketsDone = DispatchSemaphore(value: 0)
        }
        private let results = Results()
        private let worker: WorkerThread

        /// - Parameter reader: nil when the caller's single walk brings the app sockets.
        init(
            appSocketsOf reader: SocketReader?, families: [AddressFamily], ephemeral: ClosedRange<UInt16>, namespace: NetworkNamespace,
            procfs: ProcFS, trace: (@Sendable (String, Duration) -> Void)?
        ) throws {
            let results = self.results
            worker = try WorkerThread(name: "app sockets and rules") {
                let start = ContinuousClock.now
                // They sit on ephemeral ports, which one two-test bytecode selects at
                // constant cost per socket.
                let sockets = (try? reader?.sockets(
                    in: LiveCollector.appStates, withInfo: false, localPortRange: ephemeral, families: families
                ).0) ?? []
                if reader != nil { trace?("sock_diag: app sockets on ephemeral ports (other core)", ContinuousClock.now - start) }
                results.sockets.withLock { $0 = sockets }
                results.socketsDone.signal()
                let rulesStart = ContinuousClock.now
                let rules = (try? namespace.run { RuleInspector.inspect(procfs: procfs) }) ?? RulesFacts(source: "unknown: could not enter the namespace")
                trace?("rules (other core)", ContinuousClock.now - rulesStart)
                results.rules.withLock { $0 = rules }
            }
        }

        func appSockets() -> [TCPSocket] {
            results.socketsDone.wait()
            return results.sockets.withLock { $0 }
        }

        func rules() -> RulesFacts {
            worker.join()
            return results.rules.withLock { $0 } ?? RulesFacts()
        }
    }

    /// The sockets on the capture ports, by what diagnosis does with them, sorted one at a
    /// time as the dump delivers them; the rest are dropped at once.
    struct CapturePortSockets {
        /// FIN_WAIT2 on a capture port: the leak suspects. HBONE's sockets come in by
        /// TPROXY, not NAT: no conntrack entry of theirs can leak them.
        private(set) var halfClosed: [TCPSocket] = []
        /// Accepted and silent past the stall threshold: stall candidates.
        private(set) var silent: [TCPSocket] = []
        /// Ambient's HBONE tunnels idle past the report threshold: kept, not looked up.
        private(set) var idleTunnels: [TCPSocket] = []
        /// Accepted and half-open inbound connections: their entries say whether NAT
        /// moved a client's port on the inbound redirect port (a clash), or left the flow
        /// unreplied. One lookup each, so only the first `inboundLookupLimit` are kept;
        /// `acceptedCount` counts them all.
        private(set) var accepted: [TCPSocket] = []
        private(set) var acceptedCount = 0

        let capturePorts: Set<UInt16>
        let inboundPorts: Set<UInt16>
        let threshold: UInt64
        let acceptedLimit: Int

        init(capturePorts: Set<UInt16>, inboundPorts: Set<UInt16>, silentAfterMilliseconds threshold: UInt64, acceptedLimit: Int = LiveCollector.inboundLookupLimit) {
            self.capturePorts = capturePorts
            self.inboundPorts = inboundPorts
            self.threshold = threshold
            self.acceptedLimit = acceptedLimit
        }

        /// Files one socket of the capture ports' walk (FIN_WAIT2, ESTABLISHED,
        /// SYN_RECV) under each use it has, or none.
        mutating func sort(_ socket: TCPSocket) {
            let onCapturePort = capturePorts.contains(socket.local.port)
            let isSilent = StallAnalysis.isSilent(socket, thresholdMilliseconds: threshold)
            if socket.state == .finWait2 && onCapturePort { halfClosed.append(socket) }
            if onCapturePort && isSilent { silent.append(socket) }
            if !onCapturePort && HBONEAnalysis.isLongIdle(socket) { idleTunnels.append(socket) }
            if inboundPorts.contains(socket.local.port) && (socket.state == .synReceived || socket.state == .established && !isSilent) {
                acceptedCount += 1
                if accepted.count < acceptedLimit { accepted.append(socket) }
            }
        }
    }

    /// What the capture ports' walk keeps: leak suspects (FIN_WAIT2), accepted
    /// connections (stall candidates) and half-open ones (inbound clashes).
    static let captureStates: TCPStateSet = [.finWait2, .established, .synReceived]
    /// What the app sockets' walk keeps: the app's ends of half-closed flows.
    static let appStates: TCPStateSet = [.closeWait, .lastAck, .finWait1, .closing]
    /// Up to this many TCP sockets in a namespace, one unfiltered walk serves both: what
    /// it copies back costs less than the second walk of the node's hash (at 150,000
    /// sockets on the node, a walk is ~23 ms; 4,096 sockets copied and decoded, ~3 ms).
    public static let defaultSingleWalkSockets = 4_096

    /// The most accepted inbound connections whose conntrack entries are looked up for
    /// clashes on the redirect port: the lookups cost one GET each.
    public static let inboundLookupLimit = 4_096

    /// The owners of the capture listeners, and the facts of the process holding them
    /// (the sidecar).
    func ownersOfListeners(
        _ listeners: [TCPSocket], local: NamespaceFacts, notices: inout [String]
    ) -> ([UInt64: [SocketOwner]], SidecarProcessFacts?) {
        let wanted = Set(listeners.map(\.inode).filter { $0 != 0 })
        let search = OwnerSearch(procfs: procfs)
        let (owners, unreadable) = phase("owners of \(wanted.count) listeners") { search.owners(of: wanted, namespaceLink: local.namespaceLink, inside: processesInside) }
        if unreadable > 0 && owners.isEmpty && !listeners.isEmpty {
            notices.append("\(unreadable) processes in the namespace could not be inspected (needs CAP_SYS_PTRACE): the sidecar process is unknown")
        }
        let sidecarOwner = listeners.lazy.compactMap { owners[$0.inode]?.first }.first
        return (owners, sidecarOwner.map { search.sidecarFacts($0, namespaceLink: local.namespaceLink, notices: &notices) })
    }

    /// Which of `inodes` process `pid` holds, from all of its descriptors: what reap asks
    /// before destroying a socket it attributes to the proxy. nil when they cannot be read.
    public func sockets(heldBy pid: Int32, among inodes: Set<UInt64>) -> Set<UInt64>? {
        OwnerSearch(procfs: procfs).inodes(heldBy: pid, among: inodes)
    }

    /// Everything, for a snapshot: every hashed TCP socket (all but the bound-only ones,
    /// `TCPStateSet.hashed`) with tcp_info and the whole
    /// conntrack table, beside what `collect` reads. Costs what the tables cost; what it
    /// returns diagnoses like `collect`'s input, under any options.
    public func collectEverything() throws -> DiagnosisInput {
        let namespace = self.namespace
        let procfs = self.procfs
        var notices: [String] = []
        let local = try phase("namespace facts") { try namespace.run { try readNamespaceFacts() } }
        notices += local.notices
        let socketReader = SocketReader(
            transportFactory: { try namespace.run { try NetlinkSocket(bus: .sockDiag) } },
            netFileReader: { name in try namespace.run { try procfs.readNet(name) } }, kernel: .thisKernel)
        let (sockets, socketSource) = try phase("sock_diag: every TCP socket") { try socketReader.sockets() }
        if case .procFile(let reason) = socketSource { notices.append(reason) }
        let (entries, report) = try phase("conntrack: the whole table") {
            try ConntrackReader(namespace: namespace, procfs: procfs).entries()
        }
        if case .procFile(let reason) = report.source { notices.append(reason) }
        if let why = report.interruption { notices.append("\(why): entries created or deleted meanwhile may be missing") }
        let capturePorts = SidecarProfile.knownCapturePorts
        let listeners = sockets.filter { $0.state == .listen && capturePorts.contains($0.local.port) }
        let (owners, sidecarProcess) = ownersOfListeners(listeners, local: local, notices: &notices)
        let rules = phase("rules") { (try? namespace.run { RuleInspector.inspect(procfs: procfs) }) ?? RulesFacts(source: "unknown: could not enter the namespace") }
        return DiagnosisInput(
            namespace: namespace.name, sockets: sockets, socketSource: socketSource, conntrack: entries,
            conntrackSource: .dump(report.source), owners: owners,
            sidecarProcess: sidecarProcess, kernel: local.kernel, counters: local.counters, rules: rules, notices: notices)
    }

    /// The conntrack entries of the suspects' flows: by reply-tuple GETs, or — where the
    /// kernel refuses those — by a full dump.
    /// The suspects' flows; nil when conntrack cannot be read at all (no CAP_NET_ADMIN and
    /// not root, as in `kubectl exec` into a sidecar container), which is said.
    func lookUpFlows(of suspects: [TCPSocket], notices: inout [String]) throws -> ([ConntrackEntry]?, ConntrackProvenance) {
        guard !suspects.isEmpty else { return ([], .lookups(count: 0)) }
        let keys = suspects.map { ReplyTupleKey(source: $0.local, destination: $0.remote) }
        do {
            let found = try ConntrackReplyLookup(namespace: namespace).entries(for: keys)
            return (Array(found.values), .lookups(count: keys.count))
        } catch let error as ConntrackReplyLookup.Unsupported {
            notices.append("\(error); fell back to a full conntrack dump")
        } catch ConntrackReadError.permissionDenied {
            notices.append("conntrack lookups need CAP_NET_ADMIN; read the whole table through the /proc fallback instead")
        }
        let reader = ConntrackReader(namespace: namespace, procfs: procfs)
        let entries: [ConntrackEntry]
        let report: ConntrackReadReport
        do {
            (entries, report) = try reader.entries(matching: ConntrackFilter(protocolNumber: IPProtocolName.tcp))
        } catch ConntrackReadError.permissionDenied {
            notices.append("conntrack is unreadable here (netlink needs CAP_NET_ADMIN, /proc/net/nf_conntrack root): half-closed sockets idle past the close_wait timeout are reported leaked by inference, younger ones unknown")
            return (nil, .unreadable)
        }
        if case .procFile(let reason) = report.source { notices.append(reason) }
        return (entries, .dump(report.source))
    }

    struct NamespaceFacts {
        var kernel: KernelFacts
        var counters: [String: UInt64]
        var namespaceLink: String
        var notices: [String]
        /// TCP sockets in the namespace's hashes, both families (sockstat's inuse); nil
        /// when unreadable.
        var tcpSocketsInUse: Int?
    }

    /// Reads, on a thread inside the namespace, what only that namespace can answer:
    /// per-namespace sysctls (bound to the opener's namespace) and /proc/thread-self/net.
    func readNamespaceFacts() throws -> NamespaceFacts {
        var notices: [String] = []
        func sysctl(_ name: String) -> String? {
            try? procfs.readSysctl(name)
        }
        var kernel = KernelFacts()
        kernel.release = sysctl("kernel/osrelease")
        kernel.closeWaitTimeout = sysctl("net/netfilter/nf_conntrack_tcp_timeout_close_wait").flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
        kernel.synSentTimeout = sysctl("net/netfilter/nf_conntrack_tcp_timeout_syn_sent").flatMap { Int($0) }.flatMap { $0 >= 0 ? $0 : nil }
        kernel.ignoreInvalidRST = sysctl("net/netfilter/nf_conntrack_tcp_ignore_invalid_rst").flatMap { Int($0) }
        kernel.beLiberal = sysctl("net/netfilter/nf_conntrack_tcp_be_liberal").flatMap { Int($0) }
        kernel.conntrackCount = sysctl("net/netfilter/nf_conntrack_count").flatMap { Int($0) }
        kernel.conntrackMax = sysctl("net/netfilter/nf_conntrack_max").flatMap { Int($0) }
        kernel.portRange = sysctl("net/ipv4/ip_local_port_range").flatMap(KernelText.portRange)
        kernel.reservedPorts = sysctl("net/ipv4/ip_local_reserved_ports").flatMap(KernelText.reservedPorts) ?? []
        // This thread is inside the namespace: a socket opened here is the namespace's.
        let statistics = ConntrackStatisticsReader(
            transportFactory: { try NetlinkSocket(bus: .netfilter) },
            fallbackFiles: { [procfs] in (try procfs.read("\(procfs.root)/thread-self/net/stat/nf_conntrack", limit: 1 << 20), nil) })
        kernel.conntrackCounters = (try? statistics.read())?.totals
        if kernel.closeWaitTimeout == nil {
            notices.append("net.netfilter.nf_conntrack_tcp_timeout_close_wait is not readable (is nf_conntrack loaded?)")
        }
        var counters: [String: UInt64] = [:]
        for file in ["snmp", "netstat"] {
            if let bytes = try? procfs.readNet(file) {
                counters.merge(NetstatParser.counters(bytes)) { first, _ in first }
            } else {
                notices.append("/proc/net/\(file) is not readable: TCP counters unknown")
            }
        }
        let link = (try? procfs.readLink("\(procfs.root)/thread-self/ns/net")) ?? ""
        let inUse = ["sockstat", "sockstat6"].map { (try? procfs.readNet($0)).flatMap(SockstatParser.tcpInUse) }
        // Without IPv6 there is no sockstat6, and no IPv6 socket.
        let sockets = inUse[0].map { $0 + (inUse[1] ?? 0) }
        return NamespaceFacts(kernel: kernel, counters: counters, namespaceLink: link, notices: notices, tcpSocketsInUse: sockets)
    }
}

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
/// 1. sock_diag, filtered in the kernel by state (LISTEN, FIN_WAIT2) and by local port
///    (the capture ports, in bytecode);
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

    public init(namespace: NetworkNamespace, procfs: ProcFS = ProcFS()) {
        self.namespace = namespace
        self.procfs = procfs
    }

    /// - Parameter profile: the sidecar's ports when known; otherwise every known
    ///   profile's capture ports are inspected.
    public func collect(profile: SidecarProfile?) throws -> DiagnosisInput {
        let ports = Array(Set((profile.map { [$0] } ?? SidecarProfile.known).flatMap(\.capturePorts))).sorted()
        var notices: [String] = []

        let rules = Mutex<RulesFacts?>(nil)
        let rulesDone = DispatchSemaphore(value: 0)
        let namespace = self.namespace
        DispatchQueue.global().async {
            let facts = (try? namespace.run { RuleInspector.inspect() }) ?? RulesFacts(source: "unknown: could not enter the namespace")
            rules.withLock { $0 = facts }
            rulesDone.signal()
        }

        let local = try namespace.run { try readNamespaceFacts() }
        notices += local.notices

        let socketReader = SocketReader(
            transportFactory: { [namespace] in try namespace.run { try NetlinkSocket(bus: .sockDiag) } },
            netFileReader: { [namespace, procfs] name in try namespace.run { try procfs.readNet(name) } })
        let (captured, socketSource) = try socketReader.sockets(in: [.listen, .finWait2], localPorts: ports)
        if case .procFile(let reason) = socketSource { notices.append(reason) }

        let suspects = captured.filter { $0.state == .finWait2 && $0.inode != 0 }
        let (entries, conntrackSource) = try lookUpFlows(of: suspects, notices: &notices)

        // The app's ends of the suspect flows, found by their ports.
        var appSockets: [TCPSocket] = []
        if !suspects.isEmpty {
            let peerPorts = Array(Set(suspects.map(\.remote.port)))
            let filter = peerPorts.count <= 1024 ? peerPorts : []
            appSockets = (try? socketReader.sockets(in: [.closeWait, .lastAck, .finWait1, .closing], localPorts: filter).0) ?? []
        }

        let listeners = captured.filter { $0.state == .listen }
        // Owners of the listeners, and of the suspects whose flow conntrack forgot (the
        // leak candidates): few, so the search stops early even in a busy proxy.
        let known = Set(entries.map { ReplyTupleKey(replyOf: $0) })
        let candidates = suspects.filter { !known.contains(ReplyTupleKey(source: $0.local, destination: $0.remote)) }
        let wanted = Set((listeners + candidates.prefix(64)).map(\.inode).filter { $0 != 0 })
        let search = OwnerSearch(procfs: procfs)
        let (owners, unreadable) = search.owners(of: wanted, namespaceLink: local.namespaceLink)
        if unreadable > 0 && owners.isEmpty && !listeners.isEmpty {
            notices.append("\(unreadable) processes in the namespace could not be inspected (needs CAP_SYS_PTRACE): the sidecar process is unknown")
        }
        let sidecarOwner = listeners.lazy.compactMap { owners[$0.inode]?.first }.first
        let sidecarProcess = sidecarOwner.map { search.sidecarFacts($0, notices: &notices) }

        rulesDone.wait()
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
            rules: rules.withLock { $0 } ?? RulesFacts(),
            notices: notices)
    }

    /// The conntrack entries of the suspects' flows: by reply-tuple GETs, or — where the
    /// kernel refuses those — by a full dump.
    func lookUpFlows(of suspects: [TCPSocket], notices: inout [String]) throws -> ([ConntrackEntry], String) {
        guard !suspects.isEmpty else { return ([], "netlink lookups by reply tuple (none needed)") }
        let keys = suspects.map { ReplyTupleKey(source: $0.local, destination: $0.remote) }
        do {
            let found = try ConntrackReplyLookup(namespace: namespace).entries(for: keys)
            return (Array(found.values), "netlink lookups by reply tuple (\(keys.count))")
        } catch let error as ConntrackReplyLookup.Unsupported {
            notices.append("\(error); fell back to a full conntrack dump")
        } catch ConntrackReadError.permissionDenied {
            notices.append("conntrack lookups need CAP_NET_ADMIN; read the whole table through the /proc fallback instead")
        }
        let reader = ConntrackReader(namespace: namespace, procfs: procfs)
        let (entries, report) = try reader.entries(matching: ConntrackFilter(protocolNumber: IPProtocolName.tcp))
        if case .procFile(let reason) = report.source { notices.append(reason) }
        return (entries, report.source == .netlink ? "netlink dump" : "/proc/net/nf_conntrack")
    }

    struct NamespaceFacts {
        var kernel: KernelFacts
        var counters: [String: UInt64]
        var namespaceLink: String
        var notices: [String]
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
        kernel.closeWaitTimeout = sysctl("net/netfilter/nf_conntrack_tcp_timeout_close_wait").flatMap { Int($0) }
        kernel.ignoreInvalidRST = sysctl("net/netfilter/nf_conntrack_tcp_ignore_invalid_rst").flatMap { Int($0) }
        kernel.beLiberal = sysctl("net/netfilter/nf_conntrack_tcp_be_liberal").flatMap { Int($0) }
        kernel.conntrackCount = sysctl("net/netfilter/nf_conntrack_count").flatMap { Int($0) }
        kernel.conntrackMax = sysctl("net/netfilter/nf_conntrack_max").flatMap { Int($0) }
        kernel.portRange = sysctl("net/ipv4/ip_local_port_range").flatMap(KernelText.portRange)
        kernel.reservedPorts = sysctl("net/ipv4/ip_local_reserved_ports").flatMap(KernelText.reservedPorts) ?? []
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
        return NamespaceFacts(kernel: kernel, counters: counters, namespaceLink: link, notices: notices)
    }
}

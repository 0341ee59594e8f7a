import Conntrack
import NetCore
import Sockets

/// Everything a diagnosis reads, gathered live (Collector) or loaded from a snapshot.
/// Diagnosis is a pure function of this value, so the same input gives the same
/// findings wherever it came from.
public struct DiagnosisInput: Sendable {
    /// How the namespace was named, for the report.
    public var namespace: String
    /// At least: the listeners and FIN_WAIT2 sockets on capture ports, and the
    /// half-closed app-side sockets (CLOSE_WAIT, LAST_ACK) on those sockets' peer ports.
    /// More is fine.
    public var sockets: [TCPSocket]
    public var socketSource: SocketSource
    /// At least the entries whose reply tuple is a FIN_WAIT2 capture socket's tuple
    /// (live: looked up one by one); a whole table is fine too.
    public var conntrack: [ConntrackEntry]
    /// How `conntrack` was read: lookups, a dump, a copied file, or not at all.
    public var conntrackSource: ConntrackProvenance
    /// False where conntrack could not be read at all (a pod without CAP_NET_ADMIN, not
    /// root): `conntrack` is then empty for want of access, not because flows are gone,
    /// and leaks are inferred from idle times instead.
    public var conntrackReadable: Bool { conntrackSource != .unreadable }
    /// Owners of the sockets that were looked up (at least the capture listeners).
    public var owners: [UInt64: [SocketOwner]]
    /// The sidecar process's facts, when found.
    public var sidecarProcess: SidecarProcessFacts?
    public var kernel: KernelFacts
    /// /proc/net/snmp and /proc/net/netstat counters, as nstat names them ("TcpActiveOpens",
    /// "TcpExtTCPChallengeACK"...).
    public var counters: [String: UInt64]
    public var rules: RulesFacts
    /// What could not be read, said once each, so the report never looks more certain
    /// than its input.
    public var notices: [String]

    public init(
        namespace: String,
        sockets: [TCPSocket],
        socketSource: SocketSource,
        conntrack: [ConntrackEntry],
        conntrackSource: ConntrackProvenance,
        owners: [UInt64: [SocketOwner]] = [:],
        sidecarProcess: SidecarProcessFacts? = nil,
        kernel: KernelFacts = KernelFacts(),
        counters: [String: UInt64] = [:],
        rules: RulesFacts = RulesFacts(),
        notices: [String] = []
    ) {
        self.namespace = namespace
        self.sockets = sockets
        self.socketSource = socketSource
        self.conntrack = conntrack
        self.conntrackSource = conntrackSource
        self.owners = owners
        self.sidecarProcess = sidecarProcess
        self.kernel = kernel
        self.counters = counters
        self.rules = rules
        self.notices = notices
    }
}

/// The proxy process: how long it has run and what its environment configures.
public struct SidecarProcessFacts: Sendable, Hashable {
    public var pid: Int32
    public var command: String
    /// Seconds since the process started (from /proc/PID/stat and /proc/uptime).
    public var uptimeSeconds: Double?
    /// ISTIO_META_IDLE_TIMEOUT from /proc/PID/environ, when readable and set.
    public var idleTimeoutSetting: String?
    /// The network namespace the process lives in, when it is not the one diagnosed
    /// ("net:[4026531840]"): ambient's ztunnel holds a pod's sockets from its own.
    public var foreignNamespace: String?

    public init(pid: Int32, command: String, uptimeSeconds: Double? = nil, idleTimeoutSetting: String? = nil, foreignNamespace: String? = nil) {
        self.pid = pid
        self.command = command
        self.uptimeSeconds = uptimeSeconds
        self.idleTimeoutSetting = idleTimeoutSetting
        self.foreignNamespace = foreignNamespace
    }
}

/// The kernel and its per-namespace settings. nil means "could not be read"; for
/// `ignoreInvalidRST` it also means the sysctl does not exist (kernels before 5.14).
public struct KernelFacts: Sendable, Hashable {
    /// `uname -r`, e.g. "6.1.0-18-amd64".
    public var release: String?
    /// net.netfilter.nf_conntrack_tcp_timeout_close_wait, seconds.
    public var closeWaitTimeout: Int?
    /// net.netfilter.nf_conntrack_tcp_ignore_invalid_rst (absent before 5.14).
    public var ignoreInvalidRST: Int?
    /// net.netfilter.nf_conntrack_tcp_be_liberal.
    public var beLiberal: Int?
    public var conntrackCount: Int?
    public var conntrackMax: Int?
    /// net.ipv4.ip_local_port_range.
    public var portRange: ClosedRange<UInt16>?
    /// net.ipv4.ip_local_reserved_ports.
    public var reservedPorts: Set<UInt16>
    /// net.netfilter.nf_conntrack_tcp_timeout_syn_sent, seconds: what a SYN_SENT entry's
    /// timeout starts from, so how old an unanswered one is.
    public var synSentTimeout: Int?
    /// The kernel's conntrack counters for the namespace (every CPU summed, since the
    /// namespace was created): insert_failed, drop, early_drop… as `conntrack -S` reads
    /// them; nil when they could not be read. `pressure` shows their growth.
    public var conntrackCounters: ConntrackCounterValues?

    public init(
        release: String? = nil, closeWaitTimeout: Int? = nil, ignoreInvalidRST: Int? = nil, beLiberal: Int? = nil,
        conntrackCount: Int? = nil, conntrackMax: Int? = nil, portRange: ClosedRange<UInt16>? = nil,
        reservedPorts: Set<UInt16> = [], synSentTimeout: Int? = nil
    ) {
        self.synSentTimeout = synSentTimeout
        self.release = release
        self.closeWaitTimeout = closeWaitTimeout
        self.ignoreInvalidRST = ignoreInvalidRST
        self.beLiberal = beLiberal
        self.conntrackCount = conntrackCount
        self.conntrackMax = conntrackMax
        self.portRange = portRange
        self.reservedPorts = reservedPorts
    }

    /// The kernel's default when the sysctl could not be read.
    public static let defaultPortRange: ClosedRange<UInt16> = 32768...60999
}

/// Whether packets conntrack judges INVALID are dropped by a rule (Istio's optional
/// `-m conntrack --ctstate INVALID -j ISTIO_DROP`, kube-proxy's, or nftables' `ct
/// state invalid drop`).
public struct RulesFacts: Sendable, Hashable {
    /// nil when no rule listing could be read.
    public var invalidDrop: Bool?
    /// What was read: "nf_tables over netlink", "iptables-legacy-save", "nft list ruleset"
    /// (where netlink was refused), or why nothing was.
    public var source: String
    /// The matching rule, when one was found.
    public var matchingRule: String?

    public init(invalidDrop: Bool? = nil, source: String = "not read", matchingRule: String? = nil) {
        self.invalidDrop = invalidDrop
        self.source = source
        self.matchingRule = matchingRule
    }
}

/// Options a user gives diagnosis.
public struct DiagnosisOptions: Sendable {
    /// Forces the sidecar instead of detecting it.
    public var sidecar: SidecarProfile?
    /// Forces the proxy's TCP idle timeout, in seconds (0: disabled).
    public var idleTimeoutSeconds: Double?
    /// Forces the captured connect rate, per second.
    public var connectRate: Double?
    /// How long an accepted connection may stay silent both ways before it counts as
    /// stalled.
    public var stallAfterSeconds: Double
    /// Which protocols speak first (with --server-first additions).
    public var catalog: ProtocolCatalog

    public init(
        sidecar: SidecarProfile? = nil, idleTimeoutSeconds: Double? = nil, connectRate: Double? = nil,
        stallAfterSeconds: Double = StallAnalysis.defaultThresholdSeconds, catalog: ProtocolCatalog = ProtocolCatalog()
    ) {
        self.sidecar = sidecar
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.connectRate = connectRate
        self.stallAfterSeconds = stallAfterSeconds
        self.catalog = catalog
    }
}

import Conntrack

/// A timeout sysctl of conntrack (`net.netfilter.nf_conntrack_<name>`): which one holds
/// an entry decides what lowering it would free.
public enum TimeoutSetting: String, Sendable, Hashable, CaseIterable, Comparable {
    case tcpSynSent = "tcp_timeout_syn_sent"
    case tcpSynReceived = "tcp_timeout_syn_recv"
    case tcpEstablished = "tcp_timeout_established"
    case tcpFinWait = "tcp_timeout_fin_wait"
    case tcpCloseWait = "tcp_timeout_close_wait"
    case tcpLastAck = "tcp_timeout_last_ack"
    case tcpTimeWait = "tcp_timeout_time_wait"
    case tcpClose = "tcp_timeout_close"
    case udp = "udp_timeout"
    case udpStream = "udp_timeout_stream"
    case icmp = "icmp_timeout"
    case icmpv6 = "icmpv6_timeout"
    case generic = "generic_timeout"
    /// Not a state's: TCP restarts an entry at this instead when data is unacknowledged
    /// (or the peer's window is zero), if it is the shorter.
    case tcpUnacknowledged = "tcp_timeout_unacknowledged"
    /// …and at this once retransmissions reach nf_conntrack_tcp_max_retrans.
    case tcpMaxRetransmissions = "tcp_timeout_max_retrans"

    /// The full sysctl name, as `sysctl -w` takes it.
    public var sysctl: String { "net.netfilter.nf_conntrack_\(rawValue)" }
    /// Its path under /proc/sys.
    public var procPath: String { "net/netfilter/nf_conntrack_\(rawValue)" }

    /// The kernel's default (net/netfilter/nf_conntrack_proto_*.c, 6.x).
    public var kernelDefault: Int {
        switch self {
        case .tcpSynSent: 120
        case .tcpSynReceived: 60
        case .tcpEstablished: 432_000
        case .tcpFinWait: 120
        case .tcpCloseWait: 60
        case .tcpLastAck: 30
        case .tcpTimeWait: 120
        case .tcpClose: 10
        case .udp: 30
        case .udpStream: 120
        case .icmp, .icmpv6: 30
        case .generic: 600
        case .tcpUnacknowledged, .tcpMaxRetransmissions: 300
        }
    }

    /// The setting that times an entry out: its TCP state's; for UDP the stream timeout
    /// once ASSURED (a reply seen and more traffic after it), else the short one.
    public static func governing(_ entry: ConntrackEntry) -> TimeoutSetting? {
        switch entry.protocolNumber {
        case IPProtocolName.tcp:
            switch entry.tcpState {
            case .synSent?, .synSent2?: return .tcpSynSent
            case .synReceived?: return .tcpSynReceived
            case .established?: return .tcpEstablished
            case .finWait?: return .tcpFinWait
            case .closeWait?: return .tcpCloseWait
            case .lastAck?: return .tcpLastAck
            case .timeWait?: return .tcpTimeWait
            case .close?: return .tcpClose
            case .none?, nil: return nil
            }
        case IPProtocolName.udp, IPProtocolName.udplite:
            return entry.status.contains(.assured) ? .udpStream : .udp
        case IPProtocolName.icmp: return .icmp
        case IPProtocolName.icmpv6: return .icmpv6
        case IPProtocolName.sctp, IPProtocolName.dccp, IPProtocolName.gre: return nil
        default: return .generic
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.index < rhs.index }
}

/// The timeouts in force in one namespace (they are per namespace): read from its
/// sysctls, or the kernel's defaults where a copy gives none.
public struct ConntrackTimeouts: Sendable, Hashable {
    public var seconds: [TimeoutSetting: Int]
    /// Settings whose value was not read but assumed to be the kernel default.
    public var assumed: Set<TimeoutSetting>

    public init(seconds: [TimeoutSetting: Int], assumed: Set<TimeoutSetting> = []) {
        self.seconds = seconds
        self.assumed = assumed
    }

    /// The kernel's defaults, each marked assumed.
    public static let kernelDefaults = ConntrackTimeouts(
        seconds: Dictionary(uniqueKeysWithValues: TimeoutSetting.allCases.map { ($0, $0.kernelDefault) }),
        assumed: Set(TimeoutSetting.allCases))

    /// What was read, the kernel default for each setting that was not.
    public static func reading(_ read: [TimeoutSetting: Int]) -> ConntrackTimeouts {
        var timeouts = kernelDefaults
        for (setting, value) in read where value >= 0 {
            timeouts.seconds[setting] = value
            timeouts.assumed.remove(setting)
        }
        return timeouts
    }

    public subscript(setting: TimeoutSetting) -> Int { seconds[setting] ?? setting.kernelDefault }
}

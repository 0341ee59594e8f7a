/// Conntrack's TCP state machine (enum tcp_conntrack in
/// include/uapi/linux/netfilter/nf_conntrack_tcp.h). This is the *tracker's* view of
/// both directions, not a socket state: a half-closed flow is CLOSE_WAIT here while
/// the sockets are FIN_WAIT2 and CLOSE_WAIT.
public enum ConntrackTCPState: UInt8, Sendable, Hashable, CaseIterable {
    case none = 0  // TCP_CONNTRACK_NONE
    case synSent = 1  // TCP_CONNTRACK_SYN_SENT
    case synReceived = 2  // TCP_CONNTRACK_SYN_RECV
    case established = 3  // TCP_CONNTRACK_ESTABLISHED
    case finWait = 4  // TCP_CONNTRACK_FIN_WAIT
    case closeWait = 5  // TCP_CONNTRACK_CLOSE_WAIT
    case lastAck = 6  // TCP_CONNTRACK_LAST_ACK
    case timeWait = 7  // TCP_CONNTRACK_TIME_WAIT
    case close = 8  // TCP_CONNTRACK_CLOSE
    case synSent2 = 9  // TCP_CONNTRACK_SYN_SENT2 (alias TCP_CONNTRACK_LISTEN)

    /// The name /proc/net/nf_conntrack and `conntrack -L` print.
    public var name: String {
        switch self {
        case .none: "NONE"
        case .synSent: "SYN_SENT"
        case .synReceived: "SYN_RECV"
        case .established: "ESTABLISHED"
        case .finWait: "FIN_WAIT"
        case .closeWait: "CLOSE_WAIT"
        case .lastAck: "LAST_ACK"
        case .timeWait: "TIME_WAIT"
        case .close: "CLOSE"
        case .synSent2: "SYN_SENT2"
        }
    }

    /// Reads a state name; case-insensitive, '-' or '_', and conntrack's input alias LISTEN.
    public init?(name: some StringProtocol) {
        let normalized = String(name.uppercased().map { $0 == "-" ? "_" : $0 })
        if normalized == "LISTEN" {
            self = .synSent2
            return
        }
        guard let state = Self.allCases.first(where: { $0.name == normalized }) else { return nil }
        self = state
    }
}

/// The state of a tracked flow whose protocol has a state machine.
public enum ConntrackState: Sendable, Hashable {
    case tcp(ConntrackTCPState)
    /// enum sctp_conntrack (nf_conntrack_sctp.h)
    case sctp(UInt8)
    /// enum ct_dccp_states (nf_conntrack_dccp.h)
    case dccp(UInt8)

    static let sctpNames = [
        "NONE", "CLOSED", "COOKIE_WAIT", "COOKIE_ECHOED", "ESTABLISHED", "SHUTDOWN_SENT",
        "SHUTDOWN_RECD", "SHUTDOWN_ACK_SENT", "HEARTBEAT_SENT", "HEARTBEAT_ACKED",
    ]
    static let dccpNames = [
        "NONE", "REQUEST", "RESPOND", "PARTOPEN", "OPEN", "CLOSEREQ", "CLOSING", "TIMEWAIT",
        "IGNORE", "INVALID",
    ]

    public var name: String {
        switch self {
        case .tcp(let state): state.name
        case .sctp(let raw): Int(raw) < Self.sctpNames.count ? Self.sctpNames[Int(raw)] : "SCTP_STATE_\(raw)"
        case .dccp(let raw): Int(raw) < Self.dccpNames.count ? Self.dccpNames[Int(raw)] : "DCCP_STATE_\(raw)"
        }
    }

    /// The state named `name` for protocol `protocolNumber`, or nil.
    public init?(protocolNumber: UInt8, name: some StringProtocol) {
        switch protocolNumber {
        case IPProtocolName.tcp:
            guard let state = ConntrackTCPState(name: name) else { return nil }
            self = .tcp(state)
        case IPProtocolName.sctp:
            guard let index = Self.sctpNames.firstIndex(of: String(name)) else { return nil }
            self = .sctp(UInt8(index))
        case IPProtocolName.dccp:
            guard let index = Self.dccpNames.firstIndex(of: String(name)) else { return nil }
            self = .dccp(UInt8(index))
        default:
            return nil
        }
    }
}

/// The status bits of a conntrack entry (enum ip_conntrack_status in
/// include/uapi/linux/netfilter/nf_conntrack_common.h).
public struct ConntrackStatus: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// An expected connection (FTP data, SIP media): created by a helper.
    public static let expected = ConntrackStatus(rawValue: 1 << 0)  // IPS_EXPECTED
    /// Packets have gone both ways. Text output shows its absence as [UNREPLIED].
    public static let seenReply = ConntrackStatus(rawValue: 1 << 1)  // IPS_SEEN_REPLY
    /// The kernel will not drop this entry early when the table is full.
    public static let assured = ConntrackStatus(rawValue: 1 << 2)  // IPS_ASSURED
    /// In the main table (not only attached to a packet in flight).
    public static let confirmed = ConntrackStatus(rawValue: 1 << 3)  // IPS_CONFIRMED
    /// The source is rewritten (SNAT, MASQUERADE).
    public static let sourceNAT = ConntrackStatus(rawValue: 1 << 4)  // IPS_SRC_NAT
    /// The destination is rewritten (DNAT, REDIRECT — how sidecars capture traffic).
    public static let destinationNAT = ConntrackStatus(rawValue: 1 << 5)  // IPS_DST_NAT
    public static let sequenceAdjust = ConntrackStatus(rawValue: 1 << 6)  // IPS_SEQ_ADJUST
    public static let sourceNATDone = ConntrackStatus(rawValue: 1 << 7)  // IPS_SRC_NAT_DONE
    public static let destinationNATDone = ConntrackStatus(rawValue: 1 << 8)  // IPS_DST_NAT_DONE
    /// Being destroyed.
    public static let dying = ConntrackStatus(rawValue: 1 << 9)  // IPS_DYING
    public static let fixedTimeout = ConntrackStatus(rawValue: 1 << 10)  // IPS_FIXED_TIMEOUT
    public static let template = ConntrackStatus(rawValue: 1 << 11)  // IPS_TEMPLATE
    /// A NAT clash was resolved by keeping this entry unconfirmed (IPS_UNTRACKED was
    /// this bit before 4.12).
    public static let natClash = ConntrackStatus(rawValue: 1 << 12)  // IPS_NAT_CLASH
    public static let helper = ConntrackStatus(rawValue: 1 << 13)  // IPS_HELPER
    /// Offloaded to the flowtable fast path.
    public static let offload = ConntrackStatus(rawValue: 1 << 14)  // IPS_OFFLOAD
    public static let hardwareOffload = ConntrackStatus(rawValue: 1 << 15)  // IPS_HW_OFFLOAD

    /// Every named bit with the name used in JSON output (the C name without IPS_).
    public static let named: [(ConntrackStatus, String)] = [
        (.expected, "EXPECTED"), (.seenReply, "SEEN_REPLY"), (.assured, "ASSURED"),
        (.confirmed, "CONFIRMED"), (.sourceNAT, "SRC_NAT"), (.destinationNAT, "DST_NAT"),
        (.sequenceAdjust, "SEQ_ADJUST"), (.sourceNATDone, "SRC_NAT_DONE"),
        (.destinationNATDone, "DST_NAT_DONE"), (.dying, "DYING"), (.fixedTimeout, "FIXED_TIMEOUT"),
        (.template, "TEMPLATE"), (.natClash, "NAT_CLASH"), (.helper, "HELPER"),
        (.offload, "OFFLOAD"), (.hardwareOffload, "HW_OFFLOAD"),
    ]

    /// The names of the bits set, lowest bit first.
    public var names: [String] { Self.named.filter { contains($0.0) }.map(\.1) }
}

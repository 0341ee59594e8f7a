import NetCore

/// One connection tracked by netfilter, as ctnetlink, `conntrack -L` and
/// /proc/net/nf_conntrack describe it.
///
/// `original` is the flow as the first packet saw it; `reply` is what the answer must
/// look like after NAT. With iptables REDIRECT to a sidecar, original says
/// `app:P → service:80` and reply says `127.0.0.1:15001 → app:P`.
public struct ConntrackEntry: Sendable, Hashable {
    public var family: AddressFamily
    /// The IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 132 SCTP...).
    public var protocolNumber: UInt8
    public var original: ConntrackTuple
    public var reply: ConntrackTuple
    /// The protocol's state machine position; nil for protocols without one (UDP, ICMP).
    public var state: ConntrackState?
    public var status: ConntrackStatus
    /// Seconds until the kernel expires the entry; nil when the source did not say.
    public var timeout: UInt32?
    public var mark: UInt32
    public var zone: UInt16
    /// The kernel's id for the entry (`conntrack -o id`); nil from /proc/net/nf_conntrack.
    public var id: UInt32?
    /// Reference count (`use=`).
    public var use: UInt32?
    /// Packet and byte counters; nil unless net.netfilter.nf_conntrack_acct is on.
    public var counters: ConntrackCounters?
    /// When the flow began, nanoseconds since the Unix epoch: its true age, which the
    /// timeout (reset by every packet) cannot tell. nil unless
    /// net.netfilter.nf_conntrack_timestamp is on (netlink only).
    public var startNanoseconds: UInt64?
    /// The connlabel bits set on the entry (`-m connlabel`, `conntrack -o label`), by
    /// number; empty when none (netlink only).
    public var labels: [Int] = []
    /// Seconds since the flow began, at the time of the listing: the text forms'
    /// `delta-time=` and the XML's `<deltatime>` (with nf_conntrack_timestamp on). Text
    /// has no clock to turn it into a start time; netlink gives `startNanoseconds`.
    public var ageSeconds: UInt64?

    public init(
        family: AddressFamily,
        protocolNumber: UInt8,
        original: ConntrackTuple,
        reply: ConntrackTuple,
        state: ConntrackState? = nil,
        status: ConntrackStatus = [],
        timeout: UInt32? = nil,
        mark: UInt32 = 0,
        zone: UInt16 = 0,
        id: UInt32? = nil,
        use: UInt32? = nil,
        counters: ConntrackCounters? = nil
    ) {
        self.family = family
        self.protocolNumber = protocolNumber
        self.original = original
        self.reply = reply
        self.state = state
        self.status = status
        self.timeout = timeout
        self.mark = mark
        self.zone = zone
        self.id = id
        self.use = use
        self.counters = counters
    }

    /// The TCP state, or nil for other protocols.
    public var tcpState: ConntrackTCPState? {
        if case .tcp(let state) = state { return state }
        return nil
    }

    /// The protocol's name as conntrack prints it ("tcp", "udp", "unknown"...).
    public var protocolName: String { IPProtocolName.name(of: protocolNumber) }

    /// Protocols whose tuples carry ports: TCP, UDP, DCCP, SCTP, UDP-Lite.
    public static let portProtocols: Set<UInt8> = [6, 17, 33, 132, 136]

    public var hasPorts: Bool { Self.portProtocols.contains(protocolNumber) }

    /// GRE (47): its tuples carry the PPTP call ids as keys, kept where the kernel keeps
    /// them, in the tuple's port fields.
    public var hasKeys: Bool { protocolNumber == 47 }

    /// True when the reply's source is not the original destination: the kernel
    /// rewrote the destination (DNAT, REDIRECT). The text and XML parsers, whose input
    /// does not print the DST_NAT status bit, set that bit from this; netlink's status
    /// word is the kernel's own answer, and everything else reads the bit alone.
    public var isDestinationNATed: Bool {
        reply.source != original.destination || reply.sourcePort != original.destinationPort
    }

    /// True when the reply's destination is not the original source (SNAT, MASQUERADE).
    public var isSourceNATed: Bool {
        reply.destination != original.source || reply.destinationPort != original.sourcePort
    }
}

/// One direction of a connection: addresses and the layer-4 identifiers.
public struct ConntrackTuple: Sendable, Hashable {
    public var source: IPAddress
    public var destination: IPAddress
    /// Ports for TCP, UDP, UDP-Lite, SCTP and DCCP; GRE's source and destination keys
    /// (`hasKeys`); 0 for protocols with neither.
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    /// Type, code and id for ICMP and ICMPv6, which have no ports.
    public var icmp: ICMPKey?
    /// The zone of this direction alone (`conntrack --orig-zone`/`--reply-zone`, the
    /// CT target's `--zone-orig`): CTA_TUPLE_ZONE, `zone-orig=`/`zone-reply=` in text.
    /// nil when the entry's zone applies to both directions.
    public var zone: UInt16?

    public init(
        source: IPAddress,
        destination: IPAddress,
        sourcePort: UInt16 = 0,
        destinationPort: UInt16 = 0,
        icmp: ICMPKey? = nil,
        zone: UInt16? = nil
    ) {
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.icmp = icmp
        self.zone = zone
    }

    public var sourceEndpoint: Endpoint { Endpoint(source, sourcePort) }
    public var destinationEndpoint: Endpoint { Endpoint(destination, destinationPort) }
}

/// What identifies an ICMP flow in place of ports.
public struct ICMPKey: Sendable, Hashable {
    public var type: UInt8
    public var code: UInt8
    public var id: UInt16

    public init(type: UInt8, code: UInt8, id: UInt16) {
        self.type = type
        self.code = code
        self.id = id
    }
}

/// Per-direction packet and byte counts.
public struct ConntrackCounters: Sendable, Hashable {
    public var originalPackets: UInt64
    public var originalBytes: UInt64
    public var replyPackets: UInt64
    public var replyBytes: UInt64

    public init(originalPackets: UInt64, originalBytes: UInt64, replyPackets: UInt64, replyBytes: UInt64) {
        self.originalPackets = originalPackets
        self.originalBytes = originalBytes
        self.replyPackets = replyPackets
        self.replyBytes = replyBytes
    }
}

/// Names of IP protocol numbers, as conntrack(8) prints them.
public enum IPProtocolName {
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let icmp: UInt8 = 1
    public static let icmpv6: UInt8 = 58
    public static let sctp: UInt8 = 132
    public static let dccp: UInt8 = 33
    public static let udplite: UInt8 = 136
    public static let gre: UInt8 = 47

    static let names: [UInt8: String] = [
        tcp: "tcp", udp: "udp", icmp: "icmp", icmpv6: "icmpv6", sctp: "sctp", dccp: "dccp",
        udplite: "udplite", gre: "gre",
    ]

    public static func name(of number: UInt8) -> String { names[number] ?? "unknown" }

    /// A protocol given by name or number ("tcp", "6"); nil when neither.
    public static func number(of text: String) -> UInt8? {
        if let number = UInt8(text) { return number }
        let lower = text.lowercased()
        return names.first { $0.value == lower }?.key
    }

    /// Whether the protocol's tuples carry ports.
    public static func hasPorts(_ number: UInt8) -> Bool {
        number == tcp || number == udp || number == sctp || number == dccp || number == udplite
    }
}

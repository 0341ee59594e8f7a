/// What libnetfilter_conntrack reads from one ctnetlink message, field by field.
///
/// ctdoctor decodes ctnetlink in Swift for speed; this is the yardstick its tests (and
/// the differential fuzzer) hold that decoder to: the C library that conntrack-tools
/// itself uses. Addresses are network-order bytes, numbers are host values.
public struct ReferenceConntrackFields: Sendable, Equatable {
    public var family: UInt8
    public var protocolNumber: UInt8
    public var originalSource: [UInt8]
    public var originalDestination: [UInt8]
    public var replySource: [UInt8]
    public var replyDestination: [UInt8]
    /// Ports for port protocols, nil otherwise.
    public var originalPorts: (source: UInt16, destination: UInt16)?
    public var replyPorts: (source: UInt16, destination: UInt16)?
    public var tcpState: UInt8?
    public var status: UInt32?
    public var timeout: UInt32?
    public var mark: UInt32?
    public var zone: UInt16?
    public var id: UInt32?
    /// Original packets, original bytes, reply packets, reply bytes.
    public var counters: [UInt64]?

    public init(
        family: UInt8, protocolNumber: UInt8, originalSource: [UInt8], originalDestination: [UInt8],
        replySource: [UInt8], replyDestination: [UInt8], originalPorts: (source: UInt16, destination: UInt16)?,
        replyPorts: (source: UInt16, destination: UInt16)?, tcpState: UInt8?, status: UInt32?, timeout: UInt32?,
        mark: UInt32?, zone: UInt16?, id: UInt32?, counters: [UInt64]?
    ) {
        self.family = family
        self.protocolNumber = protocolNumber
        self.originalSource = originalSource
        self.originalDestination = originalDestination
        self.replySource = replySource
        self.replyDestination = replyDestination
        self.originalPorts = originalPorts
        self.replyPorts = replyPorts
        self.tcpState = tcpState
        self.status = status
        self.timeout = timeout
        self.mark = mark
        self.zone = zone
        self.id = id
        self.counters = counters
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.family == rhs.family && lhs.protocolNumber == rhs.protocolNumber
            && lhs.originalSource == rhs.originalSource && lhs.originalDestination == rhs.originalDestination
            && lhs.replySource == rhs.replySource && lhs.replyDestination == rhs.replyDestination
            && lhs.originalPorts?.source == rhs.originalPorts?.source
            && lhs.originalPorts?.destination == rhs.originalPorts?.destination
            && lhs.replyPorts?.source == rhs.replyPorts?.source
            && lhs.replyPorts?.destination == rhs.replyPorts?.destination
            && lhs.tcpState == rhs.tcpState && lhs.status == rhs.status && lhs.timeout == rhs.timeout
            && lhs.mark == rhs.mark && lhs.zone == rhs.zone && lhs.id == rhs.id && lhs.counters == rhs.counters
    }
}

public enum ReferenceConntrackDecoder {
    /// Parses one whole netlink message (header included) with nfct_nlmsg_parse; nil when
    /// the library refuses it.
    public static func decode(message: [UInt8]) -> ReferenceConntrackFields? {
        nfctDecode(message)
    }
}

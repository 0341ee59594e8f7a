import CNetfilterConntrack

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


/// libnetfilter_conntrack's view of a message: nfct_nlmsg_parse, then nfct_get_attr_*.
func nfctDecode(_ message: [UInt8]) -> ReferenceConntrackFields? {
    guard message.count >= 16, let ct = nfct_new() else { return nil }
    defer { nfct_destroy(ct) }
    let parsed = message.withUnsafeBytes { raw in
        nfct_nlmsg_parse(raw.baseAddress!.assumingMemoryBound(to: nlmsghdr.self), ct)
    }
    guard parsed >= 0 else { return nil }
    func isSet(_ attribute: nf_conntrack_attr) -> Bool { nfct_attr_is_set(ct, attribute) > 0 }
    func u8(_ attribute: nf_conntrack_attr) -> UInt8? { isSet(attribute) ? nfct_get_attr_u8(ct, attribute) : nil }
    func u16(_ attribute: nf_conntrack_attr) -> UInt16? { isSet(attribute) ? nfct_get_attr_u16(ct, attribute) : nil }
    func u32(_ attribute: nf_conntrack_attr) -> UInt32? { isSet(attribute) ? nfct_get_attr_u32(ct, attribute) : nil }
    func u64(_ attribute: nf_conntrack_attr) -> UInt64? { isSet(attribute) ? nfct_get_attr_u64(ct, attribute) : nil }
    func bytes(_ attribute: nf_conntrack_attr, _ count: Int) -> [UInt8] {
        guard isSet(attribute), let pointer = nfct_get_attr(ct, attribute) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
    let family = u8(ATTR_ORIG_L3PROTO) ?? 0
    let v6 = family == UInt8(AF_INET6)
    func address(_ v4: nf_conntrack_attr, _ v6Attribute: nf_conntrack_attr) -> [UInt8] {
        v6 ? bytes(v6Attribute, 16) : bytes(v4, 4)
    }
    func ports(_ source: nf_conntrack_attr, _ destination: nf_conntrack_attr) -> (source: UInt16, destination: UInt16)? {
        guard let s = u16(source), let d = u16(destination) else { return nil }
        return (UInt16(bigEndian: s), UInt16(bigEndian: d))
    }
    var counters: [UInt64]?
    if isSet(ATTR_ORIG_COUNTER_PACKETS) || isSet(ATTR_REPL_COUNTER_PACKETS) {
        counters = [
            u64(ATTR_ORIG_COUNTER_PACKETS) ?? 0, u64(ATTR_ORIG_COUNTER_BYTES) ?? 0,
            u64(ATTR_REPL_COUNTER_PACKETS) ?? 0, u64(ATTR_REPL_COUNTER_BYTES) ?? 0,
        ]
    }
    let protocolNumber = u8(ATTR_ORIG_L4PROTO) ?? 0
    let hasPorts = [6, 17, 33, 132, 136].contains(protocolNumber)
    return ReferenceConntrackFields(
        family: family,
        protocolNumber: protocolNumber,
        originalSource: address(ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC),
        originalDestination: address(ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST),
        replySource: address(ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC),
        replyDestination: address(ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST),
        originalPorts: hasPorts ? ports(ATTR_ORIG_PORT_SRC, ATTR_ORIG_PORT_DST) : nil,
        replyPorts: hasPorts ? ports(ATTR_REPL_PORT_SRC, ATTR_REPL_PORT_DST) : nil,
        tcpState: u8(ATTR_TCP_STATE),
        status: u32(ATTR_STATUS),
        timeout: u32(ATTR_TIMEOUT),
        mark: u32(ATTR_MARK),
        zone: u16(ATTR_ZONE),
        id: u32(ATTR_ID),
        counters: counters
    )
}

import CNetfilter

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

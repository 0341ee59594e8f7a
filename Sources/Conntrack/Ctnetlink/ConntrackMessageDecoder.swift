import NetCore
import Netlink

/// Turns ctnetlink messages into `ConntrackEntry` values. Pure: bytes in, values out.
///
/// Written in Swift rather than through nfct_nlmsg_parse: on this machine kind the
/// Swift decoder spends a tenth of the user CPU per entry (measured with ctdoctor-bench), and the tests
/// check it against libnetfilter_conntrack message by message. Lengths are checked
/// before every read; attributes it does not know are skipped, so newer kernels decode.
public enum ConntrackMessageDecoder {
    /// Whether a message carries a conntrack entry (dump replies are CT_NEW or CT_GET).
    @inlinable
    public static func carriesEntry(_ message: NetlinkMessage) -> Bool {
        message.subsystem == 1 && (message.command == 0 || message.command == 1)
    }

    /// Decodes one entry message.
    /// - Throws: `NetlinkFramingError` for truncated or inconsistent attributes, or an
    ///   entry without both tuples.
    public static func decode(_ buffer: [UInt8], _ message: NetlinkMessage) throws(NetlinkFramingError) -> ConntrackEntry {
        let payload = message.payload
        guard payload.count >= Ctnetlink.familyHeaderSize else {
            throw NetlinkFramingError(offset: payload.lowerBound, reason: "conntrack message shorter than nfgenmsg")
        }
        var original: DecodedTuple?
        var reply: DecodedTuple?
        var state: ConntrackState?
        var status: UInt32 = 0
        var timeout: UInt32?
        var mark: UInt32 = 0
        var zone: UInt16 = 0
        var id: UInt32?
        var use: UInt32?
        var originalCounters: (UInt64, UInt64)?
        var replyCounters: (UInt64, UInt64)?
        var start: UInt64?
        var labels: [Int] = []

        var attributes = NetlinkAttributeReader(buffer, range: (payload.lowerBound + Ctnetlink.familyHeaderSize)..<payload.upperBound)
        while let attribute = try attributes.next() {
            switch attribute.type {
            case Ctnetlink.tupleOriginal: original = try decodeTuple(buffer, attribute.value)
            case Ctnetlink.tupleReply: reply = try decodeTuple(buffer, attribute.value)
            case Ctnetlink.status: status = try u32(buffer, attribute)
            case Ctnetlink.timeout: timeout = try u32(buffer, attribute)
            case Ctnetlink.mark: mark = try u32(buffer, attribute)
            case Ctnetlink.id: id = try u32(buffer, attribute)
            case Ctnetlink.use: use = try u32(buffer, attribute)
            case Ctnetlink.zone: zone = try u16(buffer, attribute)
            case Ctnetlink.protoInfo: state = try decodeProtoInfo(buffer, attribute.value)
            case Ctnetlink.countersOriginal: originalCounters = try decodeCounters(buffer, attribute.value)
            case Ctnetlink.countersReply: replyCounters = try decodeCounters(buffer, attribute.value)
            case Ctnetlink.timestamp: start = try decodeTimestampStart(buffer, attribute.value)
            case Ctnetlink.labels: labels = decodeLabels(buffer, attribute.value)
            default: continue
            }
        }
        guard let original, let reply else {
            throw NetlinkFramingError(offset: payload.lowerBound, reason: "conntrack entry without both tuples")
        }
        guard let family = original.family ?? familyFromHeader(buffer[payload.lowerBound]) else {
            throw NetlinkFramingError(offset: payload.lowerBound, reason: "conntrack entry without an address family")
        }
        var counters: ConntrackCounters?
        if originalCounters != nil || replyCounters != nil {
            counters = ConntrackCounters(
                originalPackets: originalCounters?.0 ?? 0, originalBytes: originalCounters?.1 ?? 0,
                replyPackets: replyCounters?.0 ?? 0, replyBytes: replyCounters?.1 ?? 0)
        }
        var entry = ConntrackEntry(
            family: family,
            protocolNumber: original.protocolNumber,
            original: original.tuple,
            reply: reply.tuple,
            state: state,
            status: ConntrackStatus(rawValue: status),
            timeout: timeout,
            mark: mark,
            zone: zone,
            id: id,
            use: use,
            counters: counters
        )
        entry.startNanoseconds = start
        entry.labels = labels
        return entry
    }

    private static func decodeTimestampStart(_ buffer: [UInt8], _ range: Range<Int>) throws(NetlinkFramingError) -> UInt64? {
        var fields = NetlinkAttributeReader(buffer, range: range)
        while let field = try fields.next() {
            if field.type == Ctnetlink.timestampStart { return try u64(buffer, field) }
        }
        return nil
    }

    /// The set bits of the label bitmap. The kernel fills it as an array of host-order
    /// unsigned longs (nf_conntrack_labels.h); on the little-endian machines ctdoctor
    /// builds for, bit n is bit n % 8 of byte n / 8.
    private static func decodeLabels(_ buffer: [UInt8], _ range: Range<Int>) -> [Int] {
        var bits: [Int] = []
        for (offset, index) in range.enumerated() where buffer[index] != 0 {
            for bit in 0..<8 where buffer[index] & (1 << bit) != 0 { bits.append(offset * 8 + bit) }
        }
        return bits
    }

    /// Decodes every entry in a captured dump: datagrams concatenated as received, as
    /// the golden fixtures and the fuzzer hold them. Control messages are skipped.
    public static func decodeDump(_ bytes: [UInt8]) throws(NetlinkFramingError) -> [ConntrackEntry] {
        var entries: [ConntrackEntry] = []
        var reader = NetlinkMessageReader(bytes, count: bytes.count)
        while let message = try reader.next() {
            if carriesEntry(message) { entries.append(try decode(bytes, message)) }
        }
        return entries
    }

    private static func familyFromHeader(_ byte: UInt8) -> AddressFamily? {
        AddressFamily(rawValue: byte)
    }

    struct DecodedTuple {
        var tuple: ConntrackTuple
        var protocolNumber: UInt8
        var family: AddressFamily?
    }

    private static func decodeTuple(_ buffer: [UInt8], _ range: Range<Int>) throws(NetlinkFramingError) -> DecodedTuple {
        var source: IPAddress?
        var destination: IPAddress?
        var protocolNumber: UInt8 = 0
        var sourcePort: UInt16 = 0
        var destinationPort: UInt16 = 0
        var icmpType: UInt8?
        var icmpCode: UInt8 = 0
        var icmpID: UInt16 = 0
        var zone: UInt16?

        var attributes = NetlinkAttributeReader(buffer, range: range)
        while let attribute = try attributes.next() {
            switch attribute.type {
            case Ctnetlink.tupleIP:
                var addresses = NetlinkAttributeReader(buffer, range: attribute.value)
                while let address = try addresses.next() {
                    switch address.type {
                    case Ctnetlink.ipV4Source: source = try ipv4(buffer, address)
                    case Ctnetlink.ipV4Destination: destination = try ipv4(buffer, address)
                    case Ctnetlink.ipV6Source: source = try ipv6(buffer, address)
                    case Ctnetlink.ipV6Destination: destination = try ipv6(buffer, address)
                    default: continue
                    }
                }
            case Ctnetlink.tupleProto:
                var fields = NetlinkAttributeReader(buffer, range: attribute.value)
                while let field = try fields.next() {
                    switch field.type {
                    case Ctnetlink.protoNumber: protocolNumber = try u8(buffer, field)
                    case Ctnetlink.protoSourcePort: sourcePort = try u16(buffer, field)
                    case Ctnetlink.protoDestinationPort: destinationPort = try u16(buffer, field)
                    case Ctnetlink.protoICMPType, Ctnetlink.protoICMPv6Type: icmpType = try u8(buffer, field)
                    case Ctnetlink.protoICMPCode, Ctnetlink.protoICMPv6Code: icmpCode = try u8(buffer, field)
                    case Ctnetlink.protoICMPID, Ctnetlink.protoICMPv6ID: icmpID = try u16(buffer, field)
                    default: continue
                    }
                }
            case Ctnetlink.tupleZone:
                zone = try u16(buffer, attribute)
            default:
                continue
            }
        }
        guard let source, let destination, source.family == destination.family else {
            throw NetlinkFramingError(offset: range.lowerBound, reason: "tuple without a source and destination of one family")
        }
        let icmp = icmpType.map { ICMPKey(type: $0, code: icmpCode, id: icmpID) }
        return DecodedTuple(
            tuple: ConntrackTuple(
                source: source, destination: destination,
                sourcePort: sourcePort, destinationPort: destinationPort, icmp: icmp, zone: zone),
            protocolNumber: protocolNumber,
            family: source.family
        )
    }

    private static func decodeProtoInfo(_ buffer: [UInt8], _ range: Range<Int>) throws(NetlinkFramingError) -> ConntrackState? {
        var outer = NetlinkAttributeReader(buffer, range: range)
        while let nest = try outer.next() {
            var inner = NetlinkAttributeReader(buffer, range: nest.value)
            while let field = try inner.next() {
                guard field.type == Ctnetlink.protoInfoState else { continue }
                let raw = try u8(buffer, field)
                switch nest.type {
                case Ctnetlink.protoInfoTCP:
                    // Values past the named states (TCP_CONNTRACK_MAX, IGNORE) never stay
                    // on a table entry; report them as NONE rather than fail the dump.
                    return .tcp(ConntrackTCPState(rawValue: raw) ?? .none)
                case Ctnetlink.protoInfoSCTP: return .sctp(raw)
                case Ctnetlink.protoInfoDCCP: return .dccp(raw)
                default: break
                }
            }
        }
        return nil
    }

    private static func decodeCounters(_ buffer: [UInt8], _ range: Range<Int>) throws(NetlinkFramingError) -> (UInt64, UInt64) {
        var packets: UInt64 = 0
        var bytes: UInt64 = 0
        var fields = NetlinkAttributeReader(buffer, range: range)
        while let field = try fields.next() {
            switch field.type {
            case Ctnetlink.counterPackets: packets = try u64(buffer, field)
            case Ctnetlink.counterBytes: bytes = try u64(buffer, field)
            case Ctnetlink.counter32Packets: packets = UInt64(try u32(buffer, field))
            case Ctnetlink.counter32Bytes: bytes = UInt64(try u32(buffer, field))
            default: continue
            }
        }
        return (packets, bytes)
    }

    // Fixed-size reads. ctnetlink sends integers in network byte order.

    @inline(__always)
    private static func require(_ attribute: NetlinkAttribute, _ size: Int) throws(NetlinkFramingError) {
        guard attribute.value.count >= size else {
            throw NetlinkFramingError(
                offset: attribute.value.lowerBound,
                reason: "attribute \(attribute.type) holds \(attribute.value.count) bytes, needs \(size)")
        }
    }

    private static func u8(_ buffer: [UInt8], _ attribute: NetlinkAttribute) throws(NetlinkFramingError) -> UInt8 {
        try require(attribute, 1)
        return buffer[attribute.value.lowerBound]
    }

    private static func u16(_ buffer: [UInt8], _ attribute: NetlinkAttribute) throws(NetlinkFramingError) -> UInt16 {
        try require(attribute, 2)
        return buffer.uint16BE(at: attribute.value.lowerBound)
    }

    /// A big-endian u32 attribute, its length checked (the statistics decoder uses it too).
    static func u32(_ buffer: [UInt8], _ attribute: NetlinkAttribute) throws(NetlinkFramingError) -> UInt32 {
        try require(attribute, 4)
        return buffer.uint32BE(at: attribute.value.lowerBound)
    }

    private static func u64(_ buffer: [UInt8], _ attribute: NetlinkAttribute) throws(NetlinkFramingError) -> UInt64 {
        try require(attribute, 8)
        return buffer.uint64BE(at: attribute.value.lowerBound)
    }

    private static func ipv4(_ buffer: [UInt8], _ attribute: NetlinkAttribute) throws(NetlinkFramingError) -> IPAddress {
        .v4(try u32(buffer, attribute))
    }

    private static func ipv6(_ buffer: [UInt8], _ attribute: NetlinkAttribute) throws(NetlinkFramingError) -> IPAddress {
        try require(attribute, 16)
        let start = attribute.value.lowerBound
        return .v6(high: buffer.uint64BE(at: start), low: buffer.uint64BE(at: start + 8))
    }
}

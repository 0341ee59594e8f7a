import NetCore

/// Parses the text forms of the conntrack table. Pure: bytes in, entries out.
///
/// Reads `conntrack -L` output (default, `-o extended`, `-o id`, any mix) and
/// /proc/net/nf_conntrack, which share one grammar:
///
///     [ipv4 2] tcp 6 117 TIME_WAIT src=… dst=… sport=… dport=… [packets=… bytes=…]
///     [UNREPLIED] src=… dst=… sport=… dport=… [packets=… bytes=…] [ASSURED] mark=0
///     [secctx=…] [zone=0] [delta-time=…] use=2 [id=…]
///
/// A direction's own zone follows its tuple (`zone-orig=5`, `zone-reply=7`); GRE tuples
/// carry `srckey=0x… dstkey=0x…` in place of ports, and /proc adds GRE's
/// `timeout=…, stream_timeout=…` before them.
///
/// Text does not carry the status word, only [UNREPLIED] (no SEEN_REPLY), [ASSURED]
/// and [OFFLOAD]/[HW_OFFLOAD]; SRC_NAT/DST_NAT are derived from the tuples, which is
/// what the kernel's bits mean. Blank lines and conntrack's "N flow entries have been
/// shown" summary are skipped and counted; anything else that is not an entry fails
/// with its line number.
public enum ConntrackTextParser {
    public struct Result: Sendable {
        public var entries: [ConntrackEntry]
        /// Lines that were not entries but were recognised and skipped (blank lines,
        /// conntrack's summary line).
        public var skippedLines: Int
    }

    public static func parse(_ bytes: [UInt8], source: String) throws(ParseError) -> Result {
        var entries: [ConntrackEntry] = []
        var skipped = 0
        var lines = LineSplitter(bytes)
        while let range = lines.next() {
            if let entry = try parseLine(bytes, range, source: source, line: lines.lineNumber) {
                entries.append(entry)
            } else {
                skipped += 1
            }
        }
        return Result(entries: entries, skippedLines: skipped)
    }

    /// Whether the token after the scanner's position is a state name or a tuple field:
    /// then the token just read stood where the timeout goes.
    static func looksLikeTimeoutSlot(after scanner: ByteScanner, protocolNumber: UInt8) -> Bool {
        var lookahead = scanner
        guard let next = lookahead.token() else { return false }
        let text = lookahead.text(next)
        return text.contains("=") || ConntrackState(protocolNumber: protocolNumber, name: text) != nil
    }

    /// Parses one line; nil for a blank line or conntrack's summary line.
    public static func parseLine(
        _ bytes: [UInt8], _ range: Range<Int>, source: String, line: Int
    ) throws(ParseError) -> ConntrackEntry? {
        var scanner = ByteScanner(bytes, range: range)
        scanner.skipBlanks()
        if scanner.isAtEnd { return nil }
        let place = LinePlace(source: source, line: line)
        if scanner.consume("conntrack v") { return nil }
        if scanner.peek == UInt8(ascii: "[") {
            let tag = scanner.token().map { scanner.text($0) } ?? "["
            throw place.fail("event", "\(tag) is a `conntrack -E` event, not a table entry; capture `conntrack -L` instead")
        }
        let (family, protocolNumber) = try header(&scanner, bytes, place)
        var fields = LineFields(protocolNumber: protocolNumber, place: place)
        while let token = scanner.token() {
            if let equals = bytes[token].firstIndex(of: UInt8(ascii: "=")) {
                try fields.read(key: scanner.text(token.lowerBound..<equals), value: (equals + 1)..<token.upperBound, of: bytes)
            } else {
                try fields.read(word: token, before: scanner, of: bytes)
            }
        }
        return try fields.entry(family: family)
    }

    /// `[l3name l3num] l4name l4num`: the family when the line names it, and the
    /// protocol number, checked against the name.
    static func header(
        _ scanner: inout ByteScanner, _ bytes: [UInt8], _ place: LinePlace
    ) throws(ParseError) -> (AddressFamily?, UInt8) {
        guard let first = scanner.token() else { throw place.fail("protocol", "missing") }
        var family: AddressFamily?
        var l4Name = first
        let firstText = scanner.text(first)
        if firstText == "ipv4" || firstText == "ipv6" {
            let named: AddressFamily = firstText == "ipv4" ? .ipv4 : .ipv6
            guard let number = scanner.token(), let value = UInt8(scanner.text(number)), value == named.rawValue else {
                throw place.fail("l3proto", "expected \(firstText)'s number \(named.rawValue)")
            }
            guard let next = scanner.token() else { throw place.fail("protocol", "missing after \(firstText)") }
            family = named
            l4Name = next
        }
        guard let numberRange = scanner.token(), let protocolNumber = UInt8(scanner.text(numberRange)) else {
            throw place.fail("protocol", "expected a protocol number after \(ParseError.quote(bytes[l4Name]))")
        }
        if let named = IPProtocolName.number(of: scanner.text(l4Name)), named != protocolNumber, scanner.text(l4Name) != "unknown" {
            throw place.fail("protocol", "\(scanner.text(l4Name)) is protocol \(named), not \(protocolNumber)")
        }
        return (family, protocolNumber)
    }
}

/// Where a line is, for its errors.
struct LinePlace {
    var source: String
    var line: Int

    func fail(_ field: String, _ reason: String) -> ParseError {
        ParseError(source: source, line: line, field: field, reason: reason)
    }
}

/// What a line says after its header, field by field: the timeout and state words, the
/// bracketed flags, and the key=value fields, in the order conntrack prints them.
private struct LineFields {
    let protocolNumber: UInt8
    let place: LinePlace
    var timeout: UInt32?
    var state: ConntrackState?
    var builder = TupleBuilder()
    var unreplied = false
    var status: ConntrackStatus = []
    var mark: UInt32 = 0
    var zone: UInt16 = 0
    var id: UInt32?
    var use: UInt32?
    /// Original packets and bytes, reply packets and bytes.
    var counters = [UInt64?](repeating: nil, count: 4)
    var sawTupleField = false
    var ageSeconds: UInt64?

    init(protocolNumber: UInt8, place: LinePlace) {
        self.protocolNumber = protocolNumber
        self.place = place
    }

    /// A word without `=`: a flag, the timeout, or the state (those two before any tuple).
    /// `scanner` stands after the word, for telling a broken timeout from a broken state.
    mutating func read(word token: Range<Int>, before scanner: ByteScanner, of bytes: [UInt8]) throws(ParseError) {
        let text = bytes[token]
        let word = scanner.text(token)
        if text.first == UInt8(ascii: "[") {
            switch word {
            case "[UNREPLIED]": unreplied = true
            case "[ASSURED]": status.insert(.assured)
            case "[OFFLOAD]": status.insert(.offload)
            case "[HW_OFFLOAD]": status.insert(.hardwareOffload)
            default: break  // other annotations, e.g. -o ktimestamp's [start=…]
            }
            return
        }
        if !sawTupleField && timeout == nil, let value = UInt32(word) {
            timeout = value
            return
        }
        guard !sawTupleField && state == nil else { throw place.fail("field", "unexpected \(ParseError.quote(text))") }
        guard let parsed = ConntrackState(protocolNumber: protocolNumber, name: word) else {
            // Where the timeout stands (a state or a tuple field follows), a word that is
            // neither is a broken timeout, not a broken state.
            if timeout == nil, ConntrackTextParser.looksLikeTimeoutSlot(after: scanner, protocolNumber: protocolNumber) {
                throw place.fail("timeout", "\(ParseError.quote(text)) is not a number of seconds")
            }
            throw place.fail("state", "\(ParseError.quote(text)) is not a \(IPProtocolName.name(of: protocolNumber)) state")
        }
        state = parsed
    }

    mutating func read(key: String, value valueRange: Range<Int>, of bytes: [UInt8]) throws(ParseError) {
        let value = bytes[valueRange]
        let place = self.place
        func number<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) throws(ParseError) -> T {
            var digits = ByteScanner(bytes, range: valueRange)
            guard let parsed = digits.decimal(), digits.isAtEnd, let result = T(exactly: parsed) else {
                throw place.fail(key, "\(ParseError.quote(value)) is not a number in 0...\(T.max)")
            }
            return result
        }
        switch key {
        case "src", "dst":
            sawTupleField = true
            guard let address = IPAddress(utf8: value) else { throw place.fail(key, "\(ParseError.quote(value)) is not an IP address") }
            if key == "src" {
                guard builder.startTuple(source: address) else { throw place.fail(key, "a third tuple") }
            } else {
                guard builder.setDestination(address) else { throw place.fail(key, "dst= before src=") }
            }
        case "sport": guard builder.setPort(source: try number(UInt16.self)) else { throw place.fail(key, "outside a tuple") }
        case "dport": guard builder.setPort(destination: try number(UInt16.self)) else { throw place.fail(key, "outside a tuple") }
        case "type": guard builder.setICMP(type: try number(UInt8.self)) else { throw place.fail(key, "outside a tuple") }
        case "code": guard builder.setICMP(code: try number(UInt8.self)) else { throw place.fail(key, "outside a tuple") }
        case "id":
            // Inside an ICMP tuple, id= is the echo id; after the tuples, the entry id.
            if builder.awaitingICMPID {
                _ = builder.setICMP(id: try number(UInt16.self))
            } else {
                id = try number(UInt32.self)
            }
        case "packets": counters[builder.tupleCount > 1 ? 2 : 0] = try number(UInt64.self)
        case "bytes": counters[builder.tupleCount > 1 ? 3 : 1] = try number(UInt64.self)
        case "mark": mark = try number(UInt32.self)
        case "zone": zone = try number(UInt16.self)
        case "use": use = try number(UInt32.self)
        case "zone-orig", "zone-reply":
            guard builder.setZone(try number(UInt16.self), reply: key == "zone-reply") else { throw place.fail(key, "before its tuple") }
        case "srckey", "dstkey":
            // GRE keys, printed as 0x%x: kept in the tuple's port fields, as netlink has them.
            var digits = ByteScanner(bytes, range: valueRange)
            guard digits.consume("0x"), let parsed = digits.hexNumber(), digits.isAtEnd, let keyValue = UInt16(exactly: parsed) else {
                throw place.fail(key, "\(ParseError.quote(value)) is not a hexadecimal key in 0x0...0xffff")
            }
            guard builder.setPort(source: key == "srckey" ? keyValue : nil, destination: key == "dstkey" ? keyValue : nil) else {
                throw place.fail(key, "outside a tuple")
            }
        case "delta-time": ageSeconds = try number(UInt64.self)
        default: break  // secmark, secctx, helper, labels, GRE's timeout=…, stream_timeout=…
        }
    }

    /// The entry the fields make, checked whole: two tuples of one family, the family
    /// the header named.
    func entry(family: AddressFamily?) throws(ParseError) -> ConntrackEntry {
        var builder = builder
        guard let (original, reply) = builder.finish() else {
            throw place.fail("tuple", "an entry needs an original and a reply tuple, each with src= and dst=")
        }
        guard original.source.family == original.destination.family, reply.source.family == reply.destination.family,
            original.source.family == reply.source.family
        else {
            throw place.fail("tuple", "the tuples mix IPv4 and IPv6 addresses")
        }
        if let family, family != original.source.family {
            throw place.fail("l3proto", "\(family.name) entry with \(original.source.family.name) addresses")
        }
        var status = status
        if !unreplied { status.insert(.seenReply) }
        var entry = ConntrackEntry(
            family: original.source.family, protocolNumber: protocolNumber, original: original, reply: reply, state: state,
            status: status, timeout: timeout, mark: mark, zone: zone, id: id, use: use)
        if entry.isDestinationNATed { entry.status.insert(.destinationNAT) }
        if entry.isSourceNATed { entry.status.insert(.sourceNAT) }
        if counters.contains(where: { $0 != nil }) {
            entry.counters = ConntrackCounters(
                originalPackets: counters[0] ?? 0, originalBytes: counters[1] ?? 0,
                replyPackets: counters[2] ?? 0, replyBytes: counters[3] ?? 0)
        }
        entry.ageSeconds = ageSeconds
        return entry
    }
}

/// Collects the two tuples of a text line: the first src= opens the original tuple,
/// the second the reply tuple.
private struct TupleBuilder {
    private var tuples: [ConntrackTuple] = []
    private var hasDestination = [false, false]
    private var icmpType: UInt8?
    private var icmpCode: UInt8 = 0
    private var icmpID: UInt16?

    var tupleCount: Int { tuples.count }

    /// True right after type= and code= of an ICMP tuple, before its id=.
    var awaitingICMPID: Bool { icmpType != nil && icmpID == nil }

    mutating func startTuple(source: IPAddress) -> Bool {
        guard tuples.count < 2 else { return false }
        closeICMP()
        tuples.append(ConntrackTuple(source: source, destination: source))
        return true
    }

    mutating func setDestination(_ address: IPAddress) -> Bool {
        guard !tuples.isEmpty else { return false }
        tuples[tuples.count - 1].destination = address
        hasDestination[tuples.count - 1] = true
        return true
    }

    mutating func setPort(source: UInt16? = nil, destination: UInt16? = nil) -> Bool {
        guard !tuples.isEmpty else { return false }
        if let source { tuples[tuples.count - 1].sourcePort = source }
        if let destination { tuples[tuples.count - 1].destinationPort = destination }
        return true
    }

    /// zone-orig= follows the original tuple, zone-reply= the reply tuple.
    mutating func setZone(_ zone: UInt16, reply: Bool) -> Bool {
        let index = reply ? 1 : 0
        guard tuples.count > index else { return false }
        tuples[index].zone = zone
        return true
    }

    mutating func setICMP(type: UInt8? = nil, code: UInt8? = nil, id: UInt16? = nil) -> Bool {
        guard !tuples.isEmpty else { return false }
        if let type { icmpType = type }
        if let code { icmpCode = code }
        if let id { icmpID = id }
        return true
    }

    private mutating func closeICMP() {
        if let icmpType, !tuples.isEmpty {
            tuples[tuples.count - 1].icmp = ICMPKey(type: icmpType, code: icmpCode, id: icmpID ?? 0)
        }
        icmpType = nil
        icmpCode = 0
        icmpID = nil
    }

    mutating func finish() -> (ConntrackTuple, ConntrackTuple)? {
        closeICMP()
        guard tuples.count == 2, hasDestination[0], hasDestination[1] else { return nil }
        return (tuples[0], tuples[1])
    }
}

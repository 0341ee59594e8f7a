import NetCore

/// Parses `conntrack -L -o xml` output. Pure: bytes in, entries out.
///
/// libnetfilter_conntrack writes a fixed, flat dialect: one `<flow>` per entry, holding
/// `<meta direction="original|reply">` with `<layer3>` (src, dst), `<layer4>` (sport,
/// dport; for ICMP nothing: the XML leaves type, code and id out, so ICMP flows read
/// from it have none) and optional counters, then
/// `<meta direction="independent">` with state, timeout, mark, zone, use, id and the
/// empty flags `<assured/>` and `<unreplied/>`. This reads that dialect — elements,
/// attributes, text, the five predefined entities — and nothing more of XML (no DTD,
/// CDATA or namespaces), which is why it is written here rather than pulling a general
/// XML parser (and libxml2) into a static binary. Unknown elements are skipped.
public enum ConntrackXMLParser {
    public static func parse(_ bytes: [UInt8], source: String) throws(ParseError) -> [ConntrackEntry] {
        var reader = XMLTokenReader(bytes: bytes, source: source)
        var entries: [ConntrackEntry] = []
        var flow: FlowBuilder?
        var path: [String] = []
        var direction = ""
        while let token = try reader.next() {
            switch token {
            case .open(let name, let attributes, let selfClosing):
                if name == "flow" {
                    if let type = attributes["type"] {
                        throw reader.fail("flow", "a `conntrack -E -o xml` event (type=\"\(type)\"), not a table entry; capture `conntrack -L -o xml` instead")
                    }
                    guard flow == nil else { throw reader.fail("flow", "a <flow> inside a <flow>") }
                    flow = FlowBuilder(line: reader.line)
                } else if name == "meta" {
                    direction = attributes["direction"] ?? ""
                } else if name == "layer3" || name == "layer4", flow != nil {
                    guard let number = attributes["protonum"].flatMap({ UInt8($0) }) else {
                        throw reader.fail(name, "protonum is missing or not a number")
                    }
                    if name == "layer4" { flow?.protocolNumber = number }
                } else if selfClosing, flow != nil, direction == "independent" {
                    if name == "assured" { flow?.status.insert(.assured) }
                    if name == "unreplied" { flow?.unreplied = true }
                }
                if !selfClosing { path.append(name) }
            case .close(let name):
                guard path.last == name else {
                    throw reader.fail(name, "</\(name)> closes <\(path.last ?? "nothing")>")
                }
                path.removeLast()
                if name == "flow", let finished = flow {
                    entries.append(try finished.entry(reader))
                    flow = nil
                }
            case .text(let text):
                guard flow != nil, let element = path.last else { continue }
                try flow!.set(element, text, direction: direction, reader: reader)
            }
        }
        if flow != nil || !path.isEmpty {
            throw reader.fail("document", "ends inside <\(path.last ?? "flow")>: truncated")
        }
        return entries
    }
}

/// The fields of one `<flow>` as they arrive.
private struct FlowBuilder {
    var line: Int
    var protocolNumber: UInt8?
    var addresses: [String: IPAddress] = [:]  // "original.src", "reply.dst"...
    var ports: [String: UInt16] = [:]
    var icmp: [String: UInt16] = [:]
    var counters: [String: UInt64] = [:]
    var stateName: String?
    var timeout: UInt32?
    var mark: UInt32 = 0
    var zone: UInt16 = 0
    var tupleZones: [String: UInt16] = [:]
    var ageSeconds: UInt64?
    var use: UInt32?
    var id: UInt32?
    var status: ConntrackStatus = []
    var unreplied = false

    mutating func set(_ element: String, _ text: String, direction: String, reader: XMLTokenReader) throws(ParseError) {
        func number<T: FixedWidthInteger>(_: T.Type) throws(ParseError) -> T {
            guard let value = T(text) else { throw reader.fail(element, "\(ParseError.quote(Array(text.utf8))) is not a number in 0...\(T.max)") }
            return value
        }
        let key = "\(direction).\(element)"
        switch (direction, element) {
        case ("original", "src"), ("original", "dst"), ("reply", "src"), ("reply", "dst"):
            guard let address = IPAddress(text) else { throw reader.fail(element, "\(ParseError.quote(Array(text.utf8))) is not an IP address") }
            addresses[key] = address
        case ("original", "sport"), ("original", "dport"), ("reply", "sport"), ("reply", "dport"):
            ports[key] = try number(UInt16.self)
        case ("original", "srckey"), ("original", "dstkey"), ("reply", "srckey"), ("reply", "dstkey"):
            // GRE keys, written 0x%x: held in the port fields, as netlink has them.
            guard text.hasPrefix("0x"), let value = UInt16(text.dropFirst(2), radix: 16) else {
                throw reader.fail(element, "\(ParseError.quote(Array(text.utf8))) is not a hexadecimal key in 0x0...0xffff")
            }
            ports["\(direction).\(element == "srckey" ? "sport" : "dport")"] = value
        case ("original", "zone"), ("reply", "zone"):
            tupleZones[direction] = try number(UInt16.self)
        case ("independent", "deltatime"): ageSeconds = try number(UInt64.self)
        case ("original", "type"), ("original", "code"), ("original", "id"), ("reply", "type"), ("reply", "code"), ("reply", "id"):
            icmp[key] = try number(UInt16.self)
        case ("original", "packets"), ("original", "bytes"), ("reply", "packets"), ("reply", "bytes"):
            counters[key] = try number(UInt64.self)
        case ("independent", "state"): stateName = text
        case ("independent", "timeout"): timeout = try number(UInt32.self)
        case ("independent", "mark"): mark = try number(UInt32.self)
        case ("independent", "zone"): zone = try number(UInt16.self)
        case ("independent", "use"): use = try number(UInt32.self)
        case ("independent", "id"): id = try number(UInt32.self)
        default: break  // secmark, deltatime, timestamps, helper…
        }
    }

    func tuple(_ direction: String, reader: XMLTokenReader) throws(ParseError) -> ConntrackTuple {
        guard let source = addresses["\(direction).src"], let destination = addresses["\(direction).dst"] else {
            throw reader.fail("meta", "the flow starting at line \(line) has no \(direction) src and dst")
        }
        var tuple = ConntrackTuple(
            source: source, destination: destination, sourcePort: ports["\(direction).sport"] ?? 0,
            destinationPort: ports["\(direction).dport"] ?? 0, zone: tupleZones[direction])
        if let type = icmp["\(direction).type"] {
            tuple.icmp = ICMPKey(
                type: UInt8(clamping: type), code: UInt8(clamping: icmp["\(direction).code"] ?? 0), id: icmp["\(direction).id"] ?? 0)
        }
        return tuple
    }

    func entry(_ reader: XMLTokenReader) throws(ParseError) -> ConntrackEntry {
        guard let protocolNumber else { throw reader.fail("layer4", "the flow starting at line \(line) has no layer4 protonum") }
        let original = try tuple("original", reader: reader)
        let reply = try tuple("reply", reader: reader)
        guard original.source.family == original.destination.family, original.source.family == reply.source.family,
            reply.source.family == reply.destination.family
        else { throw reader.fail("layer3", "the flow starting at line \(line) mixes IPv4 and IPv6 addresses") }
        var state: ConntrackState?
        if let stateName {
            // libnetfilter_conntrack's XML writer names SCTP and DCCP states from its TCP
            // table (SCTP ESTABLISHED, 3, comes out as FIN_WAIT): read the number back.
            var named = ConntrackState(protocolNumber: protocolNumber, name: stateName)
            if named == nil, protocolNumber == 132 || protocolNumber == 33, let tcp = ConntrackTCPState(name: stateName) {
                named = protocolNumber == 132 ? .sctp(tcp.rawValue) : .dccp(tcp.rawValue)
            }
            guard let parsed = named else {
                throw reader.fail("state", "\(stateName) is not a \(IPProtocolName.name(of: protocolNumber)) state")
            }
            state = parsed
        }
        var entry = ConntrackEntry(
            family: original.source.family, protocolNumber: protocolNumber, original: original, reply: reply, state: state,
            status: status, timeout: timeout, mark: mark, zone: zone, id: id, use: use)
        // As in the text forms: SEEN_REPLY unless unreplied, NAT bits from the tuples.
        if !unreplied { entry.status.insert(.seenReply) }
        entry.ageSeconds = ageSeconds
        if entry.isDestinationNATed { entry.status.insert(.destinationNAT) }
        if entry.isSourceNATed { entry.status.insert(.sourceNAT) }
        if !counters.isEmpty {
            entry.counters = ConntrackCounters(
                originalPackets: counters["original.packets"] ?? 0, originalBytes: counters["original.bytes"] ?? 0,
                replyPackets: counters["reply.packets"] ?? 0, replyBytes: counters["reply.bytes"] ?? 0)
        }
        return entry
    }
}

/// Splits the XML dialect into tags and text, keeping the line for errors.
struct XMLTokenReader {
    enum Token {
        case open(String, [String: String], selfClosing: Bool)
        case close(String)
        case text(String)
    }

    let bytes: [UInt8]
    let source: String
    var offset = 0
    private(set) var line = 1

    init(bytes: [UInt8], source: String) {
        self.bytes = bytes
        self.source = source
    }

    func fail(_ field: String, _ reason: String) -> ParseError {
        ParseError(source: source, line: line, field: field, reason: reason)
    }

    mutating func advance() {
        if bytes[offset] == 0x0A { line += 1 }
        offset += 1
    }

    mutating func next() throws(ParseError) -> Token? {
        while offset < bytes.count {
            if bytes[offset] != UInt8(ascii: "<") {
                let start = offset
                while offset < bytes.count && bytes[offset] != UInt8(ascii: "<") { advance() }
                let raw = bytes[start..<offset]
                if raw.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { continue }
                return .text(try decodeEntities(raw))
            }
            let start = offset
            while offset < bytes.count && bytes[offset] != UInt8(ascii: ">") { advance() }
            guard offset < bytes.count else { throw fail("tag", "unclosed tag \(ParseError.quote(bytes[start...])): truncated") }
            advance()
            let inner = bytes[(start + 1)..<(offset - 1)]
            guard let first = inner.first else { throw fail("tag", "empty tag <>") }
            if first == UInt8(ascii: "?") || first == UInt8(ascii: "!") { continue }  // <?xml …?>, comments
            if first == UInt8(ascii: "/") {
                return .close(String(decoding: inner.dropFirst(), as: UTF8.self).trimmingBlanks())
            }
            let selfClosing = inner.last == UInt8(ascii: "/")
            let body = String(decoding: selfClosing ? inner.dropLast() : inner, as: UTF8.self)
            return try parseTag(body, selfClosing: selfClosing)
        }
        return nil
    }

    func parseTag(_ body: String, selfClosing: Bool) throws(ParseError) -> Token {
        let name = String(body.prefix { !$0.isWhitespace })
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) else {
            throw fail("tag", "\(ParseError.quote(Array(body.utf8))) is not an element")
        }
        var attributes: [String: String] = [:]
        var rest = body.dropFirst(name.count)
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingBlanks()
            var value = rest[rest.index(after: equals)...].drop { $0 == " " }
            guard let quote = value.first, quote == "\"" || quote == "'" else {
                throw fail(name, "attribute \(key) has an unquoted value")
            }
            value = value.dropFirst()
            guard let end = value.firstIndex(of: quote) else { throw fail(name, "attribute \(key) is not closed") }
            attributes[key] = String(value[..<end])
            rest = value[value.index(after: end)...]
        }
        return .open(name, attributes, selfClosing: selfClosing)
    }

    func decodeEntities(_ raw: ArraySlice<UInt8>) throws(ParseError) -> String {
        let text = String(decoding: raw, as: UTF8.self)
        guard text.contains("&") else { return text.trimmingBlanks() }
        var result = ""
        var rest = Substring(text)
        while let ampersand = rest.firstIndex(of: "&") {
            result += rest[..<ampersand]
            guard let semicolon = rest[ampersand...].firstIndex(of: ";") else { throw fail("text", "unterminated entity") }
            switch rest[rest.index(after: ampersand)..<semicolon] {
            case "lt": result += "<"
            case "gt": result += ">"
            case "amp": result += "&"
            case "quot": result += "\""
            case "apos": result += "'"
            case let other: throw fail("text", "unknown entity &\(other);")
            }
            rest = rest[rest.index(after: semicolon)...]
        }
        return (result + rest).trimmingBlanks()
    }
}

extension StringProtocol {
    fileprivate func trimmingBlanks() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

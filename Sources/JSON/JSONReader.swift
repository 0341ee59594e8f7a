import NetCore

/// A JSON error in one line: where (a line of the text, or a key path) and what.
public struct JSONError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// A parsed JSON value: ctdoctor's own documents read back (snapshots, listings), and
/// container runtimes' config files.
///
/// Written here rather than taken from FoundationEssentials' JSONDecoder because of
/// what a user sees when a file is bad: on Linux that decoder reports every syntax
/// error, a truncated file and an out-of-range number alike as "The given data was not
/// valid JSON.", without line or key. This reader says where (line, key path) and what.
/// Integers keep their digits, so 64-bit counters and inodes come back exact.
public enum JSONNode: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text as written; read it with `integer` or `double`.
    case number(String)
    case string(String)
    case array([JSONNode])
    case object([String: JSONNode])
}

/// Where a value sits in a document ("conntrack.entries[3].original.src"), for errors.
public struct JSONPath: Sendable, CustomStringConvertible {
    public var text: String
    public static let root = JSONPath(text: "")
    public func key(_ key: String) -> JSONPath { JSONPath(text: text.isEmpty ? key : "\(text).\(key)") }
    public func index(_ index: Int) -> JSONPath { JSONPath(text: "\(text)[\(index)]") }
    public var description: String { text.isEmpty ? "the document" : text }
}

/// A value and its place, with typed accessors that fail with the place in the message.
public struct JSONField: Sendable {
    public var node: JSONNode?
    public var path: JSONPath

    public init(node: JSONNode?, path: JSONPath = .root) {
        self.node = node
        self.path = path
    }

    public func fail(_ reason: String) -> JSONError { JSONError("\(path): \(reason)") }

    public subscript(key: String) -> JSONField {
        if case .object(let members) = node { return JSONField(node: members[key], path: path.key(key)) }
        return JSONField(node: nil, path: path.key(key))
    }

    public var isNull: Bool {
        switch node {
        case nil, .null?: true
        default: false
        }
    }

    public func object() throws(JSONError) -> [String: JSONNode] {
        guard case .object(let members) = node else { throw fail(node == nil ? "missing" : "expected an object") }
        return members
    }

    public func array() throws(JSONError) -> [JSONField] {
        guard case .array(let items) = node else { throw fail(node == nil ? "missing" : "expected an array") }
        return items.enumerated().map { JSONField(node: $1, path: path.index($0)) }
    }

    public func string() throws(JSONError) -> String {
        guard case .string(let value) = node else { throw fail(node == nil ? "missing" : "expected a string") }
        return value
    }

    public func optionalString() throws(JSONError) -> String? { isNull ? nil : try string() }

    public func bool() throws(JSONError) -> Bool {
        guard case .bool(let value) = node else { throw fail(node == nil ? "missing" : "expected true or false") }
        return value
    }

    public func optionalBool() throws(JSONError) -> Bool? { isNull ? nil : try bool() }

    public func integer<T: FixedWidthInteger>(_: T.Type = T.self) throws(JSONError) -> T {
        guard case .number(let text) = node else { throw fail(node == nil ? "missing" : "expected a number") }
        guard let value = T(text) else { throw fail("\(text) is not an integer in \(T.min)...\(T.max)") }
        return value
    }

    public func optionalInteger<T: FixedWidthInteger>(_: T.Type = T.self) throws(JSONError) -> T? {
        isNull ? nil : try integer(T.self)
    }

    /// A number within `range`: what JSON's types cannot say (a negative timeout, an
    /// uptime of 1e300 s) is refused here, where the place in the document is known.
    public func integer<T: FixedWidthInteger>(in range: ClosedRange<T>) throws(JSONError) -> T {
        let value = try integer(T.self)
        guard range.contains(value) else { throw fail("\(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    public func optionalInteger<T: FixedWidthInteger>(in range: ClosedRange<T>) throws(JSONError) -> T? {
        isNull ? nil : try integer(in: range)
    }

    /// A finite number: "1e400", which parses to infinity, is refused.
    public func double() throws(JSONError) -> Double {
        guard case .number(let text) = node, let value = Double(text) else {
            throw fail(node == nil ? "missing" : "expected a number")
        }
        guard value.isFinite else { throw fail("\(text) is not a finite number") }
        return value
    }

    public func double(in range: ClosedRange<Double>) throws(JSONError) -> Double {
        let value = try double()
        guard range.contains(value) else { throw fail("\(value) is outside \(range.lowerBound)...\(range.upperBound)") }
        return value
    }

    public func optionalDouble() throws(JSONError) -> Double? { isNull ? nil : try double() }

    public func optionalDouble(in range: ClosedRange<Double>) throws(JSONError) -> Double? { isNull ? nil : try double(in: range) }
}

/// RFC 8259 JSON, bytes to `JSONNode`. Nesting is limited (hostile input must not
/// exhaust the stack); errors give the line.
public struct JSONReader {
    public static let maximumDepth = 64

    let bytes: [UInt8]
    var offset: Int
    let end: Int
    var stream: Stream?

    init(_ bytes: [UInt8], range: Range<Int>? = nil) {
        self.bytes = bytes
        self.offset = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? bytes.count
    }

    /// Parses one whole document (whitespace around it allowed).
    public static func parse(_ bytes: [UInt8], range: Range<Int>? = nil) throws(JSONError) -> JSONNode {
        var reader = JSONReader(bytes, range: range)
        let value = try reader.value(depth: 0)
        reader.skipWhitespace()
        guard reader.offset == reader.end else { throw reader.fail("unexpected text after the document") }
        return value
    }

    /// Where streamed elements go, and which arrays stream.
    final class Stream {
        let paths: Set<String>
        /// Every proper prefix of a streamed path: only under these is a path tracked.
        let prefixes: Set<String>
        let element: (JSONField) -> Void

        init(paths: Set<String>, element: @escaping (JSONField) -> Void) {
            self.paths = paths
            var prefixes: Set<String> = [""]
            for path in paths {
                let parts = path.split(separator: ".")
                for count in 1..<max(parts.count, 1) { prefixes.insert(parts.prefix(count).joined(separator: ".")) }
            }
            self.prefixes = prefixes
            self.element = element
        }
    }

    /// Parses a document, handing each element of the arrays at `streamedPaths`
    /// ("conntrack.entries", object keys joined by dots) to `element` as soon as it is
    /// read, in order, instead of keeping it: the document holds those arrays empty. A
    /// snapshot's tables are most of it, so memory stays near the input's own size
    /// instead of a tree several times larger.
    public static func parse(
        _ bytes: [UInt8], streaming streamedPaths: Set<String>, element: (JSONField) -> Void
    ) throws(JSONError) -> JSONNode {
        try withoutActuallyEscaping(element) { (element) throws(JSONError) -> JSONNode in
            var reader = JSONReader(bytes)
            reader.stream = Stream(paths: streamedPaths, element: element)
            let value = try reader.value(depth: 0, path: "")
            reader.skipWhitespace()
            guard reader.offset == reader.end else { throw reader.fail("unexpected text after the document") }
            return value
        }
    }

    var line: Int { bytes[..<min(offset, bytes.count)].reduce(1) { $1 == 0x0A ? $0 + 1 : $0 } }

    func fail(_ reason: String) -> JSONError {
        offset >= end
            ? JSONError("not valid JSON: it ends too early (truncated?)")
            : JSONError("not valid JSON at line \(line): \(reason)")
    }

    mutating func skipWhitespace() {
        while offset < end, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[offset]) { offset += 1 }
    }

    mutating func literal(_ text: String, _ value: JSONNode) throws(JSONError) -> JSONNode {
        for byte in text.utf8 {
            guard offset < end, bytes[offset] == byte else { throw fail("expected \(text)") }
            offset += 1
        }
        return value
    }

    /// Consumes `byte` if it is next (after whitespace).
    mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard offset < end, bytes[offset] == byte else { return false }
        offset += 1
        return true
    }

    /// - Parameter path: the value's key path while it may lead to a streamed array; nil
    ///   elsewhere (paths are not built for the rest of the document).
    mutating func value(depth: Int, path: String? = nil) throws(JSONError) -> JSONNode {
        guard depth < Self.maximumDepth else { throw fail("nested deeper than \(Self.maximumDepth) levels") }
        skipWhitespace()
        guard offset < end else { throw fail("expected a value") }
        switch bytes[offset] {
        case UInt8(ascii: "{"):
            offset += 1
            var members: [String: JSONNode] = [:]
            if consume(UInt8(ascii: "}")) { return .object(members) }
            repeat {
                skipWhitespace()
                guard offset < end, bytes[offset] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let key = try string()
                guard consume(UInt8(ascii: ":")) else { throw fail("expected ':' after \"\(key)\"") }
                var childPath: String?
                if let path, let stream, !key.contains(".") {
                    let candidate = path.isEmpty ? key : "\(path).\(key)"
                    if stream.prefixes.contains(candidate) || stream.paths.contains(candidate) {
                        // A streamed table given twice would be read twice: refuse it.
                        guard members[key] == nil else { throw fail("\"\(key)\" given twice") }
                        childPath = candidate
                    }
                }
                members[key] = try value(depth: depth + 1, path: childPath)
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "}")) else { throw fail("expected ',' or '}'") }
            return .object(members)
        case UInt8(ascii: "["):
            offset += 1
            var items: [JSONNode] = []
            if consume(UInt8(ascii: "]")) { return .array(items) }
            let streamed = path.flatMap { path in stream.flatMap { $0.paths.contains(path) ? $0 : nil } }
            var index = 0
            repeat {
                let item = try value(depth: depth + 1)
                if let streamed, let path {
                    streamed.element(JSONField(node: item, path: JSONPath(text: path).index(index)))
                } else {
                    items.append(item)
                }
                index += 1
            } while consume(UInt8(ascii: ","))
            guard consume(UInt8(ascii: "]")) else { throw fail("expected ',' or ']'") }
            return .array(items)
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try number()
        default:
            throw fail("unexpected character \(ParseError.quote(bytes[offset..<min(offset + 10, end)]))")
        }
    }

    mutating func number() throws(JSONError) -> JSONNode {
        let start = offset
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        func digits() -> Int {
            let first = offset
            while offset < end, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) { offset += 1 }
            return offset - first
        }
        guard digits() > 0 else { throw fail("a number needs digits") }
        if offset < end, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            guard digits() > 0 else { throw fail("a number needs digits after '.'") }
        }
        if offset < end, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            offset += 1
            if offset < end, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard digits() > 0 else { throw fail("a number needs digits in its exponent") }
        }
        return .number(String(decoding: bytes[start..<offset], as: UTF8.self))
    }

    mutating func string() throws(JSONError) -> String {
        offset += 1  // the opening quote
        var utf8: [UInt8] = []
        while true {
            guard offset < end else { throw fail("unterminated string") }
            let byte = bytes[offset]
            offset += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard offset < end else { throw fail("unterminated escape") }
                let escaped = bytes[offset]
                offset += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(escaped)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800...0xDBFF).contains(code) {
                        // A surrogate pair: the low half must follow.
                        guard offset + 1 < end, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                            throw fail("a lone UTF-16 surrogate")
                        }
                        offset += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("a lone UTF-16 surrogate") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw fail("\\u escape of an invalid code point") }
                    utf8 += Array(String(Character(scalar)).utf8)
                default:
                    throw fail("unknown escape \\\(Character(Unicode.Scalar(escaped)))")
                }
            case 0..<0x20:
                throw fail("a control character inside a string")
            default:
                utf8.append(byte)
            }
        }
    }

    mutating func hex4() throws(JSONError) -> UInt32 {
        guard offset + 4 <= end, let value = UInt32(String(decoding: bytes[offset..<(offset + 4)], as: UTF8.self), radix: 16) else {
            throw fail("\\u needs four hex digits")
        }
        offset += 4
        return value
    }
}

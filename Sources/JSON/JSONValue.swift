/// A JSON document with its keys in the order written, for reports whose size does not
/// call for the streaming writers (findings, diagnoses, lint results).
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    /// Counters, inodes and cookies are unsigned 64-bit and may exceed Int64.
    case unsigned(UInt64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.unsigned(let a), .unsigned(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.map(\.0) == b.map(\.0) && a.map(\.1) == b.map(\.1)
        default: false
        }
    }

    /// Compact JSON text, one line.
    public var text: String {
        var out: [UInt8] = []
        write(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public func write(to out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let value): out.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer(let value): out.append(contentsOf: String(value).utf8)
        case .unsigned(let value): out.append(contentsOf: String(value).utf8)
        case .number(let value):
            // JSON has no NaN or infinity; a number that is not finite is unknown.
            guard value.isFinite else {
                out.append(contentsOf: "null".utf8)
                return
            }
            out.append(contentsOf: (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)").utf8)
        case .string(let value):
            out.appendRecord(bound: OutputSpan<UInt8>.jsonStringBound(value)) { $0.write(jsonString: value) }
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                value.write(to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            Self.writeMembers(members, to: &out)
            out.append(UInt8(ascii: "}"))
        }
    }

    /// An object's members without its braces, for documents that stream an array after
    /// them (`{"source":"sock_diag","items":[…]}`).
    public static func writeMembers(_ members: [(String, JSONValue)], to out: inout [UInt8]) {
        for (index, (key, value)) in members.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.appendRecord(bound: OutputSpan<UInt8>.jsonStringBound(key) + 1) {
                $0.write(jsonString: key)
                $0.append(UInt8(ascii: ":"))
            }
            value.write(to: &out)
        }
    }
}

extension JSONValue {
    /// Any integer, exactly: as `.integer` when it fits Int64, else `.unsigned`.
    public static func integer<T: BinaryInteger>(_ value: T?) -> JSONValue {
        guard let value else { return .null }
        if let signed = Int64(exactly: value) { return .integer(signed) }
        return UInt64(exactly: value).map { .unsigned($0) } ?? .null
    }
    public static func string(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
    public static func strings(_ values: [String]) -> JSONValue { .array(values.map { .string($0) }) }
}

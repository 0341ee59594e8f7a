import NetCore

/// Records are written into an `OutputSpan`: after reserving a record's worst-case size
/// once, each byte costs a capacity check and a store, with none of the uniqueness
/// checks that `Array.append` repeats per call (which dominated the profile of a
/// 262,144-entry ndjson dump). Safe code throughout: the span traps rather than overrun.
extension OutputSpan where Element == UInt8 {
    /// Appends text that is already valid in the output (ASCII literals, keys). Reads
    /// it through its contiguous UTF-8 span, a quarter faster than the UTF8View.
    @inlinable
    public mutating func write(_ text: String) {
        let bytes = text.utf8Span.span
        for index in bytes.indices { append(bytes[index]) }
    }

    @inlinable
    public mutating func write(bytes: [UInt8]) {
        for byte in bytes { append(byte) }
    }

    /// Appends an unsigned integer in decimal without going through String: reserves
    /// the digits, then fills them from the right.
    @inlinable
    public mutating func write(decimal value: UInt64) {
        var digitCount = 1
        var probe = value
        while probe >= 10 {
            probe /= 10
            digitCount += 1
        }
        let end = count + digitCount
        append(repeating: 0x30, count: digitCount)
        var remaining = value
        var index = end - 1
        while remaining > 0 {
            self[index] = 0x30 &+ UInt8(truncatingIfNeeded: remaining % 10)
            remaining /= 10
            index -= 1
        }
    }

    /// Appends an unsigned integer in lowercase hexadecimal, without leading zeros.
    @inlinable
    public mutating func write(hexadecimal value: UInt64) {
        var shift = 60
        while shift > 0 && value >> UInt64(shift) == 0 { shift -= 4 }
        while shift >= 0 {
            append(hexDigit(UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xF))
            shift -= 4
        }
    }

    @inlinable
    public mutating func write<T: BinaryInteger>(number value: T) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            write(decimal: UInt64(0 - Int64(value)))
        } else {
            write(decimal: UInt64(value))
        }
    }

    @inlinable
    public mutating func write<T: BinaryInteger>(optionalNumber value: T?) {
        if let value { write(number: value) } else { write("null") }
    }

    /// The most bytes `write(jsonString:)` can produce for `text`.
    public static func jsonStringBound(_ text: String) -> Int { text.utf8.count * 6 + 2 }

    /// Appends `text` as a JSON string literal, escaping what RFC 8259 requires.
    public mutating func write(jsonString text: String) {
        append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                append(UInt8(ascii: "\\"))
                append(byte)
            case 0x0A: write("\\n")
            case 0x0D: write("\\r")
            case 0x09: write("\\t")
            case 0..<0x20:
                write("\\u00")
                append(hexDigit(byte >> 4))
                append(hexDigit(byte & 0xF))
            default: append(byte)
            }
        }
        append(UInt8(ascii: "\""))
    }

    /// Appends an IP address as a JSON string (at most 47 bytes).
    @inlinable
    public mutating func write(jsonAddress address: IPAddress) {
        append(UInt8(ascii: "\""))
        address.writeText(to: &self)
        append(UInt8(ascii: "\""))
    }

    /// Appends an endpoint as ss prints it, `10.0.0.1:80` or `[::1]:80` (the text
    /// `Endpoint.description` gives), at most 53 bytes.
    @inlinable
    public mutating func write(endpoint: Endpoint) {
        if case .v6 = endpoint.address { append(UInt8(ascii: "[")) }
        endpoint.address.writeText(to: &self)
        if case .v6 = endpoint.address { append(UInt8(ascii: "]")) }
        append(UInt8(ascii: ":"))
        write(decimal: UInt64(endpoint.port))
    }

    /// Appends a JSON array of strings.
    public mutating func write(jsonStrings strings: [String]) {
        append(UInt8(ascii: "["))
        for (index, string) in strings.enumerated() {
            if index > 0 { append(UInt8(ascii: ",")) }
            write(jsonString: string)
        }
        append(UInt8(ascii: "]"))
    }
}

@usableFromInline
func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 0x30 + nibble : 0x57 + nibble }

extension Array where Element == UInt8 {
    /// Appends one record of at most `bound` bytes, written by `body` into a span.
    @inlinable
    public mutating func appendRecord(bound: Int, _ body: (inout OutputSpan<UInt8>) -> Void) {
        append(addingCapacity: bound) { span in body(&span) }
    }
}

import NetCore

/// Records are written into an `OutputSpan`: after reserving a record's worst-case size
/// once, each byte costs a capacity check and a store, with none of the uniqueness
/// checks that `Array.append` repeats per call (which dominated the profile of a
/// 262,144-entry ndjson dump). Safe code but for the one bulk copy in Internals/, which
/// checks the capacity first: the span traps rather than overrun.
extension OutputSpan where Element == UInt8 {
    /// Appends a literal (keys, punctuation), copied in one piece from the binary's
    /// constant data: a StaticString is a pointer and a length, where a String literal
    /// costs a UTF-8 span built for each call (a fifth of an ndjson listing's CPU).
    @inlinable
    public mutating func write(_ literal: StaticString) {
        literal.withUTF8Buffer { append(copying: $0) }
    }

    /// Appends text that is already valid in the output (names from a fixed table,
    /// never escaped), copied from its contiguous UTF-8 span in one piece.
    @inlinable
    public mutating func write(text: String) {
        append(copying: text.utf8Span.span)
    }

    @inlinable
    public mutating func write(bytes: [UInt8]) {
        append(copying: bytes.span)
    }

    /// Appends an unsigned integer in decimal without going through String: the digits
    /// are made right to left on the stack, then copied in one piece. One digit (zones,
    /// marks, use counts) is one append.
    @inlinable
    public mutating func write(decimal value: UInt64) {
        if value < 10 {
            append(0x30 &+ UInt8(truncatingIfNeeded: value))
            return
        }
        var digits = InlineArray<20, UInt8>(repeating: 0)
        var first = 20
        var remaining = value
        while remaining > 0 {
            first -= 1
            digits[first] = 0x30 &+ UInt8(truncatingIfNeeded: remaining % 10)
            remaining /= 10
        }
        append(copying: digits.span.extracting(first..<20))
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
        // Most strings (state and protocol names, pod names) need no escape: one scan of
        // the contiguous bytes, then one copy, instead of a switch per byte of the view.
        let bytes = text.utf8Span.span
        var plain = true
        for index in bytes.indices where bytes[index] < 0x20 || bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "\\") {
            plain = false
            break
        }
        if plain {
            append(copying: bytes)
            append(UInt8(ascii: "\""))
            return
        }
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

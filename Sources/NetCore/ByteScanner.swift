/// A forward-only cursor over the bytes of one line.
///
/// Parsers of kernel text (/proc/net/tcp, /proc/net/nf_conntrack, `conntrack -L`) use
/// this instead of splitting into Strings: a struct cursor over `[UInt8]` runs as fast as
/// hand-written C here, while closures capturing a `var` index cost 1.4–1.8× (measured on
/// the /proc/net/tcp parser with ctdoctor-bench). Carriage returns count as blanks, so CRLF input
/// parses like LF input.
public struct ByteScanner {
    public let bytes: [UInt8]
    public var index: Int
    public let end: Int

    @inlinable
    public init(_ bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.index = range.lowerBound
        self.end = range.upperBound
    }

    @inlinable public var isAtEnd: Bool { index >= end }

    @inlinable public var peek: UInt8? { index < end ? bytes[index] : nil }

    @inlinable
    public static func isBlank(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D
    }

    @inlinable @inline(__always)
    public mutating func skipBlanks() {
        while index < end && Self.isBlank(bytes[index]) { index += 1 }
    }

    /// Consumes `byte` if it is next.
    @inlinable @inline(__always)
    public mutating func consume(_ byte: UInt8) -> Bool {
        if index < end && bytes[index] == byte {
            index += 1
            return true
        }
        return false
    }

    /// Consumes the ASCII text `literal` if it is next.
    @inlinable @inline(__always)
    public mutating func consume(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard end - index >= count else { return false }
        var matched = true
        literal.withUTF8Buffer { text in
            for offset in 0..<count where bytes[index + offset] != text[offset] {
                matched = false
                break
            }
        }
        if matched { index += count }
        return matched
    }

    /// The range of the next run of non-blank bytes, after skipping blanks.
    @inlinable @inline(__always)
    public mutating func token() -> Range<Int>? {
        skipBlanks()
        let start = index
        while index < end && !Self.isBlank(bytes[index]) { index += 1 }
        return start < index ? start..<index : nil
    }

    /// Reads exactly `count` hex digits as a number (count ≤ 16).
    @inlinable @inline(__always)
    public mutating func hex(digits count: Int) -> UInt64? {
        guard end - index >= count else { return nil }
        var value: UInt64 = 0
        for offset in 0..<count {
            guard let nibble = hexValue(bytes[index + offset]) else { return nil }
            value = value << 4 | UInt64(nibble)
        }
        index += count
        return value
    }

    /// Reads one or more hex digits, at most 16.
    @inlinable @inline(__always)
    public mutating func hexNumber() -> UInt64? {
        var value: UInt64 = 0
        let start = index
        while index < end, let nibble = hexValue(bytes[index]) {
            guard index - start < 16 else { return nil }
            value = value << 4 | UInt64(nibble)
            index += 1
        }
        return index > start ? value : nil
    }

    /// Reads an unsigned decimal number; nil when there is none or it overflows 64 bits.
    @inlinable @inline(__always)
    public mutating func decimal() -> UInt64? {
        var value: UInt64 = 0
        let start = index
        while index < end {
            let byte = bytes[index]
            guard byte >= 0x30 && byte <= 0x39 else { break }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - 0x30))
            guard !overflow1 && !overflow2 else { return nil }
            value = sum
            index += 1
        }
        return index > start ? value : nil
    }

    /// Reads a decimal number that may start with '-'.
    @inlinable @inline(__always)
    public mutating func signedDecimal() -> Int64? {
        let negative = consume(UInt8(ascii: "-"))
        guard let magnitude = decimal(), magnitude <= UInt64(Int64.max) else { return nil }
        return negative ? -Int64(magnitude) : Int64(magnitude)
    }

    /// Moves past the next newline (or to the end). The kernel pads /proc/net/tcp lines
    /// to 149 columns, so this crosses ~45 bytes a line: let the stdlib's search do it.
    @inlinable
    public mutating func skipLine() {
        if let newline = bytes[index..<end].firstIndex(of: 0x0A) {
            index = newline + 1
        } else {
            index = end
        }
    }

    /// The bytes from the cursor to the end of the line, at most `maximum`, for quoting
    /// in error messages.
    public func restOfLine(maximum: Int) -> ArraySlice<UInt8> {
        var stop = index
        while stop < end && stop - index < maximum && bytes[stop] != 0x0A { stop += 1 }
        return bytes[index..<stop]
    }

    /// The text of a range of the scanned bytes, for error messages.
    public func text(_ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }
}

/// Splits a buffer into lines without copying. Yields each line's byte range without
/// its terminating newline, and counts lines from 1 for error messages.
public struct LineSplitter: Sequence, IteratorProtocol {
    public let bytes: [UInt8]
    private var position: Int
    public private(set) var lineNumber = 0

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.position = 0
    }

    public mutating func next() -> Range<Int>? {
        guard position < bytes.count else { return nil }
        let start = position
        var cursor = position
        while cursor < bytes.count && bytes[cursor] != 0x0A { cursor += 1 }
        position = cursor + 1
        lineNumber += 1
        return start..<cursor
    }
}

/// Where a text parser found input it cannot read, with enough context to fix it.
public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was being parsed: a path, or a name such as "conntrack -L output".
    public var source: String
    /// 1-based line number, or 0 when the input is not line-oriented.
    public var line: Int
    /// The field or column that failed.
    public var field: String
    public var reason: String

    public init(source: String, line: Int, field: String, reason: String) {
        self.source = source
        self.line = line
        self.field = field
        self.reason = reason
    }

    public var description: String {
        let place = line > 0 ? "\(source):\(line)" : source
        return "\(place): \(field): \(reason)"
    }

    /// A short, printable quotation of offending input: control bytes escaped, cut at
    /// 40 characters, so one bad line never floods the terminal.
    public static func quote(_ bytes: some Collection<UInt8>) -> String {
        var text = "\""
        for (offset, byte) in bytes.enumerated() {
            if offset == 40 {
                text += "…"
                break
            }
            switch byte {
            case 0x20..<0x7F where byte != UInt8(ascii: "\""): text.append(Character(Unicode.Scalar(byte)))
            case UInt8(ascii: "\""): text += "\\\""
            default: text += "\\x" + String(byte, radix: 16, uppercase: false).leftPadded(to: 2)
            }
        }
        return text + "\""
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

import NetCore

/// Accumulates output bytes and hands them to a sink in large chunks.
///
/// Listings stream: a 262,144-entry conntrack table renders to ~90 MB of ndjson, which
/// must neither be held in memory nor cost one write(2) per line.
public struct OutputBuffer {
    public private(set) var bytes: [UInt8]
    private let threshold: Int
    private let sink: ([UInt8]) throws -> Void

    public init(threshold: Int = 256 * 1024, sink: @escaping ([UInt8]) throws -> Void) {
        self.bytes = []
        self.bytes.reserveCapacity(threshold + 4096)
        self.threshold = threshold
        self.sink = sink
    }

    /// Writes out what has accumulated once it passes the threshold.
    public mutating func flushIfFull() throws {
        if bytes.count >= threshold { try flush() }
    }

    public mutating func flush() throws {
        guard !bytes.isEmpty else { return }
        try sink(bytes)
        bytes.removeAll(keepingCapacity: true)
    }

    /// Gives direct access for the append helpers below.
    public mutating func write(_ body: (inout [UInt8]) -> Void) {
        body(&bytes)
    }

    public mutating func write(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }
}

// MARK: - Byte-level formatting shared by every renderer

extension Array where Element == UInt8 {
    @inlinable
    public mutating func append(ascii text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// Appends an unsigned integer in decimal without going through String: reserves
    /// the digits, then fills them from the right.
    @inlinable
    public mutating func append(decimal value: UInt64) {
        var digitCount = 1
        var probe = value
        while probe >= 10 {
            probe /= 10
            digitCount += 1
        }
        let start = count
        append(contentsOf: repeatElement(UInt8(0x30), count: digitCount))
        var remaining = value
        var index = start + digitCount - 1
        while remaining > 0 {
            self[index] = 0x30 &+ UInt8(truncatingIfNeeded: remaining % 10)
            remaining /= 10
            index -= 1
        }
    }

    @inlinable
    public mutating func append<T: BinaryInteger>(number value: T) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            append(decimal: UInt64(0 - Int64(value)))
        } else {
            append(decimal: UInt64(value))
        }
    }

    /// Appends `text` as a JSON string literal, escaping what RFC 8259 requires.
    public mutating func append(jsonString text: String) {
        append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): append(ascii: "\\\"")
            case UInt8(ascii: "\\"): append(ascii: "\\\\")
            case 0x0A: append(ascii: "\\n")
            case 0x0D: append(ascii: "\\r")
            case 0x09: append(ascii: "\\t")
            case 0..<0x20:
                append(ascii: "\\u00")
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                append(hex[Int(byte >> 4)])
                append(hex[Int(byte & 0xF)])
            default: append(byte)
            }
        }
        append(UInt8(ascii: "\""))
    }

    /// Appends a JSON array of strings.
    public mutating func append(jsonStrings strings: [String]) {
        append(UInt8(ascii: "["))
        for (index, string) in strings.enumerated() {
            if index > 0 { append(UInt8(ascii: ",")) }
            append(jsonString: string)
        }
        append(UInt8(ascii: "]"))
    }

    /// Appends an IP address as a JSON string.
    @inlinable
    public mutating func append(jsonAddress address: IPAddress) {
        append(UInt8(ascii: "\""))
        address.appendText(to: &self)
        append(UInt8(ascii: "\""))
    }

    /// Appends `"key":` for a key that needs no escaping.
    @inlinable
    public mutating func append(key: StaticString) {
        append(UInt8(ascii: "\""))
        append(ascii: key)
        append(ascii: "\":")
    }

    @inlinable
    public mutating func append<T: BinaryInteger>(optionalNumber value: T?) {
        if let value { append(number: value) } else { append(ascii: "null") }
    }
}

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

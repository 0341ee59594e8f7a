/// A listing's records on their way out, one at a time: one per line (ndjson), or as the
/// array of a JSON document whose head and tail the record's owner supplies. Nothing is
/// kept once written, so a listing of a million entries costs one record's memory.
public struct RecordStream {
    public enum Layout: Sendable, Equatable {
        /// One record per line.
        case lines
        /// `head` (`{"schema":…,"entries":[`), the records separated by commas, then the
        /// tail `finish` is given.
        case array(head: String)
    }

    private var buffer: OutputBuffer
    private let layout: Layout
    /// Records written so far.
    public private(set) var count = 0

    public init(_ layout: Layout, to buffer: OutputBuffer) {
        self.layout = layout
        self.buffer = buffer
        if case .array(let head) = layout { self.buffer.write(head) }
    }

    /// Appends one record of at most `bound` bytes, written by `record`.
    public mutating func append(bound: Int, _ record: (inout OutputSpan<UInt8>) -> Void) throws {
        let separator: UInt8? = layout == .lines ? nil : count > 0 ? UInt8(ascii: ",") : nil
        let newline = layout == .lines
        buffer.write { bytes in
            bytes.appendRecord(bound: bound + 1) { out in
                if let separator { out.append(separator) }
                record(&out)
                if newline { out.append(0x0A) }
            }
        }
        count += 1
        try buffer.flushIfFull()
    }

    /// Ends the listing and writes out what is left. For an array, `tail` closes the
    /// document: what is known only once the records have ended (count, notices).
    public mutating func finish(tail: (inout [UInt8]) -> Void = { _ in }) throws {
        if case .array = layout { buffer.write(tail) }
        try buffer.flush()
    }
}

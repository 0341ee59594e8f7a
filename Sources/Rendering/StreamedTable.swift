import JSON
import NetCore

/// One row's cells, written as bytes into a buffer the table reuses: a listing of a
/// million rows builds no String per cell.
public struct TableRow: Sendable {
    var bytes: [UInt8] = []
    /// Where each cell ends in `bytes`.
    var ends: [Int] = []

    /// A cell of at most `bound` bytes that the caller writes itself: numbers, addresses
    /// and names ctdoctor chose, never outside text.
    public mutating func cell(bound: Int, _ write: (inout OutputSpan<UInt8>) -> Void) {
        bytes.appendRecord(bound: bound, write)
        ends.append(bytes.count)
    }

    /// A cell of outside text (a process or device name): control characters are
    /// escaped, so the row stays one line and cannot drive the terminal.
    public mutating func cell(_ text: String) {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            bytes.append(contentsOf: text.utf8)
        } else {
            bytes.append(contentsOf: text.terminalSafe.utf8)
        }
        ends.append(bytes.count)
    }

    mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
    }

    /// The width a cell takes on screen: its bytes when ASCII, its characters otherwise.
    func width(ofCell index: Int) -> Int {
        let range = (index == 0 ? 0 : ends[index - 1])..<ends[index]
        if bytes[range].allSatisfy({ $0 < 0x80 }) { return range.count }
        return String(decoding: bytes[range], as: UTF8.self).count
    }
}

/// A table too long to hold (a million conntrack entries, half a million sockets): its
/// column widths come from the header and the first `sampleSize` rows, which are held
/// until then; every later row is written as it comes. A table no longer than the
/// sample prints as if every row had been seen; in a longer one, a cell wider than its
/// column pushes the rest of its line right, as in conntrack -L. Memory stays at the
/// sample's, whatever the table's length.
public struct StreamedTable: Sendable {
    public let columns: [TextTable.Column]
    private let sampleSize: Int
    private var sample: [TableRow] = []
    private var widths: [Int]?
    private var scratch = TableRow()

    public init(_ columns: [TextTable.Column], sampleSize: Int = 1000) {
        self.columns = columns
        self.sampleSize = max(1, sampleSize)
    }

    /// Builds one row with `build` and appends what is to be printed now to `out`:
    /// nothing while the sample fills, then the header and the sample, then each row.
    public mutating func append(to out: inout [UInt8], _ build: (inout TableRow) -> Void) {
        scratch.removeAll()
        build(&scratch)
        precondition(scratch.ends.count == columns.count, "row has \(scratch.ends.count) cells for \(columns.count) columns")
        if let widths {
            Self.write(scratch, widths: widths, columns: columns, to: &out)
            return
        }
        sample.append(scratch)
        if sample.count >= sampleSize { flushSample(to: &out) }
    }

    /// Appends what is still held: the header and the sample, for a table that ended
    /// before its sample filled.
    public mutating func finish(to out: inout [UInt8]) {
        if widths == nil { flushSample(to: &out) }
    }

    /// The same for cells given as text (tables short enough not to care).
    public mutating func append(_ cells: [String]) -> String {
        var out: [UInt8] = []
        append(to: &out) { row in cells.forEach { row.cell($0) } }
        return String(decoding: out, as: UTF8.self)
    }

    public mutating func finish() -> String {
        var out: [UInt8] = []
        finish(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func flushSample(to out: inout [UInt8]) {
        var header = TableRow()
        for column in columns { header.cell(column.title) }
        var widths = columns.indices.map { header.width(ofCell: $0) }
        for row in sample {
            for index in columns.indices { widths[index] = max(widths[index], row.width(ofCell: index)) }
        }
        self.widths = widths
        Self.write(header, widths: widths, columns: columns, to: &out)
        for row in sample { Self.write(row, widths: widths, columns: columns, to: &out) }
        sample = []
    }

    /// One line: each cell padded to its column's width (the last one not), two blanks
    /// between cells, no trailing blanks.
    static func write(_ row: TableRow, widths: [Int], columns: [TextTable.Column], to out: inout [UInt8]) {
        var start = 0
        for index in columns.indices {
            let end = row.ends[index]
            let padding = max(0, widths[index] - row.width(ofCell: index))
            let last = index == columns.count - 1
            switch columns[index].alignment {
            case .left:
                out.append(contentsOf: row.bytes[start..<end])
                if !last { out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding)) }
            case .right:
                out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
                out.append(contentsOf: row.bytes[start..<end])
            }
            if !last { out.append(contentsOf: [UInt8(ascii: " "), UInt8(ascii: " ")]) }
            start = end
        }
        while out.last == UInt8(ascii: " ") { out.removeLast() }
        out.append(0x0A)
    }
}

import NetCore

/// A plain-text table whose columns are as wide as their widest cell, like ss(8).
public struct TextTable: Sendable {
    public enum Alignment: Sendable { case left, right }

    public struct Column: Sendable {
        public var title: String
        public var alignment: Alignment
        public init(_ title: String, _ alignment: Alignment = .left) {
            self.title = title
            self.alignment = alignment
        }
    }

    public var columns: [Column]
    public private(set) var rows: [[String]] = []

    public init(_ columns: [Column]) { self.columns = columns }

    public mutating func append(_ row: [String]) {
        precondition(row.count == columns.count, "row has \(row.count) cells for \(columns.count) columns")
        rows.append(row)
    }

    /// The rendered table: a header line, then one line per row, each ending in "\n".
    /// The last column is not padded, so lines carry no trailing blanks. Cells hold
    /// outside text (process and pod names): control characters are escaped, so a row
    /// stays one line and cannot drive the terminal.
    public func render() -> String {
        var widths = columns.map { $0.title.count }
        let rows = rows.map { $0.map(\.terminalSafe) }
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        var out = Self.line(columns.map(\.title), widths: widths, columns: columns)
        for row in rows { out += Self.line(row, widths: widths, columns: columns) }
        return out
    }

    /// One line of cells already made terminal-safe, padded to `widths` (a wider cell
    /// pushes the rest of its line right).
    static func line(_ cells: [String], widths: [Int], columns: [Column]) -> String {
        var text = ""
        for (index, cell) in cells.enumerated() {
            let last = index == cells.count - 1
            let padding = String(repeating: " ", count: max(0, widths[index] - cell.count))
            switch columns[index].alignment {
            case .left: text += last ? cell : cell + padding
            case .right: text += padding + cell
            }
            if !last { text += "  " }
        }
        while text.last == " " { text.removeLast() }
        return text + "\n"
    }
}

/// A table too long to hold (a million conntrack entries, half a million sockets): its
/// column widths come from the header and the first `sampleSize` rows, which are held
/// until then; every later row is printed as it comes. A table no longer than the
/// sample prints exactly as `TextTable` would; in a longer one, a cell wider than its
/// column pushes the rest of its line right, as in conntrack -L. Memory stays at the
/// sample's, whatever the table's length.
public struct StreamedTable: Sendable {
    public let columns: [TextTable.Column]
    private let sampleSize: Int
    private var sample: [[String]] = []
    private var widths: [Int]?

    public init(_ columns: [TextTable.Column], sampleSize: Int = 1000) {
        self.columns = columns
        self.sampleSize = max(1, sampleSize)
    }

    /// The text to print now: nothing while the sample fills, then the header and the
    /// sample, then each row.
    public mutating func append(_ row: [String]) -> String {
        precondition(row.count == columns.count, "row has \(row.count) cells for \(columns.count) columns")
        let safe = row.map(\.terminalSafe)
        if let widths { return TextTable.line(safe, widths: widths, columns: columns) }
        sample.append(safe)
        return sample.count >= sampleSize ? flushSample() : ""
    }

    /// What is still held: the header and the sample, for a table that ended before its
    /// sample filled.
    public mutating func finish() -> String {
        widths == nil ? flushSample() : ""
    }

    private mutating func flushSample() -> String {
        var widths = columns.map { $0.title.count }
        for row in sample {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        self.widths = widths
        var text = TextTable.line(columns.map(\.title), widths: widths, columns: columns)
        for row in sample { text += TextTable.line(row, widths: widths, columns: columns) }
        sample = []
        return text
    }
}

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
        var table = StreamedTable(columns, sampleSize: max(1, rows.count))
        var out = ""
        for row in rows { out += table.append(row) }
        return out + table.finish()
    }
}

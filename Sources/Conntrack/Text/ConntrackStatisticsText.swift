import NetCore

/// Parses conntrack's statistics as text: `conntrack -S` output and
/// /proc/net/stat/nf_conntrack. Pure: bytes in, values out.
///
/// `conntrack -S` prints one line per CPU, `cpu=N` then `name=value` pairs in decimal
/// (older conntrack-tools printed `entries=` on each line and counters the kernel no
/// longer keeps: they are skipped). The /proc file has a header naming its columns
/// (they vary with the kernel) and one row of hexadecimal values per possible CPU; its
/// `entries` column repeats the namespace's count on every row. Lines that are neither
/// — blank, or left by a paste cleaner — are skipped; anything else fails with its line.
public enum ConntrackStatisticsText {
    public static func parse(_ bytes: [UInt8], source: String) throws(ParseError) -> ConntrackStatistics {
        var lines = LineSplitter(bytes)
        var perCPU: [ConntrackCPUStatistics] = []
        var columns: [String]?
        var procEntries: Int?
        var format: ConntrackStatisticsSource?
        while let range = lines.next() {
            let text = String(decoding: bytes[range], as: UTF8.self)
            let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = words.first else { continue }
            let line = lines.lineNumber
            if first.hasPrefix("cpu=") {
                guard format != .procFile else {
                    throw ParseError(source: source, line: line, field: "line", reason: "a `conntrack -S` line inside /proc/net/stat/nf_conntrack rows")
                }
                format = .conntrackS
                perCPU.append(try conntrackSLine(words, source: source, line: line))
            } else if first == "entries" {
                guard format == nil else {
                    throw ParseError(source: source, line: line, field: "header", reason: "a second /proc/net/stat/nf_conntrack header")
                }
                format = .procFile
                columns = words.map(String.init)
            } else if let header = columns {
                guard words.count == header.count else {
                    throw ParseError(source: source, line: line, field: "row", reason: "\(words.count) columns where the header names \(header.count)")
                }
                var counters = ConntrackCounterValues()
                for (name, word) in zip(header, words) {
                    guard let value = UInt64(word, radix: 16) else {
                        throw ParseError(source: source, line: line, field: name, reason: "\(ParseError.quote(word.utf8)) is not hexadecimal")
                    }
                    if name == "entries" { procEntries = Int(exactly: value) }
                    if let counter = ConntrackCounter.allCases.first(where: { $0.procColumn == name }) { counters[counter] = value }
                }
                perCPU.append(ConntrackCPUStatistics(cpu: perCPU.count, counters: counters))
            } else {
                throw ParseError(
                    source: source, line: line, field: "line",
                    reason: "\(ParseError.quote(text.utf8)) is neither a `conntrack -S` line (cpu=N found=…) nor /proc/net/stat/nf_conntrack")
            }
        }
        guard let format, !perCPU.isEmpty else {
            throw ParseError(source: source, line: 0, field: "file", reason: "no statistics: expected `conntrack -S` output or /proc/net/stat/nf_conntrack")
        }
        return ConntrackStatistics(perCPU: perCPU, entries: procEntries, source: format)
    }

    static func conntrackSLine(_ words: [Substring], source: String, line: Int) throws(ParseError) -> ConntrackCPUStatistics {
        var cpu: Int?
        var counters = ConntrackCounterValues()
        for word in words {
            guard let equals = word.firstIndex(of: "=") else {
                throw ParseError(source: source, line: line, field: "line", reason: "\(ParseError.quote(word.utf8)) is not name=value")
            }
            let name = word[..<equals]
            let text = word[word.index(after: equals)...]
            guard let value = UInt64(text) else {
                throw ParseError(source: source, line: line, field: String(name), reason: "\(ParseError.quote(text.utf8)) is not a number")
            }
            if name == "cpu" {
                guard let number = Int(exactly: value), number < 1 << 16 else {
                    throw ParseError(source: source, line: line, field: "cpu", reason: "\(value) is not a CPU number")
                }
                cpu = number
            } else if let counter = ConntrackCounter(rawValue: String(name)) {
                counters[counter] = value
            }
        }
        guard let cpu else { throw ParseError(source: source, line: line, field: "cpu", reason: "missing") }
        return ConntrackCPUStatistics(cpu: cpu, counters: counters)
    }
}

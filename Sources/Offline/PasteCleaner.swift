/// Takes out of a pasted table what people's capture adds around it — `watch` headers,
/// shell prompts with the command typed, `#` comments, conntrack's "N flow entries have
/// been shown" line, `cat -n`/`nl` line numbers, CRLF endings, notes typed after a row —
/// and counts each kind, so the parsers see only the table. Pure: bytes in, bytes out.
///
/// Lines keep their numbers (a removed line becomes an empty one), so a parse error
/// still names the line of the file the user has.
public struct PasteCleaner {
    /// What was taken out, by kind, for the notice that says so.
    public struct Removed: Sendable, Equatable {
        public var watchHeaders = 0
        public var prompts = 0
        public var comments = 0
        public var summaries = 0
        public var lineNumbers = 0
        public var notes = 0

        public var total: Int { watchHeaders + prompts + comments + summaries + lineNumbers + notes }

        /// "1 watch header, 2 shell prompts, 3 line-number prefixes".
        public var description: String {
            [
                (watchHeaders, "watch header", "watch headers"), (prompts, "shell prompt", "shell prompts"),
                (comments, "comment", "comments"), (summaries, "conntrack summary line", "conntrack summary lines"),
                (lineNumbers, "line-number prefix", "line-number prefixes"), (notes, "note after a row", "notes after rows"),
            ].filter { $0.0 > 0 }.map { "\($0.0) \($0.0 == 1 ? $0.1 : $0.2)" }.joined(separator: ", ")
        }
    }

    /// Commands a prompt line typically carries before a pasted table.
    static let commands: Set<String> = [
        "ss", "conntrack", "cat", "netstat", "kubectl", "ip", "nsenter", "sudo", "watch", "grep", "egrep", "fgrep", "head", "tail",
        "crictl", "nerdctl", "docker", "less", "more", "sort", "nl", "awk", "sed", "ctdoctor", "istioctl", "linkerd",
    ]

    public static func clean(_ bytes: [UInt8]) -> (bytes: [UInt8], removed: Removed) {
        var removed = Removed()
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var start = 0
        while start < bytes.count {
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
            var line = bytes[start..<end]
            if line.last == 0x0D { line = line.dropLast() }
            out += cleanLine(line, &removed)
            if end < bytes.count { out.append(0x0A) }
            start = end + 1
        }
        return (out, removed)
    }

    static func cleanLine(_ line: ArraySlice<UInt8>, _ removed: inout Removed) -> ArraySlice<UInt8> {
        let text = String(decoding: line, as: UTF8.self)
        let trimmed = text.drop { $0 == " " || $0 == "\t" }
        if trimmed.isEmpty { return [] }
        if isWatchHeader(trimmed) {
            removed.watchHeaders += 1
            return []
        }
        if isPrompt(text) {
            removed.prompts += 1
            return []
        }
        if trimmed.hasPrefix("#") {
            removed.comments += 1
            return []
        }
        if text.contains("flow entries have been shown") || text.contains("flow entries has been shown") {
            removed.summaries += 1
            return []
        }
        var rest = line
        if let numbered = lineNumberPrefix(line) {
            removed.lineNumbers += 1
            rest = line[numbered...]
        }
        // ctdoctor's own JSON lines carry no notes; their strings are left alone.
        if trimmed.first != "{", let note = noteStart(rest) {
            removed.notes += 1
            rest = rest[..<note]
            while rest.last == 0x20 || rest.last == 0x09 { rest = rest.dropLast() }
        }
        return rest
    }

    /// `watch`'s first line: "Every 2.0s: ss -tan    node-1: Tue Dec  1 10:00:00 2026".
    public static func isWatchHeader(_ text: Substring) -> Bool {
        guard text.hasPrefix("Every ") else { return false }
        let interval = text.dropFirst(6).prefix { $0 != ":" }
        return interval.hasSuffix("s") && interval.dropLast().allSatisfy { $0.isNumber || $0 == "." } && !interval.dropLast().isEmpty
    }

    /// A prompt with the command typed after it: "root@node:~# ss -tan", "$ conntrack -L",
    /// "bash-5.1# ss", "/ # cat /proc/net/tcp", "PS> kubectl exec …". The command word
    /// decides, so a table row is never taken for one.
    public static func isPrompt(_ text: String) -> Bool {
        let window = text.prefix(120)
        for marker in ["$ ", "# ", "> ", "% "] {
            guard let range = window.firstRange(of: marker) else { continue }
            let before = window[..<range.lowerBound]
            // The prompt itself holds no blank but, at most, one (busybox's "/ #").
            guard before.filter({ $0 == " " }).count <= 1 else { continue }
            let command = text[range.upperBound...].drop { $0 == " " }.prefix { $0 != " " }
            let name = command.split(separator: "/").last.map(String.init) ?? ""
            if commands.contains(name) { return true }
        }
        return false
    }

    /// The index after "   12\t" (`cat -n`, `nl`): digits right-aligned, then a tab.
    static func lineNumberPrefix(_ line: ArraySlice<UInt8>) -> Int? {
        var index = line.startIndex
        while index < line.endIndex, line[index] == 0x20 { index += 1 }
        let digits = index
        while index < line.endIndex, line[index] >= 0x30, line[index] <= 0x39 { index += 1 }
        guard index > digits, index < line.endIndex, line[index] == 0x09 else { return nil }
        return index + 1
    }

    /// Where a note typed after a row starts: two blanks, then "#", "<-", "<--" or "//".
    static func noteStart(_ line: ArraySlice<UInt8>) -> Int? {
        var index = line.startIndex
        while index + 3 < line.endIndex {
            if line[index] == 0x20, line[index + 1] == 0x20 || line[index + 1] == 0x09 {
                var mark = index + 1
                while mark < line.endIndex, line[mark] == 0x20 || line[mark] == 0x09 { mark += 1 }
                if mark < line.endIndex {
                    let rest = line[mark...]
                    // "<-" but not ss -e's "<->" socket marker.
                    let arrow = rest.starts(with: [0x3C, 0x2D]) && !rest.starts(with: [0x3C, 0x2D, 0x3E])
                    if rest.starts(with: [0x23]) || arrow || rest.starts(with: [0x2F, 0x2F]) { return index }
                }
                index = mark
                continue
            }
            index += 1
        }
        return nil
    }
}

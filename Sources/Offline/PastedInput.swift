import Conntrack
import Diagnosis
import Formats
import JSON
import NetCore
import Sockets

/// Tables copied from a machine where ctdoctor cannot run, in whatever form they were
/// captured, recognised by their content. Pure: bytes in, values out.
///
/// Conntrack: `conntrack -L` (default, `-o extended`, `-o id`), `conntrack -L -o xml`,
/// /proc/net/nf_conntrack, or ctdoctor's own `conntrack --format json|ndjson`.
/// Sockets: /proc/net/tcp and tcp6 copies (with or without the header), `ss` output
/// (`-tan`, `-tanpo`, `-naoep`, `-tanpoi`; both `users:` formats), or ctdoctor's own
/// `sockets --format json|ndjson`. Files that are something else — `conntrack -E`
/// events, `conntrack -S` or /proc/net/stat statistics, netstat output — are refused
/// with a line saying what they are; lines that are not entries but belong to the
/// formats (headers, summaries, other protocols) are skipped and counted.
public enum PastedInput {
    public struct ConntrackTable: Sendable {
        public var entries: [ConntrackEntry]
        /// Which form was recognised, for the report.
        public var format: ConntrackFileFormat
        public var skippedLines: Int
        /// What the capture added around the table (prompts, watch headers…).
        public var removed = PasteCleaner.Removed()
    }

    public struct SocketTable: Sendable {
        public var sockets: [TCPSocket]
        public var owners: [UInt64: [SocketOwner]]
        public var format: SocketFileFormat
        public var skippedLines: Int
        public var removed = PasteCleaner.Removed()
        /// What the listing cannot tell about which sockets a process holds, if anything.
        public var ownership: String? = nil
        /// Whether the listing carried tcp_info (idle times, byte counts).
        public var hasTCPInfo: Bool { sockets.contains { $0.info != nil } }
    }

    public static func conntrack(_ pasted: [UInt8], source: String) throws(ParseError) -> ConntrackTable {
        let (bytes, removed) = PasteCleaner.clean(pasted)
        var table = try recognisedConntrack(bytes, source: source)
        table.removed = removed
        return table
    }

    /// Conntrack's counters as copied: `conntrack -S` or /proc/net/stat/nf_conntrack,
    /// with what the capture added around them taken out.
    public static func statistics(_ pasted: [UInt8], source: String) throws(ParseError) -> ConntrackStatistics {
        let (bytes, _) = PasteCleaner.clean(pasted)
        let first = firstLine(bytes)
        if looksLikeSocketListing(first) || isNetstatOutput(first) {
            throw ParseError(source: source, line: 1, field: "file", reason: "this is a socket listing, not conntrack statistics: capture `conntrack -S`")
        }
        return try ConntrackStatisticsText.parse(bytes, source: source)
    }

    static func recognisedConntrack(_ bytes: [UInt8], source: String) throws(ParseError) -> ConntrackTable {
        let first = firstLine(bytes)
        if first.hasPrefix("<") {
            return ConntrackTable(entries: try ConntrackXMLParser.parse(bytes, source: source), format: .xml, skippedLines: 0)
        }
        if first.hasPrefix("{") {
            return ConntrackTable(entries: try jsonRecords(bytes, source: source, key: "entries") { field throws(JSONError) in
                try ConntrackRecord.read(field)
            },
                format: .ctdoctorJSON, skippedLines: 0)
        }
        if first.hasPrefix("cpu=") {
            throw ParseError(source: source, line: 1, field: "file", reason: "this is `conntrack -S` statistics, not the table: capture `conntrack -L`")
        }
        if isNetstatOutput(first) {
            throw ParseError(source: source, line: 1, field: "file", reason: "this is netstat output, a socket listing, not the conntrack table: capture `conntrack -L` for --conntrack-file (and `ss -tanpoi` for --sockets-file)")
        }
        if looksLikeSocketListing(first) {
            throw ParseError(source: source, line: 1, field: "file", reason: "this is a socket listing (ss or /proc/net/tcp), not the conntrack table: give it with --sockets-file")
        }
        if first.hasPrefix("entries") {
            throw ParseError(source: source, line: 1, field: "file", reason: "this is /proc/net/stat/nf_conntrack (statistics), not the table: copy /proc/net/nf_conntrack or capture `conntrack -L`")
        }
        let parsed = try ConntrackTextParser.parse(bytes, source: source)
        let format: ConntrackFileFormat = first.hasPrefix("ipv4") || first.hasPrefix("ipv6") ? .procText : .conntrackList
        return ConntrackTable(entries: parsed.entries, format: format, skippedLines: parsed.skippedLines)
    }

    public static func sockets(_ pasted: [UInt8], source: String) throws(ParseError) -> SocketTable {
        let (bytes, removed) = PasteCleaner.clean(pasted)
        var table = try recognisedSockets(bytes, source: source, wasEmpty: firstLine(pasted).isEmpty)
        table.removed = removed
        return table
    }

    static func recognisedSockets(_ bytes: [UInt8], source: String, wasEmpty: Bool) throws(ParseError) -> SocketTable {
        let first = firstLine(bytes)
        // A socket listing is never empty (/proc/net/tcp and ss print a header, and a
        // pod has its listeners): an empty file is a failed copy, not an idle pod.
        guard !first.isEmpty else {
            throw ParseError(
                source: source, line: 1, field: "file",
                reason: wasEmpty ? "empty: no socket listing in it (a failed copy?)" : "no socket listing in it, only prompts, headers or comments (a failed copy?)")
        }
        if first.hasPrefix("sl ") || isProcNetTCPLine(first) {
            let sockets = try ProcNetTCPParser.parse(bytes, family: nil, source: source)
            return SocketTable(sockets: sockets, owners: [:], format: .procNetTCP, skippedLines: headerLines(bytes))
        }
        if first.hasPrefix("{") {
            var owners: [UInt64: [SocketOwner]] = [:]
            let sockets = try jsonRecords(bytes, source: source, key: "sockets") { field throws(JSONError) in
                let (socket, processes) = try SocketRecord.read(field)
                if let processes, socket.inode != 0 { owners[socket.inode] = processes }
                return socket
            }
            return SocketTable(sockets: sockets, owners: owners, format: .ctdoctorJSON, skippedLines: 0)
        }
        if isNetstatOutput(first) {
            throw ParseError(source: source, line: 1, field: "file", reason: "this is netstat output, which lacks inodes, timers and tcp_info: capture `ss -tanpoi` for --sockets-file instead")
        }
        if looksLikeConntrack(first) {
            throw ParseError(source: source, line: 1, field: "file", reason: "this is conntrack output, not a socket listing: give it with --conntrack-file")
        }
        let parsed = try SSOutputParser.parse(bytes, source: source)
        // No row and no header: nothing in it was a socket listing (lines that all start
        // with blanks read as continuation lines). Not an empty namespace.
        if parsed.lines.isEmpty && !parsed.sawHeader {
            let (line, text) = parsed.firstUnexplained ?? (1, ArraySlice(Array(first.utf8)))
            throw ParseError(source: source, line: line, field: "file", reason: "not a socket listing: no line is a row of ss or /proc/net/tcp (\(ParseError.quote(text)))")
        }
        let (sockets, owners, ownership) = ownedSockets(parsed.lines)
        return SocketTable(
            sockets: sockets, owners: owners, format: .ssOutput, skippedLines: parsed.skippedLines, ownership: ownership)
    }

    /// Leak analysis needs to know which FIN_WAIT2 sockets a process still holds (an
    /// orphan is reaped by the kernel; a held one is the leak), which sockets carry as an
    /// inode. `ss -e` prints it (`ino:`). Without it: `ss -p` names the holders, so a
    /// socket with `users:` is held; else `ss -o` shows the orphan timer, so a FIN_WAIT2
    /// socket without `timer:` is held. Held sockets without an inode get a stand-in
    /// inode (from `standInInodes` up, far above any real one), so their owners stay
    /// attached; a notice says so. Plain `ss -tan` tells nothing: every socket counts as
    /// held, and `ownership` says so.
    /// 2^62: no kernel hands out inode numbers this large.
    public static let standInInodes: UInt64 = 1 << 62

    static func ownedSockets(_ lines: [SSLine]) -> ([TCPSocket], [UInt64: [SocketOwner]], String?) {
        let hasInodes = lines.contains { $0.socket.inode != 0 }
        let hasUsers = lines.contains { !$0.owners.isEmpty }
        let hasTimers = lines.contains { $0.socket.timer != .off }
        var owners: [UInt64: [SocketOwner]] = [:]
        var standIn = standInInodes
        var sockets: [TCPSocket] = []
        for line in lines {
            var socket = line.socket
            if !hasInodes {
                let held = hasUsers ? !line.owners.isEmpty : (hasTimers ? socket.timer == .off : true)
                if held && socket.state != .timeWait {
                    socket.inode = standIn
                    standIn += 1
                }
            }
            if socket.inode != 0 && !line.owners.isEmpty { owners[socket.inode] = line.owners }
            sockets.append(socket)
        }
        let ownership: String? =
            if hasInodes { nil }
            else if hasUsers || hasTimers {
                "the ss output has no ino: (-e): sockets held by a process (per \(hasUsers ? "users:" : "the absence of an orphan timer")) get stand-in inode numbers from \(standInInodes) up"
            } else {
                "the ss output has neither ino: (-e), users: (-p) nor timer: (-o), so orphaned FIN_WAIT2 sockets cannot be told from held ones: all count as held, with stand-in inode numbers from \(standInInodes) up (capture `ss -tanpoei`)"
            }
        return (sockets, owners, ownership)
    }

    /// A diagnosis input from the two tables. What only a live namespace can say (the
    /// kernel, its sysctls, counters, rules) is unknown, and the notices say so.
    public static func input(
        conntrack: ConntrackTable, conntrackPath: String, sockets: SocketTable, socketsPath: String
    ) -> DiagnosisInput {
        var notices: [String] = []
        if conntrack.entries.isEmpty && conntrack.skippedLines == 0 {
            // conntrack -L prints nothing at all for an empty table, so this may be
            // true; but then every FIN_WAIT2 proxy socket counts as leaked.
            notices.append("\(conntrackPath) holds no conntrack entry: an empty table, or a failed copy; if the latter, every half-closed sidecar socket is wrongly classified leaked")
        }
        notices += [
            "diagnosing copies (\(conntrack.format.rawValue) from \(conntrackPath), \(sockets.format.rawValue) from \(socketsPath)): the kernel release, sysctls, counters and rules are unknown, so collision outcomes are uncertain",
        ]
        if let ownership = sockets.ownership { notices.append(ownership) }
        for (table, path) in [(conntrack.removed, conntrackPath), (sockets.removed, socketsPath)] where table.total > 0 {
            notices.append("took out of \(path) what its capture added: \(table.description)")
        }
        if conntrack.skippedLines + sockets.skippedLines > 0 {
            notices.append("skipped \(conntrack.skippedLines) non-entry lines in \(conntrackPath) and \(sockets.skippedLines) in \(socketsPath) (headers, summaries, other protocols)")
        }
        return DiagnosisInput(
            namespace: socketsPath,
            sockets: sockets.sockets,
            socketSource: .file(format: sockets.format, path: socketsPath, hasTCPInfo: sockets.hasTCPInfo),
            conntrack: conntrack.entries, conntrackSource: .file(format: conntrack.format, path: conntrackPath),
            owners: sockets.owners, notices: notices)
    }

    /// The /proc/net/tcp header lines in a copy: one per file that was concatenated
    /// into it (`cat tcp tcp6`).
    static func headerLines(_ bytes: [UInt8]) -> Int {
        var lines = LineSplitter(bytes)
        var count = 0
        while let range = lines.next() {
            if String(decoding: bytes[range].prefix(16), as: UTF8.self).trimmingPrefix(while: { $0 == " " }).hasPrefix("sl ") { count += 1 }
        }
        return count
    }

    static func firstLine(_ bytes: [UInt8]) -> String {
        var lines = LineSplitter(bytes)
        while let range = lines.next() {
            let text = String(decoding: bytes[range], as: UTF8.self).drop { $0 == " " || $0 == "\t" }
            if !text.isEmpty { return String(text) }
        }
        return ""
    }

    /// netstat's headers ("Active Internet connections…", "Proto Recv-Q…") or, in a copy
    /// filtered with grep, a row: "tcp  0  0 127.0.0.1:15001  10.1.0.5:44520  FIN_WAIT2".
    /// Its first column names a protocol as conntrack's does, so it is asked first.
    static func isNetstatOutput(_ line: String) -> Bool {
        if line.hasPrefix("Active Internet connections") || line.hasPrefix("Proto Recv-Q") { return true }
        let columns = line.split(separator: " ", omittingEmptySubsequences: true)
        guard columns.count >= 5, ["tcp", "tcp6", "udp", "udp6"].contains(columns[0]),
            UInt32(columns[1]) != nil, UInt32(columns[2]) != nil
        else { return false }
        return columns[3].contains(":") && columns[4].contains(":") && !columns[3].contains("=")
    }

    /// ss's header or first column, or /proc/net/tcp's.
    static func looksLikeSocketListing(_ line: String) -> Bool {
        let first = line.split(separator: " ", maxSplits: 1).first.map(String.init) ?? ""
        return first == "State" || first == "Netid" || first == "sl" || TCPState(name: first) != nil || isProcNetTCPLine(line)
    }

    /// conntrack -L's and /proc/net/nf_conntrack's first columns: "tcp      6 …" or "ipv4     2 tcp …".
    static func looksLikeConntrack(_ line: String) -> Bool {
        let columns = line.split(separator: " ", maxSplits: 2)
        guard columns.count >= 2, UInt8(columns[1]) != nil else { return false }
        return ["ipv4", "ipv6"].contains(columns[0]) || IPProtocolName.number(of: String(columns[0])) != nil
    }

    /// `   0: 0100007F:3A99 ...`: a /proc/net/tcp line without its header.
    static func isProcNetTCPLine(_ line: String) -> Bool {
        let parts = line.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasSuffix(":"), parts[0].dropLast().allSatisfy(\.isNumber) else { return false }
        return parts[1].contains(":") && parts[1].allSatisfy { $0.isHexDigit || $0 == ":" }
    }

    /// Records of ctdoctor's own JSON: a document holding them under `key`, or one
    /// record per line (ndjson).
    static func jsonRecords<Value>(
        _ bytes: [UInt8], source: String, key: String, _ read: (JSONField) throws(JSONError) -> Value
    ) throws(ParseError) -> [Value] {
        var records: [(JSONField, Int)] = []
        if let document = try? JSONReader.parse(bytes) {
            let field = JSONField(node: document, path: .root)[key]
            guard !field.isNull else {
                throw ParseError(source: source, line: 0, field: key, reason: "a JSON document without \(key): not ctdoctor's \(key) listing")
            }
            do throws(JSONError) {
                records = try field.array().map { ($0, 0) }
            } catch {
                throw ParseError(source: source, line: 0, field: key, reason: error.reason)
            }
        } else {
            var lines = LineSplitter(bytes)
            while let range = lines.next() {
                guard !bytes[range].allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) else { continue }
                do throws(JSONError) {
                    records.append((JSONField(node: try JSONReader.parse(bytes, range: range), path: .root), lines.lineNumber))
                } catch {
                    throw ParseError(source: source, line: lines.lineNumber, field: "record", reason: error.reason)
                }
            }
        }
        var values: [Value] = []
        for (field, line) in records {
            do throws(JSONError) {
                values.append(try read(field))
            } catch {
                throw ParseError(source: source, line: line, field: "record", reason: error.reason)
            }
        }
        return values
    }
}

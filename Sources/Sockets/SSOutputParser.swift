import NetCore

/// One TCP line of ss(8) output.
public struct SSLine: Sendable, Hashable {
    public var socket: TCPSocket
    /// From `users:((…))` (`ss -p`).
    public var owners: [SocketOwner]
}

/// Parses `ss -tan`, `ss -tanpo`, `ss -naoep`, `ss -tanpoi` and similar output. Pure.
///
/// Accepts output with or without the header, with or without the Netid column (lines
/// of other protocols are skipped and counted), both `users:` formats — current
/// `(("envoy",pid=1,fd=42))` and legacy `(("envoy",1,42))` — the `timer:`, `ino:`
/// and `uid:` fields of -o and -e, and the indented tcp_info line of -i (idle times and
/// byte counts, which leak and stall analysis use).
public enum SSOutputParser {
    public struct Result: Sendable {
        public var lines: [SSLine]
        /// Header lines and lines of protocols other than TCP.
        public var skippedLines: Int
        /// Whether ss's header ("State Recv-Q…" or "Netid State…") was among them: an
        /// output with a header and no row is a listing that matched nothing, one with
        /// neither is not ss output at all.
        public var sawHeader: Bool
        /// The first line that was skipped without being a header or another protocol's
        /// row (an indented line with no socket before it), for the error that says so.
        public var firstUnexplained: (line: Int, text: ArraySlice<UInt8>)?
    }

    static let netids: Set<String> = [
        "tcp", "udp", "raw", "u_str", "u_dgr", "u_seq", "p_raw", "p_dgr", "nl", "mptcp", "sctp",
        "tipc", "v_str", "v_dgr", "xdp", "icmp6", "u_seqpacket",
    ]

    public static func parse(_ bytes: [UInt8], source: String) throws(ParseError) -> Result {
        var lines: [SSLine] = []
        var skipped = 0
        var sawHeader = false
        var firstUnexplained: (line: Int, text: ArraySlice<UInt8>)?
        var previousWasTCP = false
        var splitter = LineSplitter(bytes)
        while let range = splitter.next() {
            let text = String(decoding: bytes[range], as: UTF8.self)
            let lineNumber = splitter.lineNumber
            func fail(_ field: String, _ reason: String) -> ParseError {
                ParseError(source: source, line: lineNumber, field: field, reason: reason)
            }
            var tokens = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })[...]
            guard let first = tokens.first else { continue }
            // `ss -i` prints tcp_info on an indented line after its socket.
            if text.first == "\t" || text.first == " ", TCPState(name: first) == nil, !netids.contains(String(first)) {
                if previousWasTCP {
                    lines[lines.count - 1].socket.info = tcpInfo(tokens)
                } else {
                    skipped += 1
                    if firstUnexplained == nil { firstUnexplained = (lineNumber, bytes[range]) }
                }
                continue
            }
            previousWasTCP = false
            if first == "State" || first == "Netid" {
                skipped += 1
                sawHeader = true
                continue
            }
            if netids.contains(String(first)) {
                tokens = tokens.dropFirst()
                if first != "tcp" {
                    skipped += 1
                    continue
                }
            }
            guard tokens.count >= 5 else { throw fail("line", "expected State Recv-Q Send-Q Local Peer, got \(ParseError.quote(bytes[range]))") }
            let stateText = tokens.removeFirst()
            guard let state = TCPState(name: stateText) else {
                throw fail("State", "\(ParseError.quote(Array(stateText.utf8))) is not a TCP state")
            }
            guard let receiveQueue = UInt32(tokens.removeFirst()) else { throw fail("Recv-Q", "not a number") }
            guard let sendQueue = UInt32(tokens.removeFirst()) else { throw fail("Send-Q", "not a number") }
            let localText = tokens.removeFirst()
            guard let local = endpoint(localText, peer: false) else {
                throw fail("Local Address:Port", "not an address:port")
            }
            guard let remote = endpoint(tokens.removeFirst(), peer: true, family: local.address.family) else {
                throw fail("Peer Address:Port", "not an address:port")
            }
            var socket = TCPSocket(
                family: local.address.family, state: state, local: local, remote: remote,
                receiveQueue: receiveQueue, sendQueue: sendQueue)
            socket.boundDevice = boundDevice(localText)
            var owners: [SocketOwner] = []
            let rest = tokens.joined(separator: " ")
            if let usersRange = rest.firstRange(of: "users:(") {
                owners = try parseUsers(String(rest[usersRange.upperBound...]), fail: fail)
            }
            for token in tokens {
                if token.hasPrefix("ino:"), let inode = UInt64(token.dropFirst(4)) { socket.inode = inode }
                if token.hasPrefix("uid:"), let uid = UInt32(token.dropFirst(4)) { socket.uid = uid }
                if token == "v6only:1" || token == "v6only:0" { socket.v6Only = token == "v6only:1" }
                if token.hasPrefix("timer:("), let kind = timerKind(token.dropFirst(7)) { socket.timer = kind }
            }
            lines.append(SSLine(socket: socket, owners: owners))
            previousWasTCP = true
        }
        return Result(lines: lines, skippedLines: skipped, sawHeader: sawHeader, firstUnexplained: firstUnexplained)
    }

    /// The tcp_info fields of an `ss -i` line. ss prints lastsnd, lastrcv, lastack and the
    /// byte counts only when they are not zero, so a missing one is zero.
    static func tcpInfo(_ tokens: ArraySlice<Substring>) -> TCPInfo {
        var values: [Substring: Substring] = [:]
        for token in tokens {
            guard let colon = token.firstIndex(of: ":") else { continue }
            values[token[..<colon]] = token[token.index(after: colon)...]
        }
        func number(_ key: Substring) -> UInt64 { values[key].flatMap { UInt64($0) } ?? 0 }
        // rtt:0.035/0.017 (milliseconds, mean/deviation); retrans:0/3 (current/total).
        let rttMilliseconds = values["rtt"].flatMap { $0.split(separator: "/").first }.flatMap { Double($0) } ?? 0
        let retransmits = values["retrans"].flatMap { $0.split(separator: "/").last }.flatMap { UInt32($0) } ?? 0
        return TCPInfo(
            lastDataSentMilliseconds: UInt32(clamping: number("lastsnd")),
            lastDataReceivedMilliseconds: UInt32(clamping: number("lastrcv")),
            lastAckReceivedMilliseconds: UInt32(clamping: number("lastack")),
            // A pasted rtt is any decimal: saturated, never trapped on (the fuzzer's
            // rtt:8888…8 of 120 digits did).
            roundTripMicroseconds: UInt32(saturating: (rttMilliseconds * 1000).rounded()),
            totalRetransmits: retransmits,
            bytesAcked: number("bytes_acked"), bytesReceived: number("bytes_received"), bytesSent: number("bytes_sent"))
    }

    /// The device in `10.0.0.1%eth0:53` / `[fe80::1]%eth0:22`: ss prints the bound one.
    static func boundDevice(_ text: Substring) -> BoundDevice? {
        guard let percent = text.firstIndex(of: "%"), let colon = text.lastIndex(of: ":"), percent < colon else { return nil }
        var name = text[text.index(after: percent)..<colon]
        if name.hasSuffix("]") { name = name.dropLast() }
        return name.isEmpty ? nil : BoundDevice(name: String(name))
    }

    /// `127.0.0.1:80`, `[::1]:80`, `*:80`, `0.0.0.0:*`, `10.0.0.1%eth0:53`.
    static func endpoint(_ text: Substring, peer: Bool, family: AddressFamily? = nil) -> Endpoint? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = text[..<colon]
        let portText = text[text.index(after: colon)...]
        let port: UInt16
        if portText == "*" {
            port = 0
        } else {
            guard let value = UInt16(portText) else { return nil }
            port = value
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        if let percent = host.firstIndex(of: "%") { host = host[..<percent] }
        if host == "*" {
            // ss prints a wildcard address as "*"; for a peer, match the local family.
            return Endpoint(family == .ipv4 ? .v4(0) : .v6(high: 0, low: 0), port)
        }
        guard let address = IPAddress(host) else { return nil }
        return Endpoint(address, port)
    }

    /// Reads `("name",pid=1,fd=2),("name",pid=3,fd=4))` or the legacy `("name",1,2))`.
    static func parseUsers(_ text: String, fail: (String, String) -> ParseError) throws(ParseError) -> [SocketOwner] {
        var owners: [SocketOwner] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "(") {
            rest = rest[rest.index(after: open)...]
            guard rest.first == "\"", let closeQuote = rest.dropFirst().firstIndex(of: "\"") else {
                throw fail("users", "expected a quoted process name")
            }
            let name = String(rest[rest.index(after: rest.startIndex)..<closeQuote])
            rest = rest[rest.index(after: closeQuote)...]
            guard let close = rest.firstIndex(of: ")") else { throw fail("users", "unclosed process entry") }
            let fields = rest[..<close].split(separator: ",")
            rest = rest[rest.index(after: close)...]
            var pid: Int32?
            var fd: Int32?
            for (index, field) in fields.enumerated() {
                if field.hasPrefix("pid=") { pid = Int32(field.dropFirst(4)) }
                else if field.hasPrefix("fd=") { fd = Int32(field.dropFirst(3)) }
                else if index == 0 { pid = Int32(field) }
                else if index == 1 { fd = Int32(field) }
            }
            guard let pid, let fd else { throw fail("users", "process \(name) without pid and fd") }
            owners.append(SocketOwner(pid: pid, command: name, fd: fd))
            if rest.hasPrefix(")") { break }
        }
        return owners
    }

    static func timerKind(_ text: Substring) -> SocketTimerKind? {
        let kind = text.prefix { $0 != "," }
        return [SocketTimerKind.off, .retransmit, .keepalive, .timeWait, .zeroWindowProbe].first { $0.name == kind }
    }
}

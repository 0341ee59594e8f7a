import NetCore

/// Parses /proc/net/tcp and /proc/net/tcp6. Pure: bytes in, sockets out.
///
/// Each line is `sl: local rem st tx:rx tr:when retrnsmt uid timeout inode …`, with
/// addresses as the kernel's in-memory words printed in hex: on the little-endian
/// machines Kubernetes runs on, 127.0.0.1 reads `0100007F`. Request and TIME_WAIT
/// sockets print fewer trailing columns; everything after the inode is ignored. The
/// header line is skipped if present, so copies with or without it parse alike.
public enum ProcNetTCPParser {
    /// - Parameters:
    ///   - family: the family the file must hold (tcp is IPv4, tcp6 is IPv6); nil
    ///     accepts either, line by line, for pasted copies.
    ///   - source: the name used in errors, e.g. the path.
    public static func parse(_ bytes: [UInt8], family: AddressFamily?, source: String) throws(ParseError) -> [TCPSocket] {
        var sockets: [TCPSocket] = []
        sockets.reserveCapacity(bytes.count / 150)
        try forEachSocket(bytes, family: family, source: source) { sockets.append($0) }
        return sockets
    }

    /// Streams the sockets of a file without collecting them.
    ///
    /// One cursor walks the whole buffer: a line's fields are parsed where they stand and
    /// only the ignored tail after the inode is skipped, so no byte is scanned twice.
    public static func forEachSocket(
        _ bytes: [UInt8],
        family: AddressFamily?,
        source: String,
        _ body: (TCPSocket) -> Void
    ) throws(ParseError) {
        var scanner = ByteScanner(bytes, range: 0..<bytes.count)
        var lineNumber = 0
        while !scanner.isAtEnd {
            lineNumber += 1
            scanner.skipBlanks()
            if scanner.consume(0x0A) { continue }
            if scanner.isAtEnd { break }
            if !scanner.consume("sl ") {
                body(try parseLine(&scanner, family: family, source: source, line: lineNumber))
            }
            scanner.skipLine()
        }
    }

    static func parseLine(
        _ scanner: inout ByteScanner, family: AddressFamily?, source: String, line: Int
    ) throws(ParseError) -> TCPSocket {
        func fail(_ field: String, _ reason: String) -> ParseError {
            ParseError(source: source, line: line, field: field, reason: reason)
        }
        func rest(_ scanner: ByteScanner) -> String {
            ParseError.quote(scanner.restOfLine(maximum: 40))
        }
        guard scanner.decimal() != nil, scanner.consume(UInt8(ascii: ":")) else {
            throw fail("sl", "expected a slot number and ':', got \(rest(scanner))")
        }
        scanner.skipBlanks()
        let local = try endpoint(&scanner, family: family, field: "local_address", fail: fail)
        scanner.skipBlanks()
        let remote = try endpoint(&scanner, family: family, field: "rem_address", fail: fail)
        guard local.address.family == remote.address.family else {
            throw fail("rem_address", "address family differs from local_address")
        }
        scanner.skipBlanks()
        guard let rawState = scanner.hex(digits: 2), let state = TCPState(rawValue: UInt8(rawState)) else {
            throw fail("st", "expected a TCP state (01-0D), got \(rest(scanner))")
        }
        scanner.skipBlanks()
        guard let sendQueue = scanner.hexNumber(), scanner.consume(UInt8(ascii: ":")),
            let receiveQueue = scanner.hexNumber(),
            let sendQueue32 = UInt32(exactly: sendQueue), let receiveQueue32 = UInt32(exactly: receiveQueue)
        else { throw fail("tx_queue:rx_queue", "expected two hex numbers, got \(rest(scanner))") }
        scanner.skipBlanks()
        guard let timer = scanner.hexNumber(), scanner.consume(UInt8(ascii: ":")), let when = scanner.hexNumber() else {
            throw fail("tr:tm->when", "expected two hex numbers, got \(rest(scanner))")
        }
        scanner.skipBlanks()
        guard let retransmits = scanner.hexNumber() else { throw fail("retrnsmt", "expected hex, got \(rest(scanner))") }
        scanner.skipBlanks()
        guard let uid = scanner.decimal(), let uid32 = UInt32(exactly: uid) else {
            throw fail("uid", "expected a number, got \(rest(scanner))")
        }
        scanner.skipBlanks()
        guard scanner.signedDecimal() != nil else { throw fail("timeout", "expected a number, got \(rest(scanner))") }
        scanner.skipBlanks()
        guard let inode = scanner.decimal() else { throw fail("inode", "expected a number, got \(rest(scanner))") }
        if let next = scanner.peek, next != 0x0A, !ByteScanner.isBlank(next) {
            throw fail("inode", "expected a number, got \(rest(scanner))")
        }
        return TCPSocket(
            family: local.address.family,
            state: state,
            local: local,
            remote: remote,
            receiveQueue: receiveQueue32,
            sendQueue: sendQueue32,
            timer: SocketTimerKind(rawValue: UInt8(truncatingIfNeeded: timer)) ?? .off,
            // tm->when is in clock ticks (USER_HZ = 100 on every Linux ABI).
            timerExpiresMilliseconds: when.multipliedReportingOverflow(by: 10).overflow ? .max : when * 10,
            retransmits: UInt32(truncatingIfNeeded: retransmits),
            uid: uid32,
            inode: inode
        )
    }

    /// Reads `ADDR:PORT`, where ADDR is 8 hex digits (IPv4) or 32 (IPv6), in one pass:
    /// the first word decides, by what follows it, which of the two it is.
    private static func endpoint(
        _ scanner: inout ByteScanner,
        family: AddressFamily?,
        field: String,
        fail: (String, String) -> ParseError
    ) throws(ParseError) -> Endpoint {
        func malformed(_ scanner: ByteScanner) -> ParseError {
            fail(field, "expected 8 or 32 hex digits before ':', got \(ParseError.quote(scanner.restOfLine(maximum: 40)))")
        }
        let start = scanner
        // The kernel prints each __be32 of the address as a host-order word; swap back.
        guard let first = scanner.hex(digits: 8) else { throw malformed(start) }
        let address: IPAddress
        if scanner.peek == UInt8(ascii: ":") {
            guard family != .ipv6 else { throw fail(field, "IPv4 address in a ipv6 file") }
            address = .v4(UInt32(first).byteSwapped)
        } else {
            guard let second = scanner.hex(digits: 8), let third = scanner.hex(digits: 8), let fourth = scanner.hex(digits: 8),
                scanner.peek == UInt8(ascii: ":")
            else { throw malformed(start) }
            guard family != .ipv4 else { throw fail(field, "IPv6 address in a ipv4 file") }
            address = .v6(
                high: UInt64(UInt32(first).byteSwapped) << 32 | UInt64(UInt32(second).byteSwapped),
                low: UInt64(UInt32(third).byteSwapped) << 32 | UInt64(UInt32(fourth).byteSwapped))
        }
        guard scanner.consume(UInt8(ascii: ":")), let port = scanner.hex(digits: 4) else {
            throw fail(field, "expected ':' and a 4-digit hex port, got \(ParseError.quote(scanner.restOfLine(maximum: 20)))")
        }
        if let next = scanner.peek, next != 0x0A, !ByteScanner.isBlank(next) {
            throw fail(field, "port has more than 4 hex digits")
        }
        return Endpoint(address, UInt16(port))
    }
}

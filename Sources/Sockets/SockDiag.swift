import NetCore
import Netlink

/// sock_diag numbers (include/uapi/linux/sock_diag.h, inet_diag.h).
enum SockDiag {
    static let byFamily: UInt16 = 20  // SOCK_DIAG_BY_FAMILY
    /// TCPDIAG_GETSOCK, the request before SOCK_DIAG_BY_FAMILY (struct inet_diag_req). The
    /// kernel dumps it with family AF_UNSPEC (inet_diag_dump_compat), and its replies
    /// carry this type.
    static let tcpDiagGetSock: UInt16 = 18
    static let destroy: UInt16 = 21  // SOCK_DESTROY
    /// INET_DIAG_NOCOOKIE: "any socket with this tuple". Never sent for one socket.
    static let noCookie: UInt64 = ~0
    static let tcpProtocol: UInt8 = 6  // IPPROTO_TCP
    static let attributeInfo: UInt16 = 2  // INET_DIAG_INFO
    static let attributeV6Only: UInt16 = 11  // INET_DIAG_SKV6ONLY (u8, IPv6 sockets only)
    static let requestBytecode: UInt16 = 1  // INET_DIAG_REQ_BYTECODE
    static let bytecodeSourceEquals: UInt8 = 11  // INET_DIAG_BC_S_EQ
    static let bytecodeJump: UInt8 = 1  // INET_DIAG_BC_JMP
    static let bytecodeSourceAtLeast: UInt8 = 2  // INET_DIAG_BC_S_GE
    static let bytecodeSourceAtMost: UInt8 = 3  // INET_DIAG_BC_S_LE
    static let messageSize = 72  // sizeof(struct inet_diag_msg)

    /// Byte offsets of struct tcp_info fields. <linux/tcp.h> cannot be imported next to
    /// Glibc (two definitions of tcp_info), so the ABI offsets are spelled here; the
    /// struct only ever grows at its end.
    enum InfoOffset {
        static let totalRetransmits = 100  // tcpi_total_retrans
        static let lastDataSent = 44  // tcpi_last_data_sent
        static let lastDataReceived = 52  // tcpi_last_data_recv
        static let lastAckReceived = 56  // tcpi_last_ack_recv
        static let roundTrip = 68  // tcpi_rtt
        static let bytesAcked = 120  // tcpi_bytes_acked (u64)
        static let bytesReceived = 128  // tcpi_bytes_received (u64)
        static let bytesSent = 200  // tcpi_bytes_sent (u64, 4.19+)
    }
}

/// What one sock_diag dump covers.
public enum SockDiagScope: Sendable, Hashable {
    case family(AddressFamily)
    case bothFamilies

    /// The dumps that cover `families`: one for both, or one per family.
    public static func covering(_ families: [AddressFamily]) -> [SockDiagScope] {
        Set(families).count == AddressFamily.allCases.count ? [.bothFamilies] : AddressFamily.allCases.filter(families.contains).map { .family($0) }
    }
}

/// Builds and decodes sock_diag messages for TCP. Pure: bytes in, sockets out.
public enum SockDiagCodec {
    /// Whether a reply message carries a socket (SOCK_DIAG_BY_FAMILY, or TCPDIAG_GETSOCK
    /// in reply to a dump of both families).
    public static func carriesSocket(_ message: NetlinkMessage) -> Bool {
        message.type == SockDiag.byFamily || message.type == SockDiag.tcpDiagGetSock
    }

    /// A dump request for the TCP sockets of `scope` in `states`.
    ///
    /// IPv4 and IPv6 sockets share the kernel's established and listening hashes, and a
    /// dump walks the whole established hash whatever it hands back (LISTEN-only dumps
    /// excepted). One family is the v2 request (SOCK_DIAG_BY_FAMILY), which walks the whole
    /// hash and keeps that family's sockets; both families are the v1 request (TCPDIAG_GETSOCK), which
    /// the kernel still serves, dumping with AF_UNSPEC: one walk for both, where ss's two
    /// v2 requests walk the hash twice. Replies are the same inet_diag_msg either way.
    /// - Parameter localPorts: when given, the kernel returns only sockets whose local
    ///   port is one of these (inet_diag bytecode), so a filtered dump costs the kernel's
    ///   walk but not the copying of every socket.
    public static func dumpRequest(
        _ scope: SockDiagScope, states: TCPStateSet, withInfo: Bool, sequence: UInt32, localPorts: [UInt16] = [],
        localPortRange: ClosedRange<UInt16>? = nil
    ) -> [UInt8] {
        let type: UInt16
        switch scope {
        case .family: type = SockDiag.byFamily
        case .bothFamilies: type = SockDiag.tcpDiagGetSock
        }
        var builder = NetlinkRequestBuilder(type: type, flags: NetlinkConstant.request | NetlinkConstant.dump, sequence: sequence)
        let extensions: UInt8 = withInfo ? 1 << (SockDiag.attributeInfo - 1) : 0
        // Request sockets are TCP_NEW_SYN_RECV inside the kernel; ask for them whenever
        // SYN_RECV is wanted, as ss does.
        var mask = states.mask
        if states.contains(.synReceived) { mask |= 1 << UInt32(TCPState.newSynReceived.rawValue) }
        // A socket that is only bound is found by the bind-hash walk, which the kernel
        // makes only for BOUND_INACTIVE: CLOSE alone would find none.
        if states.contains(.close) || states.contains(.boundInactive) { mask |= 1 << UInt32(TCPState.boundInactive.rawValue) }
        switch scope {
        case .family(let family):
            // struct inet_diag_req_v2 { family, protocol, ext, pad, states, inet_diag_sockid }
            builder.appendBytes([family.rawValue, SockDiag.tcpProtocol, extensions, 0])
            builder.appendLE(mask)
            builder.appendBytes(repeatElement(0, count: 48))
        case .bothFamilies:
            // struct inet_diag_req { family (unused by a dump), src_len, dst_len, ext,
            // inet_diag_sockid, states, dbs }; the protocol is the message type's.
            builder.appendBytes([0, 0, 0, extensions])
            builder.appendBytes(repeatElement(0, count: 48))
            builder.appendLE(mask)
            builder.appendLE(UInt32(0))
        }
        if !localPorts.isEmpty {
            builder.attribute(SockDiag.requestBytecode, localPortBytecode(localPorts))
        } else if let localPortRange {
            builder.attribute(SockDiag.requestBytecode, localPortRangeBytecode(localPortRange))
        }
        return builder.finish()
    }

    /// A request naming exactly one socket — its 4-tuple and its cookie — to read it
    /// again (SOCK_DIAG_BY_FAMILY without NLM_F_DUMP) or destroy it (SOCK_DESTROY).
    ///
    /// The kernel looks the tuple up in the established hash and then the listening one,
    /// and answers ESTALE unless the cookie matches: the cookie is what keeps a request
    /// for a connection from reaching the listener on the same port, or a newer socket
    /// that reuses the tuple. So a socket without a cookie cannot be named (nil).
    public static func socketRequest(_ socket: TCPSocket, destroy: Bool, sequence: UInt32) -> [UInt8]? {
        guard let cookie = socket.cookie, cookie != 0, cookie != SockDiag.noCookie else { return nil }
        var builder = NetlinkRequestBuilder(
            type: destroy ? SockDiag.destroy : SockDiag.byFamily, flags: NetlinkConstant.request | NetlinkConstant.ack,
            sequence: sequence)
        builder.appendBytes([socket.family.rawValue, SockDiag.tcpProtocol, destroy ? 0 : 1 << (SockDiag.attributeInfo - 1), 0])
        builder.appendLE(UInt32.max)  // states: the lookup ignores them; the caller checks
        // struct inet_diag_sockid: sport, dport (big-endian), src[4], dst[4], if, cookie[2]
        builder.appendBytes([UInt8(truncatingIfNeeded: socket.local.port >> 8), UInt8(truncatingIfNeeded: socket.local.port)])
        builder.appendBytes([UInt8(truncatingIfNeeded: socket.remote.port >> 8), UInt8(truncatingIfNeeded: socket.remote.port)])
        builder.appendBytes(addressBytes(socket.local.address))
        builder.appendBytes(addressBytes(socket.remote.address))
        builder.appendLE(UInt32(0))
        builder.appendLE(UInt32(truncatingIfNeeded: cookie))
        builder.appendLE(UInt32(truncatingIfNeeded: cookie >> 32))
        return builder.finish()
    }

    /// An address as the 16 bytes of inet_diag_sockid's src/dst (IPv4 in the first 4).
    static func addressBytes(_ address: IPAddress) -> [UInt8] {
        func bigEndian(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }
        switch address {
        case .v4(let value): return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) } + Array(repeating: 0, count: 12)
        case .v6(let high, let low): return bigEndian(high) + bigEndian(low)
        }
    }

    /// inet_diag bytecode accepting a socket whose source port is any of `ports`.
    ///
    /// The layout is the one ss compiles for an OR: `P1 J P2 J … Pn`. A port test Pi is
    /// two ops (struct inet_diag_bc_op {code, yes, no}; the second op's `no` holds the
    /// port): a match goes on to the J after it, a miss skips that J to the next test (or,
    /// for the last test, 4 bytes past the end: reject). A J (INET_DIAG_BC_JMP always
    /// takes its `no`) jumps to the end: accept. inet_diag_bc_audit wants every `no`
    /// target to lie on the chain of `yes` jumps, which this layout keeps.
    public static func localPortBytecode(_ ports: [UInt16]) -> [UInt8] {
        let unique = Array(Set(ports)).sorted()
        var bytes: [UInt8] = []
        for (index, port) in unique.enumerated() {
            // INET_DIAG_BC_S_EQ, yes 8 (to the J), no 12 (past the J); then the port.
            bytes += [SockDiag.bytecodeSourceEquals, 8, 12, 0]
            bytes += [0, 0, UInt8(truncatingIfNeeded: port), UInt8(truncatingIfNeeded: port >> 8)]
            if index < unique.count - 1 {
                // What follows the J: the remaining tests and their Js.
                let remaining = unique.count - index - 1
                let rest = remaining * 8 + (remaining - 1) * 4
                let toEnd = UInt16(rest + 4)
                bytes += [SockDiag.bytecodeJump, 4, UInt8(truncatingIfNeeded: toEnd), UInt8(truncatingIfNeeded: toEnd >> 8)]
            }
        }
        return bytes
    }

    /// inet_diag bytecode accepting a socket whose source port lies in `range`: two
    /// tests (S_GE, S_LE) whatever the range's size, so the kernel's cost per socket stays
    /// constant. A failed test jumps 4 bytes past the end: reject.
    public static func localPortRangeBytecode(_ range: ClosedRange<UInt16>) -> [UInt8] {
        func port(_ value: UInt16) -> [UInt8] { [0, 0, UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8)] }
        return [SockDiag.bytecodeSourceAtLeast, 8, 20, 0] + port(range.lowerBound)
            + [SockDiag.bytecodeSourceAtMost, 8, 12, 0] + port(range.upperBound)
    }

    /// Decodes one inet_diag_msg.
    public static func decode(_ buffer: [UInt8], _ message: NetlinkMessage) throws(NetlinkFramingError) -> TCPSocket {
        let start = message.payload.lowerBound
        guard message.payload.count >= SockDiag.messageSize else {
            throw NetlinkFramingError(offset: start, reason: "inet_diag_msg of \(message.payload.count) bytes, needs 72")
        }
        guard let family = AddressFamily(rawValue: buffer[start]) else {
            throw NetlinkFramingError(offset: start, reason: "unknown address family \(buffer[start])")
        }
        guard let state = TCPState(rawValue: buffer[start + 1]) else {
            throw NetlinkFramingError(offset: start + 1, reason: "unknown TCP state \(buffer[start + 1])")
        }
        // struct inet_diag_sockid at +4: sport, dport (big-endian), src[4], dst[4], if, cookie[2]
        let id = start + 4
        let local = Endpoint(address(buffer, id + 4, family), buffer.uint16BE(at: id))
        let remote = Endpoint(address(buffer, id + 20, family), buffer.uint16BE(at: id + 2))
        let cookie = UInt64(buffer.uint32LE(at: id + 40)) | UInt64(buffer.uint32LE(at: id + 44)) << 32
        var info: TCPInfo?
        var v6Only: Bool?
        var attributes = NetlinkAttributeReader(buffer, range: (start + SockDiag.messageSize)..<message.payload.upperBound)
        while let attribute = try attributes.next() {
            switch attribute.type {
            case SockDiag.attributeInfo: info = decodeInfo(buffer, attribute.value)
            case SockDiag.attributeV6Only where !attribute.value.isEmpty: v6Only = buffer[attribute.value.lowerBound] != 0
            default: continue
            }
        }
        // idiag_if: sk_bound_dev_if, 0 when unbound. Host order, as the cookie.
        let deviceIndex = buffer.uint32LE(at: id + 36)
        var socket = TCPSocket(
            family: family,
            state: state == .newSynReceived ? .synReceived : state,
            local: local,
            remote: remote,
            receiveQueue: buffer.uint32LE(at: start + 56),
            sendQueue: buffer.uint32LE(at: start + 60),
            timer: SocketTimerKind(rawValue: buffer[start + 2]) ?? .off,
            timerExpiresMilliseconds: UInt64(buffer.uint32LE(at: start + 52)),
            retransmits: UInt32(buffer[start + 3]),
            uid: buffer.uint32LE(at: start + 64),
            inode: UInt64(buffer.uint32LE(at: start + 68)),
            cookie: cookie,
            info: info
        )
        socket.boundDevice = deviceIndex == 0 ? nil : BoundDevice(index: deviceIndex)
        socket.v6Only = v6Only
        return socket
    }

    private static func address(_ buffer: [UInt8], _ offset: Int, _ family: AddressFamily) -> IPAddress {
        switch family {
        case .ipv4: .v4(buffer.uint32BE(at: offset))
        case .ipv6: .v6(high: buffer.uint64BE(at: offset), low: buffer.uint64BE(at: offset + 8))
        }
    }

    /// Reads the fields present: kernels send as much of struct tcp_info as they know.
    static func decodeInfo(_ buffer: [UInt8], _ range: Range<Int>) -> TCPInfo? {
        let length = range.count
        func u32(_ offset: Int) -> UInt32 { offset + 4 <= length ? buffer.uint32LE(at: range.lowerBound + offset) : 0 }
        func u64(_ offset: Int) -> UInt64? { offset + 8 <= length ? buffer.uint64LE(at: range.lowerBound + offset) : nil }
        guard length >= SockDiag.InfoOffset.lastAckReceived + 4 else { return nil }
        return TCPInfo(
            lastDataSentMilliseconds: u32(SockDiag.InfoOffset.lastDataSent),
            lastDataReceivedMilliseconds: u32(SockDiag.InfoOffset.lastDataReceived),
            lastAckReceivedMilliseconds: u32(SockDiag.InfoOffset.lastAckReceived),
            roundTripMicroseconds: u32(SockDiag.InfoOffset.roundTrip),
            totalRetransmits: u32(SockDiag.InfoOffset.totalRetransmits),
            bytesAcked: u64(SockDiag.InfoOffset.bytesAcked) ?? 0,
            bytesReceived: u64(SockDiag.InfoOffset.bytesReceived) ?? 0,
            bytesSent: u64(SockDiag.InfoOffset.bytesSent)
        )
    }

    /// Decodes every socket in a captured dump (datagrams concatenated as received).
    public static func decodeDump(_ bytes: [UInt8]) throws(NetlinkFramingError) -> [TCPSocket] {
        var sockets: [TCPSocket] = []
        var reader = NetlinkMessageReader(bytes, count: bytes.count)
        while let message = try reader.next() {
            if carriesSocket(message) { sockets.append(try decode(bytes, message)) }
        }
        return sockets
    }
}

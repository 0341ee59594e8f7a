import NetCore
import Netlink
import Sockets
import TestSupport
import Testing

@Suite("/proc/net/tcp, sock_diag and ss")
struct SocketParserTests {
    let procSockets: [TCPSocket]
    let diagSockets: [TCPSocket]

    init() throws {
        procSockets =
            try ProcNetTCPParser.parse(try Fixture.bytes("captured/proc-net-tcp.txt"), family: .ipv4, source: "tcp")
            + ProcNetTCPParser.parse(try Fixture.bytes("captured/proc-net-tcp6.txt"), family: .ipv6, source: "tcp6")
        diagSockets = try SockDiagCodec.decodeDump(try Fixture.bytes("captured/sockdiag-dump.bin"))
    }

    @Test func ssDashEGivesTheBoundDeviceAndV6Only() throws {
        let lines = try SSOutputParser.parse(try Fixture.bytes("handmade/ss-tlne-bound-v6only.txt"), source: "ss -tlne").lines
        let byPort = Dictionary(uniqueKeysWithValues: lines.map { ($0.socket.local.port, $0.socket) })
        #expect(byPort[8083]?.boundDevice == BoundDevice(name: "v0") && byPort[8083]?.local == Endpoint(.v4(0), 8083))
        #expect(byPort[8080]?.boundDevice == BoundDevice(name: "lo"))
        #expect(byPort[8081]?.v6Only == true && byPort[8081]?.boundDevice == nil && byPort[8081]?.family == .ipv6)
        // The dual-stack listener: ss prints it as "*".
        #expect(byPort[8082]?.v6Only == false && byPort[8082]?.family == .ipv6)
        #expect(byPort[8080]?.v6Only == nil && byPort[8080]?.inode == 1718573)
    }

    @Test func theFixtureHoldsEveryStateItIsMeantTo() {
        let states = Set(procSockets.map(\.state))
        let expected: Set<TCPState> = [.listen, .synSent, .synReceived, .established, .finWait1, .finWait2, .timeWait, .closeWait, .lastAck]
        #expect(states == expected)
        #expect(procSockets.contains { $0.family == .ipv6 && $0.local.address == .loopbackV6 && $0.local.port == 15001 })
    }

    @Test func decodesAddressesPortsAndQueuesFromProc() throws {
        let listener = try #require(procSockets.first { $0.state == .listen && $0.local.port == 9000 })
        #expect(listener.local.address == .loopbackV4 && listener.remote == Endpoint(.v4(0), 0))
        #expect(listener.inode > 0 && listener.uid == 0)
        let halfClosed = try #require(procSockets.first { $0.state == .closeWait })
        #expect(halfClosed.local.address == IPAddress("10.1.0.5") && halfClosed.remote.port == 8080)
        #expect(halfClosed.receiveQueue == 1, "the FIN counts as one byte in the queue")
        let timeWait = try #require(procSockets.first { $0.state == .timeWait })
        #expect(timeWait.inode == 0 && timeWait.timer == .timeWait)
    }

    @Test func procAndSockDiagAgreeSocketForSocket() throws {
        #expect(procSockets.map(SocketKey.init).sorted() == diagSockets.map(SocketKey.init).sorted())
        let byInode = Dictionary(grouping: diagSockets.filter { $0.inode != 0 }, by: \.inode)
        for socket in procSockets where socket.inode != 0 {
            let twin = try #require(byInode[socket.inode]?.first, "inode \(socket.inode)")
            #expect(twin.uid == socket.uid && twin.receiveQueue == socket.receiveQueue)
        }
    }

    /// What ctdoctor asks: both families in one TCPDIAG_GETSOCK walk. The kernel answers
    /// with v1 messages (type 18) whose sockets are the per-family dumps' own.
    @Test func theOneWalkDumpHoldsThePerFamilyDumpsSockets() throws {
        let bytes = try Fixture.bytes("captured/sockdiag-one-walk.bin")
        #expect(bytes.count > 16 && UInt16(bytes[4]) | UInt16(bytes[5]) << 8 == 18, "a TCPDIAG_GETSOCK reply")
        let oneWalk = try SockDiagCodec.decodeDump(bytes)
        #expect(Set(oneWalk.map(\.family)) == [.ipv4, .ipv6])
        #expect(oneWalk.map(SocketKey.init).sorted() == diagSockets.map(SocketKey.init).sorted())
        let infoByInode = Dictionary(diagSockets.filter { $0.inode != 0 }.map { ($0.inode, $0.info?.bytesReceived) }, uniquingKeysWith: { first, _ in first })
        for socket in oneWalk where socket.inode != 0 {
            #expect(socket.info?.bytesReceived == infoByInode[socket.inode] ?? nil, "inode \(socket.inode): the same tcp_info")
        }
    }

    @Test func sockDiagCarriesTCPInfo() throws {
        // The proxy side of the IPv4 request received "GET /" (5 bytes) and answered 6.
        let proxy = try #require(diagSockets.first {
            $0.state == .established && $0.local.port == 15001 && $0.family == .ipv4 && ($0.info?.bytesReceived ?? 0) > 0
        })
        let info = try #require(proxy.info)
        #expect(info.bytesReceived == 5 && info.bytesAcked == 6 && info.bytesSent == 6)
        #expect(proxy.cookie != nil && proxy.cookie != 0)
        #expect(diagSockets.filter { $0.state == .timeWait }.allSatisfy { $0.info == nil }, "no tcp_info for TIME_WAIT")
    }

    @Test(arguments: ["ss-tan.txt", "ss-tanpo.txt", "ss-naoep.txt"])
    func ssOutputAgreesWithSockDiag(name: String) throws {
        let result = try SSOutputParser.parse(try Fixture.bytes("captured/\(name)"), source: name)
        #expect(result.lines.map { SocketKey($0.socket) }.sorted() == diagSockets.map(SocketKey.init).sorted())
        if name != "ss-tan.txt" {
            let owned = result.lines.filter { !$0.owners.isEmpty }
            // TIME_WAIT, request (SYN_RECV) and orphaned (LAST_ACK, closed by the app)
            // sockets have no file, so no owner.
            let orphans: Set<TCPState> = [.timeWait, .synReceived, .lastAck]
            #expect(owned.count == result.lines.filter { !orphans.contains($0.socket.state) }.count)
            #expect(owned.allSatisfy { $0.owners.first?.command == "python3" })
        }
        if name == "ss-naoep.txt" {
            #expect(result.skippedLines > 1, "UDP and unix lines are skipped and counted")
            let byInode = Dictionary(grouping: diagSockets, by: \.inode)
            for line in result.lines where line.socket.inode != 0 {
                #expect(byInode[line.socket.inode]?.first.map(SocketKey.init) == SocketKey(line.socket))
            }
        }
    }

    @Test func readsTheLegacyUsersFormatAndWildcards() throws {
        let result = try SSOutputParser.parse(try Fixture.bytes("handmade/ss-legacy-users.txt"), source: "legacy")
        #expect(result.lines.count == 3)
        #expect(result.lines[1].owners == [SocketOwner(pid: 1234, command: "envoy", fd: 43), SocketOwner(pid: 1240, command: "envoy", fd: 43)])
        #expect(result.lines[2].socket.state == .listen && result.lines[2].socket.local.port == 15001)
    }

    /// tcp_info numbers as pasted can be any decimal: saturated, not trapped on (the
    /// fuzzer's rtt of 120 digits stopped the parser once).
    @Test func hugeTCPInfoNumbersSaturate() throws {
        let huge = String(repeating: "8", count: 120)
        let text = """
            State      Recv-Q Send-Q Local Address:Port  Peer Address:Port Process
            ESTAB      0      0          127.0.0.1:15001    10.66.0.5:40001
            \t ts sack cubic wscale:7,7 rto:204 rtt:\(huge)0.5/0.25 lastsnd:\(huge) bytes_acked:\(huge) retrans:0/\(huge)

            """
        let info = try #require(try SSOutputParser.parse(Array(text.utf8), source: "huge").lines.first?.socket.info)
        #expect(info.roundTripMicroseconds == .max)
        #expect(info.lastDataSentMilliseconds == 0, "past UInt64: unreadable, taken as absent")
        #expect(info.bytesAcked == 0)
        #expect(info.totalRetransmits == 0)
    }

    @Test func readsCRLFAndTheRareClosingState() throws {
        let sockets = try ProcNetTCPParser.parse(try Fixture.bytes("handmade/proc-net-tcp-closing-crlf.txt"), family: .ipv4, source: "closing")
        #expect(sockets.count == 1 && sockets[0].state == .closing && sockets[0].sendQueue == 1)
        #expect(sockets[0].timer == .retransmit && sockets[0].timerExpiresMilliseconds == 200)
    }

    static let goodLine = "   0: 0100007F:3A99 0100007F:95B7 01 00000000:00000000 02:0001027C 00000000     0        0 4289348 1 7ed4d57b1e2feb89 20 4 30 10 -1"

    /// Malformed /proc/net/tcp lines fail naming the column, one line each.
    @Test(arguments: [
        ("   0: 0100007F:3A99 0100007F:95B7 01 00000000:00000000 02:0001027C 00000000     0", "timeout"),
        ("   0: 0100007F:3A99 0100007F:95B7", "st"),
        ("   0: 0100007G:3A99 0100007F:95B7 01 00000000:00000000 02:0001027C 00000000     0        0 1", "local_address"),
        ("   0: 0100007F:13A99 0100007F:95B7 01 00000000:00000000 02:0001027C 00000000     0        0 1", "local_address"),
        ("   0: 00000000000000000000000001000000:3A99 00000000000000000000000001000000:95B7 01 00000000:00000000 00:00000000 00000000 0 0 1", "local_address"),
        ("   0: 0100007F:3A99 0100007F:95B7 0F 00000000:00000000 02:0001027C 00000000     0        0 1", "st"),
        ("   0: 0100007F:3A99 0100007F:95B7 01 00000000 02:0001027C 00000000     0        0 1", "tx_queue:rx_queue"),
        ("   0: 0100007F:3A99 0100007F:95B7 01 00000000:00000000 02:0001027C 00000000 abc 0 1", "uid"),
        ("   0: 0100007F:3A99 0100007F:95B7 01 00000000:00000000 02:0001027C 00000000 0 0 12x4", "inode"),
        ("\u{7f}ELF\u{02}\u{01}", "sl"),
        ("sl:", "sl"),
    ])
    func refusesMalformedProcLines(line: String, field: String) {
        let text = Self.goodLine + "\n" + line + "\n"
        do {
            _ = try ProcNetTCPParser.parse(Array(text.utf8), family: .ipv4, source: "/proc/net/tcp")
            Issue.record("accepted: \(line)")
        } catch {
            #expect(error.field == field, "\(error)")
            #expect(error.line == 2)
            #expect(error.description.hasPrefix("/proc/net/tcp:2: "))
        }
    }

    @Test func parsesEitherFamilyWhenNotTold() throws {
        let mixed = try Fixture.text("captured/proc-net-tcp.txt") + (try Fixture.text("captured/proc-net-tcp6.txt"))
        let sockets = try ProcNetTCPParser.parse(Array(mixed.utf8), family: nil, source: "pasted")
        #expect(sockets.count == procSockets.count)
    }

    @Test func readsStateNamesInEverySpelling() {
        #expect(TCPState(name: "FIN_WAIT2") == .finWait2)
        #expect(TCPState(name: "fin-wait-2") == .finWait2)
        #expect(TCPState(name: "ESTAB") == .established)
        #expect(TCPState(name: "established") == .established)
        #expect(TCPState(name: "SYN-RECV") == .synReceived)
        #expect(TCPState(name: "bogus") == nil)
        #expect(TCPStateSet([.finWait2, .closeWait]).contains(.closeWait))
        #expect(!TCPStateSet([.finWait2]).contains(.listen))
    }

    @Test func readsSocketLinks() {
        #expect(ProcessTable.socketInode(fromLink: "socket:[12345]") == 12345)
        #expect(ProcessTable.socketInode(fromLink: "pipe:[12345]") == nil)
        #expect(ProcessTable.socketInode(fromLink: "socket:[x]") == nil)
    }
}

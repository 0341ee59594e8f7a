import KernelIO
import Live
import NetCore
import Netlink
import Sockets
import SystemPackage
import TestSupport
import Testing

/// The two dump requests (one family: v2; both: v1, which the kernel dumps with
/// AF_UNSPEC) laid out as include/uapi/linux/inet_diag.h has them, and the reader's way
/// back to per-family dumps on a kernel that refuses the v1 request.
@Suite("sock_diag dump requests")
struct SockDiagRequestTests {
    @Test func bothFamiliesAreOneDumpAndOneFamilyIsItself() {
        #expect(SockDiagScope.covering([.ipv4, .ipv6]) == [.bothFamilies])
        #expect(SockDiagScope.covering([.ipv6, .ipv4, .ipv6]) == [.bothFamilies])
        #expect(SockDiagScope.covering([.ipv4]) == [.family(.ipv4)])
        #expect(SockDiagScope.covering([.ipv6, .ipv6]) == [.family(.ipv6)])
        #expect(SockDiagScope.covering([]).isEmpty)
    }

    @Test func theV1RequestCarriesStatesExtensionsAndBytecodeWhereTheKernelReadsThem() {
        let request = SockDiagCodec.dumpRequest(.bothFamilies, states: [.finWait2, .synReceived], withInfo: true, sequence: 9, localPorts: [15001])
        #expect(request.uint16LE(at: 4) == 18, "TCPDIAG_GETSOCK")
        #expect(request.uint16LE(at: 6) == NetlinkConstant.request | NetlinkConstant.dump)
        #expect(request[19] == 1 << 1, "idiag_ext asks for INET_DIAG_INFO")
        // idiag_states after the 4 header bytes and the 48-byte inet_diag_sockid;
        // SYN_RECV brings TCP_NEW_SYN_RECV (12) with it.
        #expect(request.uint32LE(at: 16 + 52) == 1 << 5 | 1 << 3 | 1 << 12)
        // The bytecode attribute right after struct inet_diag_req (60 bytes).
        #expect(request.uint16LE(at: 16 + 60 + 2) == 1, "INET_DIAG_REQ_BYTECODE")
        #expect(Array(request[(16 + 64)...]) == SockDiagCodec.localPortBytecode([15001]))
        #expect(Int(request.uint32LE(at: 0)) == request.count)
    }

    @Test func theV2RequestNamesItsFamilyAndProtocol() {
        let request = SockDiagCodec.dumpRequest(.family(.ipv6), states: [.listen], withInfo: false, sequence: 9)
        #expect(request.uint16LE(at: 4) == 20, "SOCK_DIAG_BY_FAMILY")
        #expect(request[16] == AddressFamily.ipv6.rawValue && request[17] == 6 && request[18] == 0)
        #expect(request.uint32LE(at: 20) == 1 << 10)
        #expect(request.count == 16 + 56)
    }

    /// Bound-only sockets come from the kernel's walk of the node-wide bind hash, made
    /// only for BOUND_INACTIVE (13): a listing of every hashed state must not ask for it,
    /// CLOSE must, and the CLOSE sockets it brings back count as BOUND_INACTIVE's.
    @Test func onlyBoundSocketsAreAskedForByName() {
        let plain = SockDiagCodec.dumpRequest(.bothFamilies, states: .hashed, withInfo: true, sequence: 9)
        #expect(plain.uint32LE(at: 16 + 52) & 1 << 13 == 0, "no bind-hash walk")
        #expect(plain.uint32LE(at: 16 + 52) & 1 << 7 == 0)
        #expect(TCPStateSet.hashed.contains(.established) && TCPStateSet.hashed.contains(.listen) && TCPStateSet.hashed.contains(.timeWait))
        for asked: TCPStateSet in [[.close], [.boundInactive]] {
            let request = SockDiagCodec.dumpRequest(.family(.ipv4), states: asked, withInfo: false, sequence: 9)
            #expect(request.uint32LE(at: 20) & 1 << 13 != 0, "\(asked.mask)")
            #expect(asked.admits(.close), "the kernel reports them as CLOSE")
        }
        #expect(!TCPStateSet.hashed.admits(.close) && !TCPStateSet([.listen]).admits(.close))
    }

    func reader(_ transport: ScriptedTransport, proc: @escaping @Sendable (String) throws -> [UInt8] = { _ in [] }) -> SocketReader {
        SocketReader(transportFactory: { transport }, netFileReader: proc)
    }

    @Test(arguments: [Errno.notSupported, .invalidArgument, .noSuchFileOrDirectory])
    func aKernelRefusingTheV1RequestIsAskedFamilyByFamily(refusal: Errno) throws {
        let transport = ScriptedTransport([
            [.datagram(KernelReplies.error(refusal))], [.datagram(KernelReplies.done())], [.datagram(KernelReplies.done())],
        ])
        let (sockets, source) = try reader(transport).sockets()
        #expect(sockets.isEmpty && source == .sockDiag)
        #expect(transport.requests.map { $0.uint16LE(at: 4) } == [18, 20, 20])
        #expect(transport.requests.dropFirst().map { $0[16] } == [AddressFamily.ipv4.rawValue, AddressFamily.ipv6.rawValue])
    }

    @Test func aRefusalOfTheV1RequestIsRememberedForLaterDumpsOfTheSameKernel() throws {
        let transport = ScriptedTransport([
            [.datagram(KernelReplies.error(.invalidArgument))], [.datagram(KernelReplies.done())], [.datagram(KernelReplies.done())],
            [.datagram(KernelReplies.done())], [.datagram(KernelReplies.done())],
            [.datagram(Self.v1Listener(inode: 1) + KernelReplies.done())],
        ])
        let kernel = SockDiagKernelMemory()
        let first = SocketReader(transportFactory: { transport }, netFileReader: { _ in [] }, kernel: kernel)
        _ = try first.sockets()
        // Another reader of the same kernel (another namespace, the next export cycle).
        let second = SocketReader(transportFactory: { transport }, netFileReader: { _ in [] }, kernel: kernel)
        let (sockets, source) = try second.sockets()
        #expect(sockets.isEmpty && source == .sockDiag)
        #expect(transport.requests.map { $0.uint16LE(at: 4) } == [18, 20, 20, 20, 20], "the second dump asked family by family at once")
        // A reader of another kernel still asks the v1 request first.
        let other = try reader(transport).sockets(in: [.listen])
        #expect(other.0.count == 1 && transport.requests.last?.uint16LE(at: 4) == 18)
    }

    @Test func aKernelRefusingBothRequestsFallsBackToProc() throws {
        let transport = ScriptedTransport([[.datagram(KernelReplies.error(.notSupported))], [.datagram(KernelReplies.error(.notSupported))]])
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        let listener = "   0: 0100007F:3A99 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n"
        let (sockets, source) = try reader(transport, proc: { name in name == "tcp" ? Array((header + listener).utf8) : Array(header.utf8) }).sockets()
        #expect(sockets.map(\.local.port) == [15001])
        guard case .procFile = source else { Issue.record("expected the /proc fallback, got \(source)"); return }
        #expect(transport.requests.map { $0.uint16LE(at: 4) } == [18, 20])
    }

    /// One inet_diag_msg as the kernel answers a v1 dump: a listener on 127.0.0.1:15001.
    static func v1Listener(inode: UInt32) -> [UInt8] {
        var builder = NetlinkRequestBuilder(type: 18, flags: NetlinkConstant.multi, sequence: 0)
        builder.appendBytes([AddressFamily.ipv4.rawValue, TCPState.listen.rawValue, 0, 0])
        builder.appendBytes([0x3A, 0x99, 0, 0])  // sport 15001, dport 0, big-endian
        builder.appendBytes([127, 0, 0, 1] + Array(repeating: 0, count: 12))  // src
        builder.appendBytes(Array(repeating: 0, count: 16))  // dst
        builder.appendLE(UInt32(0))  // if
        builder.appendLE(UInt32(7))  // cookie
        builder.appendLE(UInt32(0))
        for field: UInt32 in [0, 0, 0, 0, inode] { builder.appendLE(field) }  // expires, rqueue, wqueue, uid, inode
        return builder.finish()
    }

    @Test func socketsRepliedToTheV1RequestAreDecoded() throws {
        let transport = ScriptedTransport([[.datagram(Self.v1Listener(inode: 4242) + KernelReplies.done())]])
        let (sockets, source) = try reader(transport).sockets(in: [.listen])
        #expect(source == .sockDiag && transport.requests.count == 1)
        #expect(sockets.map(\.local) == [Endpoint(.v4(0x7F00_0001), 15001)] && sockets.first?.inode == 4242)
        #expect(try SockDiagCodec.decodeDump(Self.v1Listener(inode: 1)).count == 1)
    }

    @Test func anIPv6LessKernelRefusingV1StillAnswersThroughIPv4EvenWithNothingFound() throws {
        // v1 refused, IPv4 answers with no socket, AF_INET6 has no handler.
        let transport = ScriptedTransport([
            [.datagram(KernelReplies.error(.notSupported))], [.datagram(KernelReplies.done())],
            [.datagram(KernelReplies.error(.noSuchFileOrDirectory))],
        ])
        let (sockets, source) = try reader(transport, proc: { _ in throw KernelIOError("read", errno: .permissionDenied) }).sockets(localPorts: [15001])
        #expect(sockets.isEmpty && source == .sockDiag, "\(source)")
    }

    @Test func otherErrorsOfTheV1RequestAreNotRetried() throws {
        let transport = ScriptedTransport([[.datagram(KernelReplies.error(.permissionDenied))]])
        #expect(throws: SocketReadError.self) { _ = try reader(transport).sockets() }
        #expect(transport.requests.count == 1)
    }
}

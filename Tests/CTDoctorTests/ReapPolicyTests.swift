import Conntrack
import Diagnosis
import NetCore
import Netlink
import Sockets
import Testing

/// Which sockets `leaks --reap` may destroy, and the request that names exactly one.
@Suite("reap policy")
struct ReapPolicyTests {
    /// A pod with one leaked socket (no entry, idle 300 s), one at risk and one healthy.
    func report(idle: UInt32 = 300_000) -> DiagnosisReport {
        var pod = Pod()
        pod.halfClosed(appPort: 40001, state: nil, idle: idle)
        pod.halfClosed(appPort: 40002, state: .closeWait, secondsLeft: 30)
        pod.halfClosed(appPort: 40003, state: .closeWait, secondsLeft: 7200)
        for index in pod.sockets.indices { pod.sockets[index].cookie = 0x1000 + pod.sockets[index].inode }
        return Diagnosis.diagnose(pod.input())
    }

    func leaked(_ report: DiagnosisReport) throws -> LeakRecord {
        try #require(report.leaks.first { $0.classification == .leaked })
    }

    @Test func onlyLeakedSocketsOnCapturePortsAreCandidates() throws {
        let report = report()
        #expect(report.leaks.count == 3)
        let candidates = ReapPolicy.candidates(report.leaks, profile: .istio)
        #expect(candidates.map(\.socket.remote.port) == [40001])
        #expect(ReapPolicy.candidates(report.leaks, profile: SidecarProfile(mesh: .custom, outboundPort: 9001, inboundPort: 9002)).isEmpty)
    }

    @Test func aSocketStillLeakedAndIdleLongEnoughIsDestroyed() throws {
        let leak = try leaked(report())
        let decision = ReapPolicy.decide(leak, now: leak.socket, entryNow: nil, minimumIdleMilliseconds: 120_000, profile: .istio, heldByProxy: true)
        #expect(decision.action == .destroy && decision.reason.contains("idle 300 s"))
        #expect(leak.provenance == .acceptedFromListener)
    }

    @Test func everyChangeSinceTheClassificationIsRefused() throws {
        let leak = try leaked(report())
        func decide(_ now: TCPSocket?, entry: ConntrackEntry? = nil, minimum: UInt64 = 120_000) -> ReapDecision {
            ReapPolicy.decide(leak, now: now, entryNow: entry, minimumIdleMilliseconds: minimum, profile: .istio, heldByProxy: true)
        }
        #expect(decide(nil).reason.contains("gone"))
        var reused = leak.socket
        reused.inode += 1
        #expect(decide(reused).reason.contains("another socket"))
        var otherCookie = leak.socket
        otherCookie.cookie = 7
        #expect(decide(otherCookie).action == .skip)
        var closing = leak.socket
        closing.state = .timeWait
        #expect(decide(closing).reason.contains("no longer FIN_WAIT2"))
        let entry = ConntrackEntry(
            family: .ipv4, protocolNumber: 6,
            original: ConntrackTuple(source: leak.socket.remote.address, destination: IPAddress("10.96.0.10")!, sourcePort: leak.socket.remote.port, destinationPort: 80),
            reply: ConntrackTuple(source: leak.socket.local.address, destination: leak.socket.remote.address, sourcePort: 15001, destinationPort: leak.socket.remote.port),
            state: .tcp(.synSent), status: [.confirmed], timeout: 120)
        #expect(decide(leak.socket, entry: entry).reason.contains("conntrack knows the flow again"))
        #expect(decide(leak.socket, minimum: 600_000).reason.contains("under the minimum"))
        var noInfo = leak.socket
        noInfo.info = nil
        #expect(decide(noInfo).reason.contains("idle time is unknown"))
        for decision in [decide(nil), decide(reused), decide(closing), decide(noInfo)] { #expect(decision.action == .skip) }
    }

    @Test func atRiskAndHealthySocketsAreRefusedEvenWhenAskedDirectly() throws {
        let report = report()
        for leak in report.leaks where leak.classification != .leaked {
            let decision = ReapPolicy.decide(leak, now: leak.socket, entryNow: nil, minimumIdleMilliseconds: 0, profile: .istio, heldByProxy: true)
            #expect(decision.action == .skip && decision.reason.contains("not leaked"))
        }
    }

    /// A socket another process bound to a capture port to connect out (here
    /// 10.66.0.5:15001 while the proxy listens on 127.0.0.1:15001, or with another uid
    /// beside a wildcard listener) sits in FIN_WAIT2 with no entry under the reply tuple
    /// diagnosis looks up — exactly like a leak. It is neither a leak nor a candidate.
    @Test func aForeignSocketOnACapturePortIsNeitherALeakNorACandidate() throws {
        var pod = Pod()
        pod.halfClosed(appPort: 40001, state: nil, idle: 300_000)
        let listener = try #require(pod.sockets.firstIndex { $0.state == .listen && $0.local.port == 15001 })
        pod.sockets[listener].local = Endpoint(.loopbackV4, 15001)
        pod.sockets[listener].uid = 1337
        for index in pod.sockets.indices where pod.sockets[index].state == .finWait2 { pod.sockets[index].uid = 1337 }
        let foreignBound = TCPSocket(
            family: .ipv4, state: .finWait2, local: Endpoint(IPAddress("10.66.0.5")!, 15001), remote: Endpoint(IPAddress("10.66.0.9")!, 7000),
            uid: 1337, inode: 90001, info: TCPInfo(lastDataSentMilliseconds: 300_000, lastDataReceivedMilliseconds: 300_000, lastAckReceivedMilliseconds: 300_000))
        let otherUser = TCPSocket(
            family: .ipv4, state: .finWait2, local: Endpoint(.loopbackV4, 15001), remote: Endpoint(IPAddress("127.0.0.1")!, 7001),
            uid: 0, inode: 90002, info: foreignBound.info)
        pod.sockets += [foreignBound, otherUser]
        let report = Diagnosis.diagnose(pod.input())
        #expect(report.leaks.map(\.socket.inode).allSatisfy { $0 != 90001 && $0 != 90002 }, "\(report.leaks.map(\.socket))")
        #expect(report.leaks.contains { $0.classification == .leaked && $0.provenance == .acceptedFromListener })
        #expect(report.notices.contains { $0.contains("2 FIN_WAIT2 sockets on capture ports are not the proxy's") }, "\(report.notices)")
        #expect(ReapPolicy.candidates(report.leaks, profile: .istio).allSatisfy { $0.socket.inode != 90001 && $0.socket.inode != 90002 })
    }

    /// Without a listener row (a grep-filtered paste) a socket is presumed the proxy's
    /// for the diagnosis, but never a reap candidate; and one the proxy does not hold,
    /// or whose holder cannot be read, is skipped.
    @Test func reapActsOnlyOnWhatItCanProve() throws {
        var pod = Pod()
        pod.halfClosed(appPort: 40001, state: nil, idle: 300_000)
        pod.sockets.removeAll { $0.state == .listen }
        let unverified = Diagnosis.diagnose(pod.input(), options: DiagnosisOptions(sidecar: .istio))
        let leak = try #require(unverified.leaks.first)
        #expect(leak.classification == .leaked && leak.provenance == .listenerNotSeen)
        #expect(ReapPolicy.candidates(unverified.leaks, profile: .istio).isEmpty)
        #expect(ReapPolicy.decide(leak, now: leak.socket, entryNow: nil, minimumIdleMilliseconds: 0, profile: .istio, heldByProxy: true).action == .skip)
        let proven = try leaked(report())
        let other = ReapPolicy.decide(proven, now: proven.socket, entryNow: nil, minimumIdleMilliseconds: 0, profile: .istio, heldByProxy: false)
        #expect(other.action == .skip && other.reason.contains("another process"))
        let unreadable = ReapPolicy.decide(proven, now: proven.socket, entryNow: nil, minimumIdleMilliseconds: 0, profile: .istio, heldByProxy: nil)
        #expect(unreadable.action == .skip && unreadable.reason.contains("not proven"))
    }

    @Test func theRequestNamesOneSocketByTupleAndCookie() throws {
        let socket = TCPSocket(
            family: .ipv4, state: .finWait2, local: Endpoint(.loopbackV4, 15001), remote: Endpoint(IPAddress("10.66.0.5")!, 40001),
            inode: 9, cookie: 0x0000_0002_0000_0001)
        let bytes = try #require(SockDiagCodec.socketRequest(socket, destroy: true, sequence: 7))
        #expect(bytes.count == 16 + 56)
        #expect(bytes.uint16LE(at: 4) == 21, "SOCK_DESTROY")
        #expect(bytes.uint16LE(at: 6) == NetlinkConstant.request | NetlinkConstant.ack, "one socket: no NLM_F_DUMP")
        #expect(bytes[16] == 2 && bytes[17] == 6, "AF_INET, IPPROTO_TCP")
        #expect(Array(bytes[24..<28]) == [0x3A, 0x99, 0x9C, 0x41], "ports 15001 and 40001, big-endian")
        #expect(Array(bytes[28..<32]) == [127, 0, 0, 1] && Array(bytes[44..<48]) == [10, 66, 0, 5])
        #expect(bytes.uint32LE(at: 64) == 1 && bytes.uint32LE(at: 68) == 2, "the cookie as the kernel gave it")
        let lookup = try #require(SockDiagCodec.socketRequest(socket, destroy: false, sequence: 7))
        #expect(lookup.uint16LE(at: 4) == 20 && lookup[18] != 0, "SOCK_DIAG_BY_FAMILY, asking for tcp_info")
        var anonymous = socket
        anonymous.cookie = nil
        #expect(SockDiagCodec.socketRequest(anonymous, destroy: true, sequence: 7) == nil)
        anonymous.cookie = ~0
        #expect(SockDiagCodec.socketRequest(anonymous, destroy: true, sequence: 7) == nil, "INET_DIAG_NOCOOKIE would match any socket")
    }
}

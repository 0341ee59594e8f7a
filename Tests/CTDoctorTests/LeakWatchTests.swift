import Conntrack
import Diagnosis
import NetCore
import Netlink
import Sockets
import Testing

/// The state `watch` keeps: what a destroyed entry means given the socket found after it.
@Suite("watch's leak state")
struct LeakWatchTests {
    static let app = Endpoint(IPAddress("10.66.0.5")!, 41422)
    static let proxy = Endpoint(.loopbackV4, 15001)

    static func entry(_ state: ConntrackTCPState, replyPort: UInt16 = 15001) -> ConntrackEntry {
        ConntrackEntry(
            family: .ipv4, protocolNumber: IPProtocolName.tcp,
            original: ConntrackTuple(source: app.address, destination: IPAddress("10.96.0.10")!, sourcePort: app.port, destinationPort: 80),
            reply: ConntrackTuple(source: proxy.address, destination: app.address, sourcePort: replyPort, destinationPort: app.port),
            state: .tcp(state), status: [.seenReply, .assured, .destinationNAT], timeout: 0)
    }

    static func socket(_ state: TCPState, cookie: UInt64 = 77) -> TCPSocket {
        TCPSocket(family: .ipv4, state: state, local: proxy, remote: app, inode: 9, cookie: cookie)
    }

    @Test func aDestroyedFlowWhoseProxySocketIsHalfClosedIsALeakBornOnce() throws {
        var watch = LeakWatch(capturePorts: [15001, 15006])
        let destroyed = Self.entry(.closeWait)
        #expect(watch.suspect(destroyed) == ReplyTupleKey(source: Self.proxy, destination: Self.app))
        let event = watch.destroyed(destroyed, proxySocket: Self.socket(.finWait2), at: 100)
        let born = try #require(event)
        #expect(born.kind == .leakBorn && born.originalDestination == Endpoint(IPAddress("10.96.0.10")!, 80) && born.cookie == 77)
        #expect(watch.destroyed(destroyed, proxySocket: Self.socket(.finWait2), at: 101) == nil, "one birth per socket")
        #expect(watch.sweep(present: [77], at: 150).isEmpty)
        let ended = watch.sweep(present: [], at: 160)
        #expect(ended.map(\.kind) == [.leakEnded] && ended.first?.lifetimeSeconds == 60)
        #expect(watch.leakedSockets.isEmpty)
    }

    @Test func aSweepJudgesOnlyTheLeaksKnownWhenItsSnapshotWasRead() {
        var watch = LeakWatch(capturePorts: [15001])
        _ = watch.destroyed(Self.entry(.closeWait), proxySocket: Self.socket(.finWait2, cookie: 1), at: 10)
        let known = watch.trackedCookies
        // Born from an event read after the snapshot, which therefore lacks its socket.
        _ = watch.destroyed(Self.entry(.closeWait, replyPort: 15001), proxySocket: Self.socket(.finWait2, cookie: 2), at: 11)
        let ended = watch.sweep(present: [], among: known, at: 12)
        #expect(ended.map(\.cookie) == [1])
        #expect(watch.trackedCookies == [2])
        // Both leaks sat on one tuple: ending the older keeps the newer's, so a connect
        // onto it is still its collision.
        #expect(watch.created(Self.entry(.synSent), at: 13)?.cookie == 2)
    }

    @Test func cleanEndsOtherPortsAndSocketsNotHalfClosedAreNoLeak() {
        var watch = LeakWatch(capturePorts: [15001])
        #expect(watch.suspect(Self.entry(.timeWait)) == nil && watch.suspect(Self.entry(.close)) == nil)
        #expect(watch.suspect(Self.entry(.closeWait, replyPort: 8080)) == nil, "not a capture port")
        let gone = watch.destroyed(Self.entry(.closeWait), proxySocket: nil, at: 1)
        #expect(gone == nil, "the socket went with the flow")
        let closing = watch.destroyed(Self.entry(.closeWait), proxySocket: Self.socket(.closeWait), at: 1)
        #expect(closing == nil)
        let born = watch.destroyed(Self.entry(.closeWait), proxySocket: Self.socket(.finWait2, cookie: 0), at: 1)
        #expect(born?.kind == .leakBorn)
        let found = watch.found(Self.socket(.finWait2, cookie: 5), originalDestination: nil, at: 2, why: "w")
        let again = watch.found(Self.socket(.finWait2, cookie: 5), originalDestination: nil, at: 3, why: "w")
        #expect(found?.kind == .leakFound && again == nil)
    }

    @Test func aSYNOntoALeaksTupleIsACollisionAndItsOutcomeFollows() throws {
        var watch = LeakWatch(capturePorts: [15001])
        _ = watch.destroyed(Self.entry(.closeWait), proxySocket: Self.socket(.finWait2), at: 10)
        let collision = watch.created(Self.entry(.synSent), at: 20)
        #expect(collision?.kind == .collision && collision?.cookie == 77)
        #expect(watch.created(Self.entry(.synSent), at: 20.5) == nil, "one collision per tuple at a time")
        #expect(watch.updated(Self.entry(.synReceived), at: 21) == nil)
        // The app's RST resets the leaked socket (its leak ends) and closes the colliding
        // entry; the retransmitted SYN's entry is the one that connects.
        #expect(watch.sweep(present: [], at: 20.1).map(\.kind) == [.leakEnded])
        let reset = watch.collisionDestroyed(Self.entry(.close), at: 20.2)
        #expect(reset == nil, "a reset entry is not the outcome")
        let retransmitted = watch.created(Self.entry(.synSent), at: 21)
        #expect(retransmitted == nil, "the same collision, not a new one")
        let recovered = watch.updated(Self.entry(.established), at: 21.25)
        #expect(recovered?.kind == .collisionRecovered && recovered?.afterSeconds == 1.25)
        // Another attempt, on a leak that stays, that never connects: its entry ends in SYN_SENT.
        _ = watch.destroyed(Self.entry(.closeWait), proxySocket: Self.socket(.finWait2, cookie: 78), at: 25)
        _ = watch.created(Self.entry(.synSent), at: 30)
        let failed = watch.collisionDestroyed(Self.entry(.synSent), at: 150)
        #expect(failed?.kind == .collisionFailed && failed?.afterSeconds == 120)
        // And one whose entry is never seen again is failed once it cannot be under way.
        _ = watch.created(Self.entry(.synSent), at: 200)
        #expect(watch.expireCollisions(at: 300).isEmpty)
        #expect(watch.expireCollisions(at: 380).map(\.kind) == [.collisionFailed])
        // A flow on a tuple no leak holds is nobody's collision.
        var quiet = LeakWatch(capturePorts: [15001])
        #expect(quiet.created(Self.entry(.synSent), at: 1) == nil)
    }

    @Test func eventKindsAreReadAsTheKernelSendsThem() throws {
        func kind(_ type: UInt16, _ flags: UInt16) throws -> ConntrackEventKind? {
            var builder = NetlinkRequestBuilder(type: type, flags: flags, sequence: 0)
            builder.appendBytes([2, 0, 0, 0])
            let bytes = builder.finish()
            var reader = NetlinkMessageReader(bytes, count: bytes.count)
            let message = try reader.next()
            return ConntrackEventKind(try #require(message))
        }
        #expect(try kind(1 << 8 | 0, NetlinkConstant.create | NetlinkConstant.exclusive) == .new)
        #expect(try kind(1 << 8 | 0, 0) == .update)
        #expect(try kind(1 << 8 | 2, 0) == .destroy)
        #expect(try kind(1 << 8 | 1, 0) == nil && kind(2 << 8 | 2, 0) == nil, "a GET reply, another subsystem")
        #expect(ConntrackEventKind.destroy.group == 3)
    }

    @Test func aSilentAcceptedConnectionIsOneStallUntilItSpeaksAndItsPortSaysWhoWaits() {
        var stalls = StallWatch(catalog: ProtocolCatalog())
        func silent(_ cookie: UInt64, seconds: UInt32) -> TCPSocket {
            var socket = Self.socket(.established, cookie: cookie)
            socket.info = TCPInfo(lastDataSentMilliseconds: seconds * 1000, lastDataReceivedMilliseconds: seconds * 1000, lastAckReceivedMilliseconds: 0)
            return socket
        }
        let smtp = silent(1, seconds: 7)
        let unknownPort = silent(2, seconds: 6)
        #expect(stalls.unknown(among: [smtp, unknownPort]).count == 2)
        let first = stalls.scan(silent: [smtp, unknownPort], destinations: [1: Endpoint(IPAddress("10.96.0.25")!, 25)], at: 100)
        #expect(first.map(\.kind) == [.stall, .stall])
        #expect(first[0].application?.name == "SMTP" && first[0].application?.isServerFirst == true && first[0].afterSeconds == 7)
        #expect(first[0].detail.contains("speaks first") && first[1].application == nil && first[1].detail.contains("conntrack entry is gone"))
        // Seen again: nothing new, and nothing to look up.
        #expect(stalls.unknown(among: [smtp, unknownPort]).isEmpty)
        #expect(stalls.scan(silent: [smtp, unknownPort], destinations: [:], at: 105).isEmpty)
        // The SMTP connection spoke (or closed): its stall ends with how long it lasted.
        let ended = stalls.scan(silent: [unknownPort], destinations: [:], at: 110)
        #expect(ended.map(\.kind) == [.stallEnded] && ended[0].cookie == 1 && ended[0].afterSeconds == 17)
    }
}

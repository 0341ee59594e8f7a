import Diagnosis
import NetCore
@testable import Live
import Sockets
import Testing

/// The capture ports' walk is sorted as it decodes: what each socket is kept for decides
/// whether diagnose sees it at all, so each category and the inbound limit are pinned here.
@Suite("Sorting the capture ports' sockets")
struct CapturePortSortingTests {
    static let outbound: UInt16 = 15001
    static let inbound: UInt16 = 15006
    static let thresholdMilliseconds: UInt64 = 10_000

    func socket(_ state: TCPState, port: UInt16, silentFor idle: UInt32? = nil, busyFor busy: UInt32? = nil, inode: UInt64) -> TCPSocket {
        let info: TCPInfo? = if let idle {
            TCPInfo(lastDataSentMilliseconds: idle, lastDataReceivedMilliseconds: idle, lastAckReceivedMilliseconds: idle, bytesSent: 0)
        } else if let busy {
            TCPInfo(lastDataSentMilliseconds: busy, lastDataReceivedMilliseconds: busy, lastAckReceivedMilliseconds: busy,
                    bytesAcked: 512, bytesReceived: 512, bytesSent: 512)
        } else { nil }
        return TCPSocket(family: .ipv4, state: state, local: Endpoint(IPAddress("10.0.0.5")!, port),
                         remote: Endpoint(IPAddress("10.0.0.9")!, UInt16(40_000 + inode % 20_000)), inode: inode, info: info)
    }

    func sorter(limit: Int = LiveCollector.inboundLookupLimit) -> LiveCollector.CapturePortSockets {
        LiveCollector.CapturePortSockets(
            capturePorts: [Self.outbound, Self.inbound], inboundPorts: [Self.inbound],
            silentAfterMilliseconds: Self.thresholdMilliseconds, acceptedLimit: limit)
    }

    @Test func eachSocketIsKeptForWhatItCanShow() {
        var sockets = sorter()
        sockets.sort(socket(.finWait2, port: Self.outbound, inode: 1))                      // a leak suspect
        sockets.sort(socket(.established, port: Self.outbound, silentFor: 30_000, inode: 2)) // a stall candidate
        sockets.sort(socket(.established, port: Self.outbound, silentFor: 2_000, inode: 3))  // silent, not yet long
        sockets.sort(socket(.established, port: Self.outbound, busyFor: 30_000, inode: 4))   // an ordinary connection
        sockets.sort(socket(.established, port: 15008, silentFor: 11 * 60 * 1000, inode: 5)) // an idle HBONE tunnel
        sockets.sort(socket(.established, port: 15008, busyFor: 1_000, inode: 6))            // a busy tunnel
        sockets.sort(socket(.finWait2, port: 15008, inode: 7))                               // not on a capture port
        sockets.sort(socket(.established, port: Self.inbound, busyFor: 1_000, inode: 8))     // accepted inbound
        sockets.sort(socket(.synReceived, port: Self.inbound, inode: 9))                     // half-open inbound
        sockets.sort(socket(.established, port: Self.inbound, silentFor: 30_000, inode: 10)) // a silent inbound one

        #expect(sockets.halfClosed.map(\.inode) == [1])
        #expect(sockets.silent.map(\.inode) == [2, 10])
        #expect(sockets.idleTunnels.map(\.inode) == [5])
        // The silent inbound connection is a stall candidate, not looked up for a clash.
        #expect(sockets.accepted.map(\.inode) == [8, 9])
        #expect(sockets.acceptedCount == 2)
    }

    @Test func onlyTheFirstAcceptedInboundAreKeptButAllAreCounted() {
        var sockets = sorter(limit: 3)
        for inode in UInt64(1)...10 {
            sockets.sort(socket(inode.isMultiple(of: 2) ? .synReceived : .established, port: Self.inbound, busyFor: 500, inode: inode))
        }
        sockets.sort(socket(.finWait2, port: Self.inbound, inode: 11))
        #expect(sockets.accepted.map(\.inode) == [1, 2, 3])
        #expect(sockets.acceptedCount == 10)
        #expect(sockets.halfClosed.map(\.inode) == [11], "the limit bounds the lookups, not the leak suspects")
    }
}

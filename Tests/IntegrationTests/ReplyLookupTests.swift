import Conntrack
import KernelIO
import Live
import NetCore
import Netlink
import TestSupport
import Testing

/// Lookups by reply tuple against a real table: batched GETs, replies taken with
/// recvmmsg, and (past 1,024 keys) two lanes on two sockets.
@Suite("conntrack lookups by reply tuple", .enabled(if: Privileges.shouldRunPrivilegedTests))
struct ReplyLookupTests {
    static let app = IPAddress("10.66.0.5")!
    static let service = IPAddress("10.96.0.10")!

    /// REDIRECTed flows as diagnosis sees them: original app → service:80, reply from the
    /// proxy's 127.0.0.1:15001.
    func insert(_ count: Int, into namespace: TestNamespace) throws -> [ReplyTupleKey] {
        let socket = try namespace.namespace.run { try NetlinkSocket(bus: .netfilter, receiveBufferBytes: 8 << 20) }
        var keys: [ReplyTupleKey] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        // A hundred creates per sendmsg (one must fit the socket's send buffer), each
        // acknowledged, so a refused create fails the test instead of thinning the table.
        for first in stride(from: 0, to: count, by: 100) {
            var batch: [UInt8] = []
            for index in first..<min(first + 100, count) {
                let port = UInt16(20000 + index)
                let entry = ConntrackEntry(
                    family: .ipv4, protocolNumber: IPProtocolName.tcp,
                    original: ConntrackTuple(source: Self.app, destination: Self.service, sourcePort: port, destinationPort: 80),
                    reply: ConntrackTuple(source: Self.service, destination: Self.app, sourcePort: 80, destinationPort: port),
                    state: .tcp(.closeWait), status: [.seenReply, .assured], timeout: 600)
                batch += ConntrackRequest.create(
                    entry, sequence: UInt32(index + 1), redirectTo: Endpoint(.loopbackV4, 15001), acknowledge: true)
                keys.append(ReplyTupleKey(source: Endpoint(.loopbackV4, 15001), destination: Endpoint(Self.app, port)))
            }
            try socket.send(batch)
            var acknowledged = 0
            while acknowledged < min(100, count - first) {
                let received = try socket.receive(into: &buffer)
                var reader = NetlinkMessageReader(buffer, count: received)
                while let message = try reader.next() {
                    guard message.type == NetlinkConstant.error else { continue }
                    try NetlinkDump.checkErrorMessage(buffer, message)
                    acknowledged += 1
                }
            }
        }
        return keys
    }

    @Test func findsEveryEntryAndNothingElseWithOneLaneOrTwo() throws {
        let namespace = try TestNamespace(tag: "lookup")
        defer { namespace.destroy() }
        let present = try insert(1500, into: namespace)
        let absent = (0..<200).map { ReplyTupleKey(source: Endpoint(.loopbackV4, 15001), destination: Endpoint(Self.app, UInt16(40000 + $0))) }
        var lookup = ConntrackReplyLookup(namespace: namespace.namespace)
        for parallelism in [1, 2] {
            lookup.parallelism = parallelism
            let found = try lookup.entries(for: present + absent + present.prefix(10))
            #expect(found.count == present.count, "parallelism \(parallelism)")
            #expect(Set(found.keys) == Set(present))
            let sample = try #require(found[present[777]])
            #expect(sample.original.sourcePort == 20777 && sample.original.destinationEndpoint == Endpoint(Self.service, 80))
            #expect(sample.tcpState == .closeWait)
        }
    }
}

import Conntrack
import KernelIO
import NetCore
import Netlink
import TestSupport
import Testing

/// The event filters as the kernel runs them: three event sockets, one per filter, in a
/// namespace where flows of every kind are created, moved through TCP states and deleted;
/// each socket receives what its filter keeps and nothing else. Needs root; with CI=true it never skips.
@Suite("conntrack event filters in the kernel", .enabled(if: Privileges.shouldRunPrivilegedTests))
struct EventFilterTests {
    /// A flow created, moved through TCP states, and deleted, and what distinguishes it
    /// in its events.
    struct Flow {
        var entry: ConntrackEntry
        var redirectTo: Endpoint?
        /// The states it is moved to after its creation (TCP only), each an UPDATE.
        var updates: [ConntrackTCPState]
        var appPort: UInt16 { entry.original.sourcePort }
    }

    static func flow(
        _ family: AddressFamily, _ protocolNumber: UInt8, appPort: UInt16, redirectTo proxyPort: UInt16?,
        _ states: [ConntrackTCPState] = []
    ) -> Flow {
        let app = family == .ipv4 ? IPAddress("10.66.0.5")! : IPAddress("fd00::5")!
        let service = family == .ipv4 ? IPAddress("10.96.0.10")! : IPAddress("fd00::10")!
        let proxy = family == .ipv4 ? IPAddress.loopbackV4 : IPAddress("::1")!
        let entry = ConntrackEntry(
            family: family, protocolNumber: protocolNumber,
            original: ConntrackTuple(source: app, destination: service, sourcePort: appPort, destinationPort: 80),
            reply: ConntrackTuple(source: service, destination: app, sourcePort: 80, destinationPort: appPort),
            state: states.first.map { .tcp($0) }, status: [.seenReply, .assured], timeout: 600)
        return Flow(entry: entry, redirectTo: proxyPort.map { Endpoint(proxy, $0) }, updates: Array(states.dropFirst()))
    }

    /// A connect through the outbound capture that half-closes (destroyed in FIN_WAIT: a
    /// leak may be born), an inbound one over IPv6 that ends cleanly in TIME_WAIT, the
    /// same life on a port no sidecar captures and on another mesh's port, and UDP.
    static let flows = [
        flow(.ipv4, IPProtocolName.tcp, appPort: 41001, redirectTo: 15001, [.synSent, .established, .finWait]),
        flow(.ipv6, IPProtocolName.tcp, appPort: 41002, redirectTo: 15006, [.established, .timeWait]),
        flow(.ipv4, IPProtocolName.tcp, appPort: 41003, redirectTo: nil, [.synSent, .established, .finWait]),
        flow(.ipv4, IPProtocolName.tcp, appPort: 41004, redirectTo: 4140, [.synSent, .established, .finWait]),
        flow(.ipv4, IPProtocolName.udp, appPort: 41005, redirectTo: 15001),
        flow(.ipv6, IPProtocolName.udp, appPort: 41006, redirectTo: nil),
    ]

    /// One event as the test compares them.
    struct Seen: Hashable, CustomStringConvertible {
        var kind: ConntrackEventKind
        var port: UInt16
        var protocolNumber: UInt8
        var state: ConntrackTCPState?
        var description: String { "\(kind) \(port) \(state?.name ?? IPProtocolName.name(of: protocolNumber))" }
    }

    @Test func eachSocketReceivesWhatItsFilterKeepsAndNothingElse() throws {
        let namespace = try TestNamespace(tag: "evfilter")
        defer { namespace.destroy() }
        let capturePorts: Set<UInt16> = [15001, 15006]
        let filters = ConntrackEventFilter.allCases
        let sockets = try filters.map { filter in
            let socket = try namespace.namespace.run { try NetlinkSocket(bus: .netfilter, receiveBufferBytes: 1 << 20) }
            for kind in [ConntrackEventKind.new, .update, .destroy] { try socket.join(group: kind.group) }
            if let program = filter.program(capturePorts: capturePorts) { try socket.attach(filter: program) }
            return socket
        }
        try change(in: namespace)
        var seen: [ConntrackEventFilter: [Seen]] = [:]
        for (filter, socket) in zip(filters, sockets) { seen[filter] = try events(on: socket) }

        // Unfiltered: every creation, update and deletion made above.
        let all = try #require(seen[.off])
        let made = Self.flows.reduce(0) { $0 + 2 + $1.updates.count }
        #expect(all.count == made, "\(all)")
        #expect(seen[.tcp] == all.filter { $0.protocolNumber == IPProtocolName.tcp }, "\(seen[.tcp] ?? [])")
        // The capture ports' TCP flows at the moments watch judges: created; updated to
        // ESTABLISHED; destroyed before the close finished. Not SYN_RECV, FIN_WAIT or
        // TIME_WAIT updates, not a TIME_WAIT destroy, nothing of the other flows.
        #expect(seen[.ports] == [
            Seen(kind: .new, port: 41001, protocolNumber: IPProtocolName.tcp, state: .synSent),
            Seen(kind: .new, port: 41002, protocolNumber: IPProtocolName.tcp, state: .established),
            Seen(kind: .update, port: 41001, protocolNumber: IPProtocolName.tcp, state: .established),
            Seen(kind: .destroy, port: 41001, protocolNumber: IPProtocolName.tcp, state: .finWait),
        ], "\(seen[.ports] ?? [])")
    }

    @Test func tooManyPortsForOneByteJumpsFallBackToTheTCPFilter() throws {
        let many = Set((0..<UInt16(ConntrackEventFilter.mostPorts + 1)).map { 20000 + $0 })
        #expect(ConntrackEventFilter.ports.program(capturePorts: many) == ConntrackEventFilter.tcp.program(capturePorts: []))
        let most = Set(many.prefix(ConntrackEventFilter.mostPorts))
        let program = try #require(ConntrackEventFilter.ports.program(capturePorts: most))
        #expect(program != ConntrackEventFilter.tcp.program(capturePorts: []))
        // The kernel takes the longest one (its checker refuses a jump out of the program).
        let namespace = try TestNamespace(tag: "evfilter")
        defer { namespace.destroy() }
        let socket = try namespace.namespace.run { try NetlinkSocket(bus: .netfilter) }
        try socket.attach(filter: program)
    }

    /// Creates every flow, moves each through its states, then deletes them, every
    /// request acknowledged before the next.
    func change(in namespace: TestNamespace) throws {
        let socket = try namespace.namespace.run { try NetlinkSocket(bus: .netfilter) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var sequence: UInt32 = 1
        func acknowledged(_ request: [UInt8]) throws {
            try socket.send(request)
            let count = try socket.receive(into: &buffer)
            var reader = NetlinkMessageReader(buffer, count: count)
            while let message = try reader.next(), message.type == NetlinkConstant.error {
                try NetlinkDump.checkErrorMessage(buffer, message)
            }
            sequence += 1
        }
        for flow in Self.flows {
            try acknowledged(ConntrackRequest.create(flow.entry, sequence: sequence, redirectTo: flow.redirectTo, acknowledge: true))
        }
        for flow in Self.flows {
            for state in flow.updates { try acknowledged(ConntrackRequest.update(flow.entry, to: state, sequence: sequence)) }
        }
        for flow in Self.flows {
            let key = ReplyTupleKey(
                source: flow.redirectTo ?? flow.entry.reply.sourceEndpoint, destination: flow.entry.reply.destinationEndpoint)
            try acknowledged(ConntrackRequest.delete(replyOf: key, protocolNumber: flow.entry.protocolNumber, sequence: sequence))
        }
    }

    /// What arrived, in order, until a second passes without another (every change above
    /// was acknowledged by then, and the kernel queues its event before acknowledging).
    func events(on socket: NetlinkSocket) throws -> [Seen] {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var seen: [Seen] = []
        while try socket.waitReadable(milliseconds: 1000) {
            let count = try socket.receive(into: &buffer)
            var reader = NetlinkMessageReader(buffer, count: count)
            while let message = try reader.next() {
                guard let kind = ConntrackEventKind(message) else { continue }
                let entry = try ConntrackMessageDecoder.decode(buffer, message)
                seen.append(Seen(kind: kind, port: entry.original.sourcePort, protocolNumber: entry.protocolNumber, state: entry.tcpState))
            }
        }
        return seen
    }
}

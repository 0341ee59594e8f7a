import Conntrack
import KernelIO
import NetCore
import Netlink
import TestSupport
import Testing

/// The event filters as the kernel runs them: three event sockets, one per filter, in a
/// namespace where flows of every kind are created and deleted; each socket receives what
/// its filter keeps and nothing else. Needs root; with CI=true it never skips.
@Suite("conntrack event filters in the kernel", .enabled(if: Privileges.shouldRunPrivilegedTests))
struct EventFilterTests {
    /// A flow created and deleted, and what distinguishes it in its events.
    struct Flow {
        var entry: ConntrackEntry
        var redirectTo: Endpoint?
        /// The reply tuple's source port the kernel will report (the proxy's, when redirected).
        var replyPort: UInt16
    }

    static func flow(_ family: AddressFamily, _ protocolNumber: UInt8, appPort: UInt16, redirectTo proxyPort: UInt16?) -> Flow {
        let app = family == .ipv4 ? IPAddress("10.66.0.5")! : IPAddress("fd00::5")!
        let service = family == .ipv4 ? IPAddress("10.96.0.10")! : IPAddress("fd00::10")!
        let proxy = family == .ipv4 ? IPAddress.loopbackV4 : IPAddress("::1")!
        let entry = ConntrackEntry(
            family: family, protocolNumber: protocolNumber,
            original: ConntrackTuple(source: app, destination: service, sourcePort: appPort, destinationPort: 80),
            reply: ConntrackTuple(source: service, destination: app, sourcePort: 80, destinationPort: appPort),
            state: protocolNumber == IPProtocolName.tcp ? .tcp(.established) : nil, status: [.seenReply, .assured], timeout: 600)
        return Flow(entry: entry, redirectTo: proxyPort.map { Endpoint(proxy, $0) }, replyPort: proxyPort ?? 80)
    }

    static let flows = [
        flow(.ipv4, IPProtocolName.tcp, appPort: 41001, redirectTo: 15001),  // the sidecar's outbound capture
        flow(.ipv6, IPProtocolName.tcp, appPort: 41002, redirectTo: 15006),  // inbound, over IPv6
        flow(.ipv4, IPProtocolName.tcp, appPort: 41003, redirectTo: nil),  // plain TCP: churn
        flow(.ipv4, IPProtocolName.tcp, appPort: 41004, redirectTo: 4140),  // another mesh's port
        flow(.ipv4, IPProtocolName.udp, appPort: 41005, redirectTo: 15001),  // UDP onto a capture port's number
        flow(.ipv6, IPProtocolName.udp, appPort: 41006, redirectTo: nil),
    ]

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

        for (filter, socket) in zip(filters, sockets) {
            let seen = try events(on: socket)
            let expected = Self.flows.filter { flow in
                switch filter {
                case .off: true
                case .tcp: flow.entry.protocolNumber == IPProtocolName.tcp
                case .ports: flow.entry.protocolNumber == IPProtocolName.tcp && capturePorts.contains(flow.replyPort)
                }
            }
            // Each kept flow's creation and deletion, by its app port; nothing of the others.
            let keptPorts = Set(expected.map(\.entry.original.sourcePort))
            #expect(Set(seen.map(\.port)) == keptPorts, "\(filter): \(seen)")
            for port in keptPorts {
                #expect(seen.contains { $0.port == port && $0.kind == .new } && seen.contains { $0.port == port && $0.kind == .destroy }, "\(filter) port \(port): \(seen)")
            }
        }
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

    /// Creates every flow, then deletes it, acknowledged one by one.
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
            let key = ReplyTupleKey(
                source: flow.redirectTo ?? flow.entry.reply.sourceEndpoint, destination: flow.entry.reply.destinationEndpoint)
            try acknowledged(ConntrackRequest.delete(replyOf: key, protocolNumber: flow.entry.protocolNumber, sequence: sequence))
        }
    }

    /// What arrived, by the app port of each event's original tuple, until a second
    /// passes without another (the creates and deletes above have all been acknowledged
    /// by then, and the kernel queues their events before it acknowledges).
    func events(on socket: NetlinkSocket) throws -> [(kind: ConntrackEventKind, port: UInt16)] {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var seen: [(kind: ConntrackEventKind, port: UInt16)] = []
        while try socket.waitReadable(milliseconds: 1000) {
            let count = try socket.receive(into: &buffer)
            var reader = NetlinkMessageReader(buffer, count: count)
            while let message = try reader.next() {
                guard let kind = ConntrackEventKind(message) else { continue }
                let entry = try ConntrackMessageDecoder.decode(buffer, message)
                seen.append((kind, entry.original.sourcePort))
            }
        }
        return seen
    }
}

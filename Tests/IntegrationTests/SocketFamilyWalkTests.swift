import KernelIO
import Live
import NetCore
import Netlink
import Sockets
import TestSupport
import Testing

/// Both address families in one sock_diag walk (the v1 request, which the kernel dumps
/// with AF_UNSPEC) give what the two per-family walks ss makes give: IPv4 sockets, IPv6
/// sockets, and IPv4 clients of a dual-stack listener as IPv6 sockets with mapped
/// addresses, with the kernel's port filter applied the same way. Needs root; with
/// CI=true it never skips.
@Suite("one sock_diag walk for both families", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class SocketFamilyWalkTests {
    let lab: TestNamespace
    var held: [StreamSocket] = []

    static let loopback6 = IPAddress.v6(high: 0, low: 1)

    init() throws {
        lab = try TestNamespace(tag: "families")
        held = try lab.namespace.run {
            let ipv4Only = try StreamSocket.listen(on: Endpoint(.v4(0x7F00_0001), 7101))
            let dualStack = try StreamSocket.listen(on: Endpoint(.v6(high: 0, low: 0), 7102), v6Only: false)
            let ipv6Only = try StreamSocket.listen(on: Endpoint(Self.loopback6, 7103), v6Only: true)
            var sockets = [ipv4Only, dualStack, ipv6Only]
            for (listener, target) in [
                (ipv4Only, Endpoint(.v4(0x7F00_0001), 7101)), (dualStack, Endpoint(Self.loopback6, 7102)),
                (dualStack, Endpoint(.v4(0x7F00_0001), 7102)), (ipv6Only, Endpoint(Self.loopback6, 7103)),
            ] {
                sockets.append(try StreamSocket.connect(to: target, timeoutMilliseconds: 2000))
                sockets.append(try listener.accept())
            }
            return sockets
        }
    }

    deinit {
        held.forEach { $0.close() }
        lab.destroy()
    }

    /// The sockets of one raw dump, and the message types its replies came as.
    func dump(_ scope: SockDiagScope, localPorts: [UInt16] = []) throws -> ([SocketKey], Set<UInt16>) {
        let transport = try lab.namespace.run { try NetlinkSocket(bus: .sockDiag) }
        let request = SockDiagCodec.dumpRequest(scope, states: .hashed, withInfo: true, sequence: 7, localPorts: localPorts)
        var keys: [SocketKey] = []
        var types: Set<UInt16> = []
        _ = try NetlinkDump.run(transport: transport, request: request, sequence: 7) { buffer, message in
            types.insert(message.type)
            if SockDiagCodec.carriesSocket(message) { keys.append(SocketKey(try SockDiagCodec.decode(buffer, message))) }
        }
        return (keys.sorted(), types)
    }

    @Test func oneWalkBringsWhatTheTwoPerFamilyWalksBring() throws {
        let (both, bothTypes) = try dump(.bothFamilies)
        let (ipv4, ipv4Types) = try dump(.family(.ipv4))
        let (ipv6, _) = try dump(.family(.ipv6))
        #expect(both == (ipv4 + ipv6).sorted())
        #expect(bothTypes.contains(18) && ipv4Types.contains(20), "replies come as TCPDIAG_GETSOCK and SOCK_DIAG_BY_FAMILY")
        // 3 listeners and 4 connections' two ends; the mapped client's accepted end is IPv6.
        #expect(both.count == 11, "\(both)")
        #expect(ipv4.count == 4 && ipv6.count == 7, "IPv4: \(ipv4); IPv6: \(ipv6)")
        let ss = try SSOutputParser.parse(Array(try lab.exec(["ss", "-tan"]).utf8), source: "ss -tan").lines.map { SocketKey($0.socket) }
        #expect(both == ss.sorted())
    }

    @Test func thePortFilterHoldsInTheOneWalk() throws {
        let (both, _) = try dump(.bothFamilies, localPorts: [7102])
        // The dual-stack listener and its two accepted ends (one a mapped IPv4 client).
        #expect(both.count == 3, "\(both)")
        #expect(both.allSatisfy { $0.local.port == 7102 })
    }

    @Test func theReaderBringsBothFamiliesOrTheOneAskedFor() throws {
        let reader = SocketReader(namespace: lab.namespace)
        let (all, source) = try reader.sockets()
        #expect(source == .sockDiag)
        #expect(Set(all.map(\.family)) == Set(AddressFamily.allCases))
        let (ipv6, _) = try reader.sockets(in: [.established], families: [.ipv6])
        #expect(ipv6.count == 5 && ipv6.allSatisfy { $0.family == .ipv6 && $0.state == .established }, "\(ipv6)")
        let (ipv4, _) = try reader.sockets(in: [.established], families: [.ipv4])
        #expect(ipv4.count == 3 && ipv4.allSatisfy { $0.family == .ipv4 }, "\(ipv4)")
    }
}

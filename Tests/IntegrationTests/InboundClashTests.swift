import Foundation
import KernelIO
import NetCore
import TestSupport
import Testing

/// Inbound REDIRECT funnels a pod's ports into 15006: a client in a veth peer namespace
/// connects from one source port to two of the pod's ports, the reply tuples clash on
/// the redirect port, and NAT moves the second flow's port. Real kernel, real sockets:
/// diagnose must find it from its lookups of the accepted connections.
@Suite("inbound clashes", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class InboundClashTests {
    let pod: TestNamespace
    let client: TestNamespace
    static let podAddress = IPAddress("10.77.0.5")!
    static let clientAddress = IPAddress("10.77.0.9")!

    init() throws {
        pod = try TestNamespace(tag: "inbound")
        client = try TestNamespace(tag: "inbound-client")
        try Shell.check(["ip", "link", "add", "ctd-pod0", "netns", pod.name, "type", "veth", "peer", "name", "ctd-cli0", "netns", client.name])
        try pod.exec(["ip", "addr", "add", "10.77.0.5/24", "dev", "ctd-pod0"])
        try pod.exec(["ip", "link", "set", "ctd-pod0", "up"])
        try client.exec(["ip", "addr", "add", "10.77.0.9/24", "dev", "ctd-cli0"])
        try client.exec(["ip", "link", "set", "ctd-cli0", "up"])
        // Istio's inbound capture, for two of the pod's ports.
        try pod.exec(["iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "-m", "multiport", "--dports", "8080,9090", "-j", "REDIRECT", "--to-ports", "15006"])
    }

    deinit {
        client.destroy()
        pod.destroy()
    }

    @Test func aClientPortUsedTowardTwoPodPortsIsMovedByNATAndFound() throws {
        let (outbound, inbound) = try pod.namespace.run {
            (try StreamSocket.listen(on: Endpoint(.loopbackV4, 15001)), try StreamSocket.listen(on: Endpoint(.v4(0), 15006)))
        }
        defer { [outbound, inbound].forEach { $0.close() } }
        let source = Endpoint(Self.clientAddress, 40000)
        var connected: [StreamSocket] = []
        var accepted: [StreamSocket] = []
        defer { (connected + accepted).forEach { $0.close() } }
        for port: UInt16 in [8080, 9090] {
            connected.append(try client.namespace.run { try StreamSocket.connect(to: Endpoint(Self.podAddress, port), from: source, timeoutMilliseconds: 3000) })
            accepted.append(try inbound.accept())
        }
        #expect(try connected.map { try $0.localEndpoint() } == [source, source], "both from 10.77.0.9:40000")
        // What the proxy's sockets show as the client: their peers, from sock_diag.
        let listing = try pod.exec(["ss", "-tnH", "state", "established", "( sport = :15006 )"])
        let seen = listing.split(separator: "\n").compactMap { $0.split(separator: " ").last.flatMap { $0.split(separator: ":").last }.flatMap { UInt16($0) } }
        let moved = try #require(seen.first { $0 != 40000 }, "the proxy accepted one connection from a port the client never used: \(listing)")

        let result = try Shell.run([Binary.ctdoctor, "diagnose", "--netns", pod.name, "--format", "json", "--fail-on", "never"])
        #expect(result.status == 0, "\(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let findings = document["findings"] as? [[String: Any]] ?? []
        let remapped = try #require(findings.first { $0["id"] as? String == "inbound-port-remapped" }, "\(findings.map { $0["id"] ?? "?" })")
        let evidence = remapped["evidence"] as? [String] ?? []
        #expect(evidence.contains { $0.hasPrefix("10.77.0.9:40000 -> :") && $0.contains("reply to port \(moved)") }, "\(evidence)")
        #expect(remapped["severity"] as? String == "warning")
    }
}

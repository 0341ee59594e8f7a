import Diagnosis
import Glibc
import KernelIO
import NetCore

/// The inbound side of the seed's failures, for real: a pod namespace whose PREROUTING
/// REDIRECTs ports 8080 and 9090 to a proxy listening on 15006 (held by this process,
/// outside it), and a client in a veth peer namespace.
///
/// - a leak: the client connects from 40000 to 8080, the proxy forwards an upstream FIN
///   (shutdown(SHUT_WR)), the client never closes, and conntrack forgets the flow;
/// - a clash NAT resolves: the client connects from 40010 to 8080 and to 9090 at once,
///   and the second flow's port is moved on the redirect port;
/// - a collision: the client connects from 40000 again, to 9090, which the funnel sends
///   onto the leaked socket (linkerd/linkerd2#15505, istio/istio#38982). Diagnosed while
///   the connect is in flight.
public final class InboundCollisionLab: @unchecked Sendable {
    public let pod: LabNamespace
    public let client: LabNamespace
    public let closeWaitSeconds: Int
    public static let podAddress = IPAddress.v4(0x0A4D_0005)  // 10.77.0.5
    public static let clientAddress = IPAddress.v4(0x0A4D_0009)  // 10.77.0.9
    public static let leakedPort: UInt16 = 40000
    public static let clashingPort: UInt16 = 40010
    var listeners: [StreamSocket] = []
    var held: [StreamSocket] = []
    public private(set) var movedPort: UInt16?
    /// The diagnosis taken after the leak and the clash, before the collision.
    public private(set) var beforeCollision: DiagnosisReport?
    let say: @Sendable (String) -> Void

    public init(name: String, clientName: String, closeWaitSeconds: Int = 2, say: @escaping @Sendable (String) -> Void) throws {
        self.closeWaitSeconds = closeWaitSeconds
        self.say = say
        pod = try LabNamespace(bareNamed: name)
        do {
            client = try LabNamespace(bareNamed: clientName)
        } catch {
            pod.remove()
            throw error
        }
        do {
            try LabNamespace.run(["ip", "link", "add", "ctd-pod0", "netns", name, "type", "veth", "peer", "name", "ctd-cli0", "netns", clientName])
            for command in [
                ["ip", "addr", "add", "10.77.0.5/24", "dev", "ctd-pod0"], ["ip", "link", "set", "ctd-pod0", "up"],
                LabNamespace.closeWaitCommand(closeWaitSeconds),
                ["iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "-m", "multiport", "--dports", "8080,9090",
                 "-j", "REDIRECT", "--to-ports", "15006"],
            ] {
                try pod.exec(command)
            }
            try client.exec(["ip", "addr", "add", "10.77.0.9/24", "dev", "ctd-cli0"])
            try client.exec(["ip", "link", "set", "ctd-cli0", "up"])
            listeners = try pod.namespace.run {
                [try StreamSocket.listen(on: Endpoint(.loopbackV4, 15001)), try StreamSocket.listen(on: Endpoint(.v4(0), 15006))]
            }
        } catch {
            tearDown()
            throw error
        }
        say("namespace \(name): pod 10.77.0.5, PREROUTING REDIRECT of ports 8080 and 9090 to a proxy on 15006 (this process), nf_conntrack_tcp_timeout_close_wait=\(closeWaitSeconds); client namespace \(clientName): 10.77.0.9 over a veth pair")
    }

    func connect(from port: UInt16, to podPort: UInt16, timeoutMilliseconds: Int = 3000) throws -> StreamSocket {
        try client.namespace.run {
            try StreamSocket.connect(
                to: Endpoint(Self.podAddress, podPort), from: Endpoint(Self.clientAddress, port), timeoutMilliseconds: timeoutMilliseconds)
        }
    }

    /// Builds the leak and the clash, then collides with the leak while `diagnose` runs.
    public func run(
        emulateOldKernel: Bool, timeoutSeconds: Int, diagnose: @escaping @Sendable () throws -> DiagnosisReport
    ) throws -> CollisionAttempt {
        let inbound = listeners[1]
        held.append(try connect(from: Self.leakedPort, to: 8080))
        let proxySide = try inbound.accept()
        held.append(proxySide)
        try proxySide.shutdownWrite()
        say("the client connected from \(Self.leakedPort) to 8080; the proxy forwarded its upstream's FIN; the client does not close, and waits \(closeWaitSeconds + 1) s…")
        usleep(UInt32((closeWaitSeconds + 1) * 1_000_000 + 500_000))
        say("…conntrack forgot the half-closed flow: the proxy's socket for 10.77.0.9:\(Self.leakedPort) is leaked in FIN_WAIT2")

        for podPort: UInt16 in [8080, 9090] {
            held.append(try connect(from: Self.clashingPort, to: podPort))
            let accepted = try inbound.accept()
            held.append(accepted)
            let peer = try accepted.peerEndpoint().port
            if peer != Self.clashingPort { movedPort = peer }
        }
        say("the client connected from \(Self.clashingPort) to 8080 and to 9090: the reply tuples clashed on 15006, and NAT moved the second to port \(movedPort.map(String.init) ?? "?") (what the proxy sees)")

        beforeCollision = try? diagnose()
        if emulateOldKernel {
            try pod.exec(["iptables", "-w", "-t", "raw", "-A", "PREROUTING", "-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "DROP"])
            say("emulating a kernel without the v6.2 fix: the client's RSTs are dropped before conntrack (raw table)")
        }
        say("the client connects from \(Self.leakedPort) again, to 9090: the funnel sends it onto the leaked socket…")
        let (result, during) = connectWhileDiagnosing(label: "ctdoctor.lab.inbound-collision", diagnose: diagnose) { [self] in
            try connect(from: Self.leakedPort, to: 9090, timeoutMilliseconds: timeoutSeconds * 1000)
        }
        say(result.connected
            ? "…connected after \(format1(result.seconds)): the client's RST reset the leaked socket and the SYN that followed got through"
            : "…connect() failed after \(format1(result.seconds)) (\(result.error ?? "")): every SYN met the leaked socket's challenge ACK")
        return CollisionAttempt(
            port: Self.leakedPort, connected: result.connected, seconds: result.seconds, error: result.error, counterDeltas: [:],
            duringAttempt: during)
    }

    /// What the diagnoses must say: before the collision, the inbound leak and the moved
    /// port; during it, the connect landing on the leak, unless the kernel already
    /// recovered (its RST reset the leaked socket) by the time the diagnosis looked.
    public func check(during attempt: CollisionAttempt) -> [String] {
        guard let before = beforeCollision else { return ["no diagnosis was taken before the collision"] }
        var problems: [String] = []
        let leak = before.leaks.first { $0.socket.remote.port == Self.leakedPort && $0.socket.local.port == 15006 }
        if leak?.classification != .leaked || leak?.direction != .inbound {
            problems.append("expected the proxy's 15006 socket for 10.77.0.9:\(Self.leakedPort) leaked (inbound), got \(leak.map { "\($0.classification.rawValue) (\($0.direction.rawValue))" } ?? "not listed")")
        }
        let remap = before.findings.first { $0.kind == .inboundPortRemapped }
        if let moved = movedPort, remap?.evidence.contains(where: { $0.hasPrefix("10.77.0.9:\(Self.clashingPort) ") && $0.contains("reply to port \(moved)") }) != true {
            problems.append("the clash NAT resolved (\(Self.clashingPort) moved to \(moved)) was not reported: \(remap?.evidence ?? [])")
        }
        if movedPort == nil { problems.append("NAT did not move the second flow from \(Self.clashingPort): no clash to find") }
        if !attempt.connected {
            let during = attempt.duringAttempt
            let colliding = during?.leaks.first { $0.socket.remote.port == Self.leakedPort }?.collidingEntry
            if colliding == nil || during?.findings.contains(where: { $0.kind == .liveCollision }) != true {
                problems.append("the connect from \(Self.leakedPort) to 9090 was not seen landing on the leaked socket")
            }
        }
        return problems
    }

    public func tearDown() {
        (held + listeners).forEach { $0.close() }
        held.removeAll()
        listeners.removeAll()
        client.remove()
        pod.remove()
    }

    deinit { tearDown() }
}

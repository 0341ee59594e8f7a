import Conntrack
import Diagnosis
import Dispatch
import Glibc
import KernelIO
import Live
import NetCore
import Netlink
import Sockets

/// One connection the lab made, and what a correct diagnosis says about it.
public struct LabFlow: Sendable, Hashable {
    public var name: String
    /// The app's ephemeral port (the proxy socket's peer port).
    public var appPort: UInt16
    /// The class diagnosis must give the proxy's socket; nil when it must not list it.
    public var expected: LeakClass?
    /// The leak a connect collided with: on a kernel that recovers, the collision resets
    /// it, so it is no longer there to classify.
    public var collidedWith = false
}

/// The half-close lab: real connections through a sidecar-like proxy, in every state
/// that diagnosis must tell apart.
///
/// - two ESTABLISHED connections passing data (not suspects);
/// - a half-close the app answers promptly (closes properly: not a suspect);
/// - a half-close whose conntrack entry the lab extends to 7200 s (what raising
///   nf_conntrack_tcp_timeout_close_wait does): healthy;
/// - a half-close the app answers only after conntrack forgot the flow: leaked;
/// - a fresh half-close the app has not answered yet: at risk.
public final class HalfCloseLab: @unchecked Sendable {
    public let lab: LabNamespace
    public let closeWaitSeconds: Int
    let proxy: LabProxy
    let upstream: LabUpstream
    var app: [StreamSocket] = []
    public private(set) var flows: [LabFlow] = []
    /// Istio ambient's shape: besides the outbound 15001, listeners on 15006 and 15008
    /// (HBONE), all held by a process of another namespace (this one), as ztunnel holds them.
    public let ambient: Bool
    var ambientListeners: [StreamSocket] = []
    let say: @Sendable (String) -> Void

    /// - Parameter say: receives a line per step, for the narrative.
    public init(name: String, closeWaitSeconds: Int = 3, ambient: Bool = false, say: @escaping @Sendable (String) -> Void) throws {
        self.closeWaitSeconds = closeWaitSeconds
        self.ambient = ambient
        self.say = say
        lab = try LabNamespace(name: name, closeWaitSeconds: closeWaitSeconds)
        do {
            proxy = try LabProxy(namespace: lab.namespace)
            upstream = try LabUpstream(namespace: lab.namespace)
            if ambient {
                ambientListeners = try lab.namespace.run {
                    try [15006, 15008].map { try StreamSocket.listen(on: Endpoint(.v4(0), $0)) }
                }
            }
        } catch {
            lab.remove()
            throw error
        }
        proxy.start()
        upstream.start()
        say("namespace \(name): app 10.66.0.5, service 10.96.0.10:80, iptables REDIRECT to a proxy on 127.0.0.1:15001, nf_conntrack_tcp_timeout_close_wait=\(closeWaitSeconds)")
        if ambient {
            say("ambient: listeners on 15006 and 15008 too, all held by this process (pid \(getpid())), which lives outside the namespace as ztunnel does")
        }
    }

    /// An app connection to the service, through the proxy.
    func connect(timeoutMilliseconds: Int? = nil, port: UInt16 = 0) throws -> StreamSocket {
        try lab.namespace.run {
            try StreamSocket.connect(
                to: Endpoint(LabNamespace.serviceAddress, 80), from: Endpoint(LabNamespace.podAddress, port),
                timeoutMilliseconds: timeoutMilliseconds)
        }
    }

    /// A connection whose upstream answers and closes first: the proxy forwards the FIN,
    /// so the app's socket reads EOF and the proxy's sits in FIN_WAIT2.
    func halfClosedByUpstream() throws -> StreamSocket {
        let socket = try connect()
        try socket.send(Array("CLOSE\n".utf8))
        var received: [UInt8] = []
        while true {
            let bytes = try socket.receive()
            if bytes.isEmpty { break }
            received += bytes
        }
        guard received == Array("bye\n".utf8) else {
            throw LabNamespace.SetupFailed(command: "half-close", output: "unexpected answer \(received)")
        }
        return socket
    }

    func port(_ socket: StreamSocket) throws -> UInt16 { try socket.localEndpoint().port }

    /// nf_conntrack_tcp_timeout_close_wait's default.
    static let defaultCloseWaitSeconds = 60

    public func build() throws {
        // An entry's CLOSE_WAIT timer comes from close_wait at each packet in that state.
        // Under the short value that makes the late flow leak in seconds, a stall of this
        // process (a busy machine) could age the other half-closes into leaks before they
        // are closed, extended or read. So the flows are made under the kernel's default,
        // the late one's entry alone is cut to the short value by hand, and the short
        // value returns once no flow is left to half-close.
        let riskSeconds = max(closeWaitSeconds, Self.defaultCloseWaitSeconds)
        try lab.setCloseWait(riskSeconds)
        for index in 1...2 {
            let socket = try connect()
            try socket.send(Array("hello \(index)\n".utf8))
            _ = try socket.receive()
            app.append(socket)
            flows.append(LabFlow(name: "established \(index)", appPort: try port(socket), expected: nil))
        }
        say("2 established connections pass data through the proxy")

        let prompt = try halfClosedByUpstream()
        flows.append(LabFlow(name: "half-close answered promptly", appPort: try port(prompt), expected: nil))
        prompt.close()
        say("upstream closed first; the app closed at once: a clean close")

        let extended = try halfClosedByUpstream()
        app.append(extended)
        let extendedPort = try port(extended)
        try awaitCloseWait(appPort: extendedPort)
        try setEntryTimeout(appPort: extendedPort, seconds: 7200)
        flows.append(LabFlow(name: "half-close, conntrack entry extended", appPort: extendedPort, expected: .healthy))
        say("upstream closed first; its conntrack entry was extended to 7200 s (as raising close_wait would): healthy")

        let late = try halfClosedByUpstream()
        app.append(late)
        let latePort = try port(late)
        flows.append(LabFlow(name: "half-close answered late", appPort: latePort, expected: .leaked))
        try awaitCloseWait(appPort: latePort)
        try setEntryTimeout(appPort: latePort, seconds: UInt32(closeWaitSeconds))
        say("upstream closed first; the app waits \(closeWaitSeconds + 1) s before closing…")
        usleep(UInt32((closeWaitSeconds + 1) * 1_000_000 + 500_000))
        late.close()
        say("…conntrack had forgotten the flow, so the app's FIN went nowhere: the proxy's socket for port \(latePort) is leaked")

        let fresh = try halfClosedByUpstream()
        app.append(fresh)
        let freshPort = try port(fresh)
        try awaitCloseWait(appPort: freshPort)
        try lab.setCloseWait(closeWaitSeconds)
        flows.append(LabFlow(name: "half-close not answered yet", appPort: freshPort, expected: .atRisk))
        say("upstream closed first on another connection; the app has not closed yet: at risk for \(riskSeconds) s while the proxy keeps the socket an hour")
        // The idle-time tests (PlainPodTests) count on this moment between the fresh
        // flow's last packet and build()'s return.
        usleep(300_000)
    }

    func replyKey(appPort: UInt16) -> ReplyTupleKey {
        ReplyTupleKey(source: Endpoint(.loopbackV4, LabNamespace.outboundPort), destination: Endpoint(LabNamespace.podAddress, appPort))
    }

    /// Waits until the app's ACK of the proxy's FIN has moved the flow's entry to
    /// CLOSE_WAIT, which sets its timer from the close_wait in force at that moment.
    func awaitCloseWait(appPort: UInt16) throws {
        let key = replyKey(appPort: appPort)
        let lookup = ConntrackReplyLookup(namespace: lab.namespace)
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            guard let entry = try lookup.entries(for: [key])[key] else {
                throw LabNamespace.SetupFailed(command: "half-close", output: "conntrack has no entry for the flow from port \(appPort)")
            }
            if entry.tcpState == .closeWait { return }
            guard ContinuousClock.now < deadline else {
                throw LabNamespace.SetupFailed(command: "half-close", output: "the flow from port \(appPort) never reached CLOSE_WAIT in conntrack")
            }
            usleep(10_000)
        }
    }

    /// Sets one CLOSE_WAIT flow's conntrack timeout by its reply tuple. Only after
    /// `awaitCloseWait`: the ACK that moves it there resets the timeout, which would
    /// undo an earlier update.
    func setEntryTimeout(appPort: UInt16, seconds: UInt32) throws {
        let key = replyKey(appPort: appPort)
        let socket = try lab.namespace.run { try NetlinkSocket(bus: .netfilter) }
        try socket.send(ConntrackRequest.setTimeout(replyOf: key, seconds: seconds, sequence: 1))
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = try socket.receive(into: &buffer)
        var reader = NetlinkMessageReader(buffer, count: count)
        while let message = try reader.next() {
            if message.type == NetlinkConstant.error { try NetlinkDump.checkErrorMessage(buffer, message) }
        }
    }

    /// Compares a diagnosis with what the lab built: every flow with an expected class
    /// got exactly that class, and nothing else was listed.
    /// What the diagnosis got wrong about the flows the lab made.
    /// - Parameter collisionRecovered: the colliding connect got through, so the leak it
    ///   landed on was reset and is not expected any more.
    public func check(_ report: DiagnosisReport, collisionRecovered: Bool = false) -> [String] {
        var problems: [String] = []
        let listed = Dictionary(report.leaks.map { ($0.socket.remote.port, $0) }, uniquingKeysWith: { first, _ in first })
        for flow in flows where !(collisionRecovered && flow.collidedWith) {
            let got = listed[flow.appPort]?.classification
            if got != flow.expected {
                problems.append("\(flow.name) (port \(flow.appPort)): expected \(flow.expected?.rawValue ?? "not listed"), got \(got?.rawValue ?? "not listed")")
            }
        }
        let known = Set(flows.map(\.appPort))
        for leak in report.leaks where !known.contains(leak.socket.remote.port) {
            problems.append("listed a socket the lab did not make: \(leak.socket.local) <-> \(leak.socket.remote)")
        }
        if ambient {
            if report.sidecar?.profile.mesh != .ambient {
                problems.append("expected the mesh detected as ambient, got \(report.sidecar?.profile.description ?? "none")")
            }
            if report.sidecar?.proxyNamespace == nil {
                problems.append("the proxy's own namespace was not told apart from the pod's: \(report.sidecar?.evidence ?? "no sidecar")")
            }
        }
        return problems
    }

    /// Sends a line over each of the lab's ESTABLISHED connections and reads its echo
    /// back: whether the connections a reap must leave alone still pass data.
    public func establishedConnectionsPassData() throws -> Bool {
        for (index, socket) in app.prefix(2).enumerated() {
            let line = Array("still there \(index)\n".utf8)
            try socket.send(line)
            guard try socket.waitReadable(milliseconds: 10_000), try socket.receive() == line else { return false }
        }
        return true
    }

    public func tearDown() {
        ambientListeners.forEach { $0.close() }
        ambientListeners.removeAll()
        proxy.stop()
        upstream.stop()
        app.forEach { $0.close() }
        app.removeAll()
        lab.remove()
    }

    deinit { tearDown() }
}

/// What happened when the app connected from a leaked socket's port.
public struct CollisionAttempt: Sendable {
    public var port: UInt16
    public var connected: Bool
    public var seconds: Double
    public var error: String?
    /// nstat counter increases during the attempt.
    public var counterDeltas: [String: UInt64]
    /// The diagnosis taken while the connect was in flight.
    public var duringAttempt: DiagnosisReport?
}

extension HalfCloseLab {
    /// Makes a leak, then connects from its port the way the kernel would if it picked
    /// that port: the SYN is REDIRECTed onto the leaked FIN_WAIT2 socket.
    ///
    /// - Parameter emulateOldKernel: drop the app's RST before conntrack sees it (raw
    ///   table), as a kernel without the v6.2 fix and with ignore_invalid_rst=0 would
    ///   judge it INVALID and never NAT it to the leaked socket.
    /// - Parameter diagnose: called while the connect is in flight.
    public func collide(
        emulateOldKernel: Bool, timeoutSeconds: Int, diagnose: @escaping @Sendable () throws -> DiagnosisReport
    ) throws -> CollisionAttempt {
        let late = try halfClosedByUpstream()
        let port = try port(late)
        say("upstream closed first; the app waits \(closeWaitSeconds + 1) s before closing…")
        usleep(UInt32((closeWaitSeconds + 1) * 1_000_000 + 500_000))
        late.close()
        usleep(200_000)
        say("…leaked: the proxy's socket for port \(port) stays in FIN_WAIT2")
        flows.append(LabFlow(name: "leaked, then collided with", appPort: port, expected: .leaked, collidedWith: true))
        if emulateOldKernel {
            try lab.exec([
                "iptables", "-w", "-t", "raw", "-I", "OUTPUT", "-p", "tcp", "-s", "10.66.0.5", "--sport", "\(port)",
                "--tcp-flags", "RST", "RST", "-j", "DROP",
            ])
            say("emulating a kernel without the v6.2 fix: the app's RST from port \(port) is dropped before conntrack (raw table)")
        }
        let before = try counters()
        say("the app connects again from port \(port), as if connect() had picked it…")
        let (result, during) = connectWhileDiagnosing(label: "ctdoctor.lab.collision", diagnose: diagnose) { [self] in
            try connect(timeoutMilliseconds: timeoutSeconds * 1000, port: port)
        }
        let after = try counters()
        var deltas: [String: UInt64] = [:]
        for name in CollisionPrediction.counterNames {
            deltas[name] = (after[name] ?? 0) - min(after[name] ?? 0, before[name] ?? 0)
        }
        say(result.connected
            ? "…connected after \(format1(result.seconds)): the SYN met a challenge ACK, the app's RST reset the leaked socket (so the collision also ended the leak) and the retransmitted SYN got through"
            : "…connect() failed after \(format1(result.seconds)) (\(result.error ?? "")): every SYN met the leaked socket's challenge ACK and the RST never reached it")
        if emulateOldKernel {
            say("note: the diagnosis below judges this machine's real kernel; the failure above is the emulated old one's")
        }
        return CollisionAttempt(
            port: port, connected: result.connected, seconds: result.seconds, error: result.error,
            counterDeltas: deltas, duringAttempt: during)
    }

    func counters() throws -> [String: UInt64] {
        try lab.namespace.run {
            try ProcFS().tcpCounters()
        }
    }
}

/// Connects on a thread of its own and diagnoses 300 ms into the attempt, while the SYN
/// is in flight: how both collision labs see a collision as it happens.
func connectWhileDiagnosing(
    label: String, diagnose: () throws -> DiagnosisReport, connect: @escaping @Sendable () throws -> StreamSocket
) -> (result: (connected: Bool, seconds: Double, error: String?), during: DiagnosisReport?) {
    let outcome = Outcome()
    let done = DispatchSemaphore(value: 0)
    startThread(label) {
        let start = ContinuousClock.now
        do {
            let socket = try connect()
            outcome.record(connected: true, error: nil, start: start)
            socket.close()
        } catch {
            outcome.record(connected: false, error: "\(error)", start: start)
        }
        done.signal()
    }
    usleep(300_000)
    let during = try? diagnose()
    done.wait()
    return (outcome.result, during)
}

/// The connect thread's result, handed to the lab's thread.
final class Outcome: @unchecked Sendable {
    private var value = (connected: false, seconds: 0.0, error: String?.none)
    private let lock = DispatchSemaphore(value: 1)

    func record(connected: Bool, error: String?, start: ContinuousClock.Instant) {
        let elapsed = (ContinuousClock.now - start).inSeconds
        lock.wait()
        value = (connected, elapsed, error)
        lock.signal()
    }

    var result: (connected: Bool, seconds: Double, error: String?) {
        lock.wait()
        defer { lock.signal() }
        return value
    }
}

/// A duration in seconds, in ms below one second.
func format1(_ value: Double) -> String {
    value < 1 ? "\(Int(value * 1000)) ms" : "\(Double(Int(value * 10)) / 10) s"
}

import Diagnosis
import Dispatch
import Glibc
import KernelIO
import NetCore

/// One app connection of the server-first lab and what happened to it.
public struct ServerFirstFlow: Sendable {
    public var name: String
    /// The port the app dialled (before REDIRECT).
    public var servicePort: UInt16
    /// The app's ephemeral port.
    public var appPort: UInt16
    /// Whether diagnosis must report this connection stalled.
    public var expectStalled: Bool
    /// Seconds until the server's first bytes reached the app; nil if they never did
    /// within the lab's wait.
    public var firstBytesAfter: Double?
}

/// The server-first lab: an SMTP-like server that greets first, behind a sidecar-like
/// proxy that sniffs the protocol by waiting for the client's first bytes.
///
/// - port 25, not declared TCP: the proxy waits for the client, the client for the
///   greeting. Istio/ASM: a deadlock; Linkerd: the greeting arrives after its 10 s
///   detection timeout.
/// - port 2525, declared TCP (opaque): the proxy connects at once; the greeting
///   arrives in milliseconds.
/// - port 80, a client-first request: bytes flow; never a stall.
public final class ServerFirstLab: @unchecked Sendable {
    public enum Mesh: String, Sendable, CaseIterable {
        case istio, linkerd

        public var profile: SidecarProfile { self == .istio ? .istio : .linkerd }
        /// How long the mesh's protocol detection waits for the client: Istio (since
        /// 1.9, and ASM) forever on a port it must sniff; Linkerd 10 s.
        var detectionTimeout: Double? { self == .istio ? nil : 10 }
    }

    public static let smtpServer = IPAddress.v4(0x0A60_0019)  // 10.96.0.25
    public static let stalledPort: UInt16 = 25
    public static let declaredPort: UInt16 = 2525
    public static let greeting = "220 lab.ctdoctor ESMTP ready\r\n"

    public let lab: LabNamespace
    public let mesh: Mesh
    let proxy: LabProxy
    let upstreams: [LabUpstream]
    var app: [StreamSocket] = []
    public private(set) var flows: [ServerFirstFlow] = []
    let say: @Sendable (String) -> Void

    public init(name: String, mesh: Mesh, say: @escaping @Sendable (String) -> Void) throws {
        self.mesh = mesh
        self.say = say
        lab = try LabNamespace(name: name, closeWaitSeconds: 60, proxyPort: mesh.profile.outboundPort)
        do {
            proxy = try LabProxy(
                namespace: lab.namespace, port: mesh.profile.outboundPort,
                detection: .waitForClient(timeoutSeconds: mesh.detectionTimeout, opaque: [Self.declaredPort]))
            upstreams = try [
                LabUpstream(namespace: lab.namespace),
                LabUpstream(namespace: lab.namespace, on: Endpoint(Self.smtpServer, Self.stalledPort), greeting: Self.greeting),
                LabUpstream(namespace: lab.namespace, on: Endpoint(Self.smtpServer, Self.declaredPort), greeting: Self.greeting),
            ]
        } catch {
            lab.remove()
            throw error
        }
        proxy.start()
        upstreams.forEach { $0.start() }
        let detection = mesh == .istio
            ? "waits for the client's first bytes with no timeout (Istio, ASM)"
            : "waits up to 10 s for the client's first bytes (Linkerd)"
        say("namespace \(name): app 10.66.0.5; an SMTP server at \(Self.smtpServer) greets first on \(Self.stalledPort) and \(Self.declaredPort); iptables REDIRECTs to a proxy on 127.0.0.1:\(mesh.profile.outboundPort) that \(detection), except on \(Self.declaredPort), declared TCP")
    }

    func connect(_ destination: Endpoint) throws -> StreamSocket {
        try lab.namespace.run {
            try StreamSocket.connect(to: destination, from: Endpoint(LabNamespace.podAddress, 0), timeoutMilliseconds: 5000)
        }
    }

    /// Waits for the server's first bytes on `socket`, up to `seconds`; the time they
    /// took from `start`, or nil.
    func firstBytes(_ socket: StreamSocket, since start: ContinuousClock.Instant, within seconds: Double) -> Double? {
        let deadline = start + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            let milliseconds = max(1, Int32((deadline - ContinuousClock.now).inSeconds * 1000))
            guard (try? socket.waitReadable(milliseconds: min(milliseconds, 200))) == true else { continue }
            guard let bytes = try? socket.receive(), !bytes.isEmpty else { return nil }
            return (ContinuousClock.now - start).inSeconds
        }
        return nil
    }

    /// Opens the three connections and lets the stalled one age past `stallAfterSeconds`.
    public func build(stallAfterSeconds: Double) throws {
        let client = try connect(Endpoint(LabNamespace.serviceAddress, 80))
        let clientStart = ContinuousClock.now
        try client.send(Array("HELLO\n".utf8))
        let echoed = firstBytes(client, since: clientStart, within: 5)
        app.append(client)
        flows.append(ServerFirstFlow(name: "client-first request to port 80", servicePort: 80, appPort: try client.localEndpoint().port, expectStalled: false, firstBytesAfter: echoed))
        say("port 80: the client spoke first; the answer came after \(echoed.map(format1) ?? "never")")

        let declared = try connect(Endpoint(Self.smtpServer, Self.declaredPort))
        let declaredGreeting = firstBytes(declared, since: .now, within: 5)
        app.append(declared)
        flows.append(ServerFirstFlow(name: "SMTP on port \(Self.declaredPort), declared TCP", servicePort: Self.declaredPort, appPort: try declared.localEndpoint().port, expectStalled: false, firstBytesAfter: declaredGreeting))
        say("port \(Self.declaredPort) (declared TCP): the greeting came after \(declaredGreeting.map(format1) ?? "never")")

        let stalled = try connect(Endpoint(Self.smtpServer, Self.stalledPort))
        stalledStart = .now
        app.append(stalled)
        flows.append(ServerFirstFlow(name: "SMTP on port \(Self.stalledPort), sniffed", servicePort: Self.stalledPort, appPort: try stalled.localEndpoint().port, expectStalled: true, firstBytesAfter: nil))
        let wait = stallAfterSeconds + 0.5
        say("port \(Self.stalledPort) (sniffed): the client waits for the greeting, the proxy for the client; waiting \(format1(wait))…")
        usleep(UInt32(wait * 1_000_000))
        if let early = firstBytes(stalled, since: stalledStart!, within: 0.01) {
            flows[flows.count - 1].firstBytesAfter = early
        }
    }

    private var stalledStart: ContinuousClock.Instant?

    /// After the diagnosis: waits for the stalled connection's greeting until past
    /// Linkerd's 10 s detection timeout, to show how the stall ends; what differs from
    /// the mesh's behaviour (Istio: no greeting; Linkerd: a greeting after 10 s).
    public func awaitStalledGreeting() -> [String] {
        guard let start = stalledStart, let index = flows.firstIndex(where: \.expectStalled) else { return [] }
        // Past 10 s with room for a busy machine: a greeting that comes 10 s late is
        // Linkerd's timeout, and one that never comes by 15 s is a deadlock.
        let wait = 15.0
        if flows[index].firstBytesAfter == nil {
            flows[index].firstBytesAfter = firstBytes(app[index], since: start, within: wait)
        }
        let after = flows[index].firstBytesAfter
        say(after.map { "port \(Self.stalledPort): the greeting arrived after \(format1($0)), once the proxy's detection gave up and connected upstream" }
            ?? "port \(Self.stalledPort): no greeting after \(format1(wait)): deadlocked until the client gives up")
        switch (mesh, after) {
        case (.linkerd, nil): return ["Linkerd-style detection should have let the greeting through after 10 s"]
        case (.linkerd, let after?) where after < 9.5: return ["the greeting arrived after \(format1(after)), before Linkerd's 10 s detection timeout"]
        case (.istio, let after?): return ["Istio-style detection should deadlock, but the greeting arrived after \(format1(after))"]
        default: return []
        }
    }

    /// Compares a diagnosis with what the lab built: the sniffed SMTP connection is
    /// reported stalled on a server-first port; nothing else is.
    public func check(_ report: DiagnosisReport) -> [String] {
        var problems: [String] = []
        var stalledPorts: [UInt16: StallGroup] = [:]
        for group in report.stalls {
            for connection in group.connections { stalledPorts[connection.socket.remote.port] = group }
        }
        for flow in flows {
            let group = stalledPorts[flow.appPort]
            if flow.expectStalled {
                guard let group else {
                    problems.append("\(flow.name) (app port \(flow.appPort)): expected stalled, not listed")
                    continue
                }
                if group.port != flow.servicePort {
                    problems.append("\(flow.name): stalled, but on port \(group.port.map(String.init) ?? "unknown") instead of \(flow.servicePort)")
                }
                if group.application?.isServerFirst != true {
                    problems.append("\(flow.name): stalled, but not recognised as a server-first protocol")
                }
            } else if group != nil {
                problems.append("\(flow.name) (app port \(flow.appPort)): listed as stalled")
            }
        }
        if flows.contains(where: \.expectStalled), !report.findings.contains(where: { $0.kind == .stalledServerFirst }) {
            problems.append("no stalled-server-first finding")
        }
        let known = Set(flows.map(\.appPort))
        for group in report.stalls {
            for connection in group.connections where !known.contains(connection.socket.remote.port) {
                problems.append("listed a stalled connection the lab did not make: \(connection.socket.local) <-> \(connection.socket.remote)")
            }
        }
        return problems
    }

    public func tearDown() {
        proxy.stop()
        upstreams.forEach { $0.stop() }
        app.forEach { $0.close() }
        app.removeAll()
        lab.remove()
    }

    deinit { tearDown() }
}

import Foundation
import KernelIO
import NetCore

/// A sidecar-like namespace: iptables REDIRECTs the app's connections to :8080 onto a
/// "proxy" listening on 15001, and real connections sit in the states under test.
///
/// - ESTABLISHED: app → :8080, accepted by the proxy.
/// - Half-closed: app → :8080, the proxy side called shutdown(SHUT_WR): the proxy's
///   socket is FIN_WAIT2 (local port 15001), the app's CLOSE_WAIT, conntrack CLOSE_WAIT.
/// - TIME_WAIT: app → :9000 (plain, not redirected), the app closed first.
public final class RedirectScenario: @unchecked Sendable {
    public let lab: TestNamespace
    public let proxyPort: UInt16 = 15001
    public let servicePort: UInt16 = 8080
    public let plainPort: UInt16 = 9000
    /// The app's ephemeral ports, by what was done to the connection.
    public private(set) var establishedPort: UInt16 = 0
    public private(set) var halfClosedPort: UInt16 = 0
    public private(set) var timeWaitPort: UInt16 = 0
    private var held: [StreamSocket] = []

    public init(tag: String, accounting: Bool = false) throws {
        lab = try TestNamespace(tag: tag)
        if accounting { try lab.exec(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_acct=1"]) }
        try lab.exec([
            "iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", "\(servicePort)",
            "-j", "REDIRECT", "--to-ports", "\(proxyPort)",
        ])
        try lab.namespace.run { try self.openConnections() }
        // Let the FIN/ACK exchanges of the closes finish on loopback.
        try waitUntil { try self.socketStates().contains("TIME-WAIT") && self.socketStates().contains("FIN-WAIT-2") }
    }

    private func openConnections() throws {
        let proxy = try StreamSocket.listen(on: Endpoint(.loopbackV4, proxyPort))
        let plain = try StreamSocket.listen(on: Endpoint(.loopbackV4, plainPort))
        held += [proxy, plain]

        let app = try StreamSocket.connect(to: Endpoint(.loopbackV4, servicePort))
        let accepted = try proxy.accept()
        try app.send(Array("ping".utf8))
        _ = try accepted.receive(maximum: 4)
        try accepted.send(Array("pong!".utf8))
        _ = try app.receive(maximum: 5)
        establishedPort = try app.localEndpoint().port
        held += [app, accepted]

        let halfApp = try StreamSocket.connect(to: Endpoint(.loopbackV4, servicePort))
        let halfProxy = try proxy.accept()
        try halfProxy.shutdownWrite()
        halfClosedPort = try halfApp.localEndpoint().port
        held += [halfApp, halfProxy]

        let shortApp = try StreamSocket.connect(to: Endpoint(.loopbackV4, plainPort))
        let shortServer = try plain.accept()
        timeWaitPort = try shortApp.localEndpoint().port
        shortApp.close()
        _ = try shortServer.receive(maximum: 1)
        shortServer.close()
    }

    private func socketStates() throws -> String { try lab.exec(["ss", "-tanH"]) }

    /// Closes every socket the scenario holds, then the namespace.
    public func tearDown() {
        held.forEach { $0.close() }
        held.removeAll()
        lab.destroy()
    }

    deinit { tearDown() }
}

/// Polls `condition` every 20 ms for up to `seconds`; throws if it never holds.
public func waitUntil(seconds: Double = 5, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return }
        usleep(20_000)
    }
    struct TimedOut: Error, CustomStringConvertible { var description: String { "condition not met in time" } }
    throw TimedOut()
}

/// The built ctdoctor binary, next to the test bundle.
public enum Binary {
    public static var ctdoctor: String {
        let exe = (try? ProcFS().readLink("/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("ctdoctor").path
    }

    /// The benchmark's tools (fill-conntrack, churn), built beside ctdoctor.
    public static var bench: String {
        URL(fileURLWithPath: ctdoctor).deletingLastPathComponent().appendingPathComponent("ctdoctor-bench").path
    }
}

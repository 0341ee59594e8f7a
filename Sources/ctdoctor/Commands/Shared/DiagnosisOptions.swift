import ArgumentParser
import Diagnosis

/// Options shared by diagnose, leaks and collisions.
struct DiagnosisArguments: ParsableArguments {
    @Option(help: ArgumentHelp("The sidecar: istio, asm, ambient (ztunnel), linkerd, or ports:OUT,IN. Default: detected from the listening sockets and their process.", valueName: "sidecar"))
    var sidecar: SidecarChoice?

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("The proxy's TCP idle timeout (1h, 90s, 0 for disabled). Default: ISTIO_META_IDLE_TIMEOUT from the proxy's environment, else Envoy's 1h.", valueName: "duration"))
    var idleTimeout: String?

    @Option(name: .customLong("connect-rate"), help: ArgumentHelp("Captured connects per second, for the collision model. Default: estimated from Tcp ActiveOpens over the proxy's uptime.", valueName: "per-second"))
    var connectRate: Double?

    @Option(name: .customLong("stall-after"), help: ArgumentHelp("An accepted connection silent both ways this long is stalled (5s, 30s…). Default: 5s (2s in the server-first lab).", valueName: "duration"))
    var stallAfter: String?

    @Option(name: .customLong("server-first"), help: ArgumentHelp("Also treat this port as serving a server-first protocol, optionally named; repeat for several.", valueName: "port[/name]"))
    var serverFirst: [ServerFirstPort] = []

    @Option(name: .customLong("fail-on"), help: ArgumentHelp("Exit 1 when a finding is at least this severe: info, warning, error or never.", valueName: "severity"))
    var failOn: FailThreshold = .warning

    static let maximumConnectRate = 1e9

    func options() throws -> DiagnosisOptions {
        var options = DiagnosisOptions()
        options.sidecar = sidecar?.profile
        if let idleTimeout {
            guard let seconds = durationSeconds(idleTimeout), seconds >= 0 else {
                throw ValidationError("--idle-timeout takes a duration such as 1h, 90s or 0, not '\(idleTimeout)'")
            }
            options.idleTimeoutSeconds = seconds
        }
        if let connectRate {
            // A billion connects a second is past what any node's TCP stack does; the bound
            // keeps the model's arithmetic finite.
            guard connectRate >= 0, connectRate <= Self.maximumConnectRate else {
                throw ValidationError("--connect-rate takes connects per second from 0 to 1e9, not \(connectRate)")
            }
            options.connectRate = connectRate
        }
        if let stallAfter {
            guard let stall = durationSeconds(stallAfter), stall > 0 else {
                throw ValidationError("--stall-after takes a duration such as 5s or 30s, not '\(stallAfter)'")
            }
            options.stallAfterSeconds = stall
        }
        options.catalog.additions.merge(ServerFirstPort.additions(serverFirst)) { _, given in given }
        return options
    }

    func validate() throws {
        _ = try options()
    }
}

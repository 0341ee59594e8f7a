import ArgumentParser
import Diagnosis

/// Options shared by diagnose, leaks and collisions.
struct DiagnosisArguments: ParsableArguments {
    @Option(help: ArgumentHelp("The sidecar: istio, asm, linkerd, or ports:OUT,IN. Default: detected from the listening sockets and their process.", valueName: "sidecar"))
    var sidecar: String?

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("The proxy's TCP idle timeout (1h, 90s, 0 for disabled). Default: ISTIO_META_IDLE_TIMEOUT from the proxy's environment, else Envoy's 1h.", valueName: "duration"))
    var idleTimeout: String?

    @Option(name: .customLong("connect-rate"), help: ArgumentHelp("Captured connects per second, for the collision model. Default: estimated from Tcp ActiveOpens over the proxy's uptime.", valueName: "per-second"))
    var connectRate: Double?

    @Option(name: .customLong("stall-after"), help: ArgumentHelp("An accepted connection silent both ways this long is stalled (5s, 30s…). Default: 5s (2s in the server-first lab).", valueName: "duration"))
    var stallAfter: String?

    @Option(name: .customLong("server-first"), help: ArgumentHelp("Also treat this port as serving a server-first protocol, optionally named; repeat for several.", valueName: "port[/name]"))
    var serverFirst: [String] = []

    @Option(name: .customLong("fail-on"), help: ArgumentHelp("Exit 1 when a finding is at least this severe: info, warning, error or never.", valueName: "severity"))
    var failOn: String = "warning"

    static let maximumConnectRate = 1e9

    func options() throws -> DiagnosisOptions {
        var options = DiagnosisOptions()
        if let sidecar {
            guard let profile = SidecarProfile(spec: sidecar) else {
                throw ValidationError("--sidecar takes istio, asm, linkerd or ports:OUT,IN (two ports from 1 to 65535), not '\(sidecar)'")
            }
            options.sidecar = profile
        }
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
        for value in serverFirst {
            guard let (port, application) = ProtocolCatalog.parseAddition(value) else {
                throw ValidationError("--server-first takes PORT or PORT/NAME (port 1-65535), not '\(value)'")
            }
            options.catalog.additions[port] = application
        }
        return options
    }

    /// nil: never fail.
    func failThreshold() throws -> Severity? {
        if failOn == "never" { return nil }
        guard let severity = Severity(name: failOn) else {
            throw ValidationError("--fail-on takes info, warning, error or never, not '\(failOn)'")
        }
        return severity
    }

    func validate() throws {
        _ = try options()
        _ = try failThreshold()
    }
}

import ArgumentParser
import Conntrack
import Diagnosis
import MeshLint

// The typed values of the options diagnose, leaks, collisions, export and lint share:
// parsed once, here, so every command reads and refuses them alike (ArgumentParser names
// the option and lists the accepted values in its one-line error).

/// `--fail-on`: the least severity that makes the exit status 1; `never`: none does.
struct FailThreshold: ExpressibleByArgument, Sendable, Equatable {
    var severity: Severity?

    static let warning = FailThreshold(severity: .warning)

    init(severity: Severity?) { self.severity = severity }

    init?(argument: String) {
        if argument == "never" {
            severity = nil
        } else if let severity = Severity(name: argument) {
            self.severity = severity
        } else {
            return nil
        }
    }

    static var allValueStrings: [String] { Severity.allCases.map(\.name) + ["never"] }
    var defaultValueDescription: String { severity?.name ?? "never" }
}

/// `--server-first PORT[/NAME]`: a port to treat as serving a server-first protocol.
struct ServerFirstPort: ExpressibleByArgument, Sendable {
    var port: UInt16
    var application: ApplicationProtocol

    init?(argument: String) {
        guard let (port, application) = ProtocolCatalog.parseAddition(argument) else { return nil }
        self.port = port
        self.application = application
    }

    /// The ports as the protocol catalog's additions (a port given twice: the last wins).
    static func additions(_ ports: [ServerFirstPort]) -> [UInt16: ApplicationProtocol] {
        Dictionary(ports.map { ($0.port, $0.application) }, uniquingKeysWith: { _, last in last })
    }
}

/// `--sidecar istio|asm|ambient|linkerd|ports:OUT,IN`.
struct SidecarChoice: ExpressibleByArgument, Sendable {
    var profile: SidecarProfile

    init?(argument: String) {
        guard let profile = SidecarProfile(spec: argument) else { return nil }
        self.profile = profile
    }

    static var allValueStrings: [String] { ["istio", "asm", "ambient", "linkerd", "ports:OUT,IN"] }
}

/// `lint --mesh auto|istio|linkerd`.
extension MeshChoice: ExpressibleByArgument {}

/// `watch --kernel-filter`: which conntrack events the kernel hands the watch.
extension ConntrackEventFilter: ExpressibleByArgument {}

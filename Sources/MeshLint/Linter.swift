import Diagnosis

/// A lint rule: a stable id and name, its default severity, and what it is about.
public struct LintRule: Sendable, Hashable {
    public var id: String
    public var name: String
    public var severity: Severity
    public var summary: String

    public static let istioSniffed = LintRule(
        id: "CTD101", name: "istio-server-first-sniffed", severity: .error,
        summary: "A server-first protocol on a port whose protocol Istio sniffs: the proxy waits for client bytes, the client for the server's greeting")
    public static let istioWrongProtocol = LintRule(
        id: "CTD102", name: "istio-server-first-declared-wrong", severity: .error,
        summary: "A server-first protocol on a port declared as HTTP, gRPC or TLS, which all wait for the client")
    public static let serviceEntry = LintRule(
        id: "CTD103", name: "serviceentry-server-first-protocol", severity: .error,
        summary: "A ServiceEntry port for a server-first protocol whose protocol is not TCP, TLS, MONGO, MYSQL or REDIS")
    public static let permissive = LintRule(
        id: "CTD104", name: "mtls-permissive-server-first", severity: .info,
        summary: "PERMISSIVE mTLS on a server-first port: the sidecar sniffs for TLS, so plaintext clients from outside the mesh stall")
    public static let disabledOneSide = LintRule(
        id: "CTD105", name: "mtls-disabled-one-side", severity: .info,
        summary: "mTLS disabled on a server-first port by PeerAuthentication while a DestinationRule still sends ISTIO_MUTUAL")
    public static let undeclaredWorkloadPort = LintRule(
        id: "CTD106", name: "server-first-port-without-service", severity: .info,
        summary: "A container port serving a server-first protocol that no Service in the input declares: inbound connections to it are sniffed")
    public static let linkerdNotOpaque = LintRule(
        id: "CTD201", name: "linkerd-server-first-not-opaque", severity: .warning,
        summary: "A server-first port Linkerd does not treat as opaque: every connection waits 10 s for protocol detection")
    public static let linkerdOneSide = LintRule(
        id: "CTD202", name: "linkerd-opaque-one-side", severity: .warning,
        summary: "A port opaque on the Service or on the workload but not both: the side that does not know still sniffs")
    public static let linkerdReplacedDefaults = LintRule(
        id: "CTD203", name: "linkerd-opaque-ports-replace-defaults", severity: .warning,
        summary: "config.linkerd.io/opaque-ports replaces Linkerd's default list, dropping a port it used to cover")
    public static let linkerdSilentClients = LintRule(
        id: "CTD204", name: "linkerd-silent-clients-not-opaque", severity: .info,
        summary: "A protocol whose clients open pooled connections and stay silent, on a port Linkerd sniffs: they wait out the 10 s detection")
    public static let linkerdSkipOutbound = LintRule(
        id: "CTD205", name: "linkerd-skip-outbound-ports", severity: .info,
        summary: "config.linkerd.io/skip-outbound-ports bypasses the proxy: those connections lose mTLS, retries and metrics")
    public static let linkerdBadAnnotation = LintRule(
        id: "CTD206", name: "linkerd-opaque-ports-invalid", severity: .warning,
        summary: "A config.linkerd.io/opaque-ports value that is not a comma-separated list of ports and ranges")

    public static let linkerdCloseWaitInvalid = LintRule(
        id: "CTD207", name: "linkerd-close-wait-timeout-invalid", severity: .warning,
        summary: "A config.linkerd.io/close-wait-timeout that is not a Go duration of a second or more: dropped, so half-closed flows still expire after 60 s")
    public static let linkerdCloseWaitNeedsRoot = LintRule(
        id: "CTD208", name: "linkerd-close-wait-timeout-needs-root", severity: .info,
        summary: "config.linkerd.io/close-wait-timeout takes effect only through a root, privileged linkerd-init (proxyInit.runAsRoot)")
    public static let closeWaitShorterThanIdle = LintRule(
        id: "CTD209", name: "close-wait-shorter-than-proxy-idle-timeout", severity: .warning,
        summary: "The pod's conntrack close_wait timeout is shorter than its proxy keeps idle sockets: a late close after a half-close leaks the proxy's socket")

    public static let all: [LintRule] = [
        istioSniffed, istioWrongProtocol, serviceEntry, permissive, disabledOneSide, undeclaredWorkloadPort,
        linkerdNotOpaque, linkerdOneSide, linkerdReplacedDefaults, linkerdSilentClients, linkerdSkipOutbound,
        linkerdBadAnnotation, linkerdCloseWaitInvalid, linkerdCloseWaitNeedsRoot, closeWaitShorterThanIdle,
    ]
}

/// One thing wrong in a manifest, at a line.
public struct LintFinding: Sendable {
    public var rule: LintRule
    public var severity: Severity
    public var message: String
    public var fix: String
    public var file: String
    public var line: Int
    /// The object concerned, "Service/db/mysql".
    public var object: String
    public var port: Int?
    /// The workloads the port leads to, "Deployment/db/mysql".
    public var workloads: [String]
}

/// Which mesh's rules to apply.
public enum MeshChoice: String, Sendable, CaseIterable {
    /// Per workload, from injection annotations and labels (and the namespace's);
    /// Istio where nothing says.
    case auto
    case istio
    case linkerd
}

public struct LintOptions: Sendable {
    public var mesh: MeshChoice
    public var catalog: ProtocolCatalog

    public init(mesh: MeshChoice = .auto, catalog: ProtocolCatalog = ProtocolCatalog()) {
        self.mesh = mesh
        self.catalog = catalog
    }
}

public struct LintReport: Sendable {
    /// In file order, then line order.
    public var findings: [LintFinding]
    public var notices: [String]
    public var objectCount: Int
    public var files: [String]

    public var worstSeverity: Severity? { findings.map(\.severity).max() }
}

/// Lints manifests for server-first protocols that a sidecar's protocol detection stalls.
///
/// Each rule family has its own file (IstioRules, LinkerdRules, WorkloadRules); what they
/// share is small: which mesh a workload is in (MeshInjection), what a port serves
/// (PortProtocols), and where findings go (LintFindings).
public enum Linter {
    public static func lint(_ objects: [ManifestObject], files: [String], options: LintOptions = LintOptions()) -> LintReport {
        let set = ManifestSet(objects)
        let protocols = PortProtocols(set: set, catalog: options.catalog)
        var meshes = MeshInjection(set: set, choice: options.mesh)
        var findings = LintFindings()
        // Container ports some Service port targets, by workload reference: the others
        // are WorkloadRules' to judge.
        var targeted: [String: Set<Int>] = [:]
        for service in set.services {
            let selected = set.workloads(selectedBy: service)
            let mesh = meshes.mesh(of: selected, namespace: service.object.namespace)
            for port in service.ports {
                var targets: [PortTarget] = []
                for workload in selected {
                    for (container, containerPort) in workload.containerPorts(matching: port) {
                        targets.append(PortTarget(workload: workload, container: container, port: containerPort))
                        targeted[workload.object.reference, default: []].insert(containerPort.number)
                    }
                }
                guard let served = protocols.served(port, targets: targets) else { continue }
                let site = ServicePortSite(service: service, port: port, served: served, selected: selected, targets: targets)
                switch mesh {
                case .istio:
                    IstioRules.lint(site, findings: &findings)
                    if served.application.isServerFirst { IstioRules.lintPeerAuthentication(site, set: set, findings: &findings) }
                case .linkerd: LinkerdRules.lint(site, set: set, findings: &findings)
                case .none: continue
                }
            }
        }
        for entry in set.serviceEntries { IstioRules.lint(entry, protocols: protocols, findings: &findings) }
        WorkloadRules.lint(set, targeted: targeted, meshes: &meshes, protocols: protocols, findings: &findings)
        let sorted = findings.all.sorted { ($0.file, $0.line, $0.rule.id) < ($1.file, $1.line, $1.rule.id) }
        return LintReport(findings: sorted, notices: meshes.notices, objectCount: set.objectCount, files: files)
    }
}

/// What a Service port serves, and how that is known.
struct ServedProtocol {
    var application: ApplicationProtocol
    var evidence: ProtocolEvidence
}

/// A container port a Service port leads to.
struct PortTarget {
    var workload: Workload
    var container: Container
    var port: ContainerPort
}

/// One Service port under judgement: what it serves and where it leads.
struct ServicePortSite {
    var service: Service
    var port: ServicePort
    var served: ServedProtocol
    var selected: [Workload]
    var targets: [PortTarget]

    /// The workloads the port leads to, by reference, sorted.
    var workloads: [String] { Array(Set(targets.map(\.workload.object.reference))).sorted() }

    var description: String { "port \(port.port)\(port.name.map { " (\"\($0)\")" } ?? "")" }

    var routes: String { workloads.isEmpty ? "" : ", routed to \(workloads.joined(separator: ", "))" }
}

/// Where the rules put what they find.
struct LintFindings {
    private(set) var all: [LintFinding] = []

    mutating func add(
        _ rule: LintRule, _ object: ManifestObject, line: Int, port: Int?, workloads: [String] = [],
        severity: Severity? = nil, message: String, fix: String
    ) {
        all.append(LintFinding(
            rule: rule, severity: severity ?? rule.severity, message: message, fix: fix, file: object.file,
            line: line > 0 ? line : object.line, object: object.reference, port: port, workloads: workloads))
    }

    func contains(_ rule: LintRule, on object: ManifestObject) -> Bool {
        all.contains { $0.rule == rule && $0.object == object.reference }
    }
}

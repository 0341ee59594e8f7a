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

    public static let all: [LintRule] = [
        istioSniffed, istioWrongProtocol, serviceEntry, permissive, disabledOneSide, undeclaredWorkloadPort,
        linkerdNotOpaque, linkerdOneSide, linkerdReplacedDefaults, linkerdSilentClients, linkerdSkipOutbound,
        linkerdBadAnnotation,
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
public enum Linter {
    public static func lint(_ objects: [ManifestObject], files: [String], options: LintOptions = LintOptions()) -> LintReport {
        let set = ManifestSet(objects)
        var context = Context(set: set, options: options)
        for service in set.services { context.lint(service) }
        for entry in set.serviceEntries { context.lint(entry) }
        context.lintWorkloads()
        let findings = context.findings.sorted { ($0.file, $0.line, $0.rule.id) < ($1.file, $1.line, $1.rule.id) }
        return LintReport(findings: findings, notices: context.notices, objectCount: set.objectCount, files: files)
    }
}

/// What a Service port serves, and how that is known.
struct ServedProtocol {
    var application: ApplicationProtocol
    var evidence: ProtocolEvidence
}

struct Context {
    let set: ManifestSet
    let options: LintOptions
    var findings: [LintFinding] = []
    var notices: [String] = []
    var assumedIstio = false
    /// Container ports some Service port targets, by workload reference.
    var targeted: [String: Set<Int>] = [:]

    init(set: ManifestSet, options: LintOptions) {
        self.set = set
        self.options = options
    }

    // MARK: Which mesh

    enum Mesh { case istio, linkerd, none }

    mutating func mesh(of workloads: [Workload], namespace: String) -> Mesh {
        switch options.mesh {
        case .istio: return .istio
        case .linkerd: return .linkerd
        case .auto: break
        }
        for workload in workloads {
            let annotations = workload.podAnnotations
            let istioInject = annotations["sidecar.istio.io/inject"] ?? workload.podLabels["sidecar.istio.io/inject"]
            if istioInject == "false" { return .none }
            if istioInject == "true" { return .istio }
            if let linkerd = annotations["linkerd.io/inject"] { return linkerd == "disabled" ? .none : .linkerd }
        }
        if let namespace = set.namespace(named: namespace) {
            if namespace.labels["istio-injection"] == "enabled" || namespace.labels["istio.io/rev"] != nil { return .istio }
            if namespace.labels["istio-injection"] == "disabled" { return .none }
            if let linkerd = namespace.annotations["linkerd.io/inject"] { return linkerd == "disabled" ? .none : .linkerd }
        }
        if !assumedIstio {
            assumedIstio = true
            notices.append("some objects carry no mesh injection marker (sidecar.istio.io/inject, istio-injection, linkerd.io/inject): Istio's rules were applied to them; use --mesh linkerd for Linkerd")
        }
        return .istio
    }

    /// Whether a protocol's clients can open with TLS (an implicit-TLS port), so the
    /// client speaks first. MySQL and SMTP/IMAP/POP3/FTP with STARTTLS negotiate TLS only
    /// after the server's greeting; NATS greets with INFO before any TLS unless its
    /// server sets handshake_first.
    static func clientsCanStartTLS(_ application: ApplicationProtocol) -> Bool {
        ![ProtocolCatalog.mysql, ProtocolCatalog.smtp, ProtocolCatalog.imap, ProtocolCatalog.pop3, ProtocolCatalog.ftp, ProtocolCatalog.nats, ProtocolCatalog.galera]
            .contains(application)
    }

    // MARK: What a port serves

    /// Names that describe a side channel, not the protocol: an exporter next to MySQL
    /// speaks HTTP.
    static let sideChannelWords = ["exporter", "metrics", "http", "grpc", "web", "admin", "ui", "monitor", "health", "prom", "status"]

    func named(_ name: String?) -> (ApplicationProtocol, ProtocolEvidence)? {
        guard let name, !Self.sideChannelWords.contains(where: { name.lowercased().contains($0) }) else { return nil }
        return options.catalog.byName(name)
    }

    /// What the container's image serves on `port`, as its args, env and mounted config
    /// files set it up; nil when the image is unknown or does not serve that port.
    func imageServes(_ workload: Workload, _ container: Container, port: Int) -> ServedProtocol? {
        let match = options.catalog.byImage(
            container.image, arguments: container.arguments, environment: container.environment,
            configFiles: set.configFiles(of: container, in: workload))
        return match?.ports[UInt16(clamping: port)].map { ServedProtocol(application: $0.application, evidence: $0.evidence) }
    }

    /// The strongest evidence first: a port given with --server-first, the image with
    /// one of its ports, a port name, a port number.
    func served(_ port: ServicePort, targets: [(Workload, Container, ContainerPort)]) -> ServedProtocol? {
        let numbers = [port.port] + (port.targetPort.flatMap { Int($0) }.map { [$0] } ?? []) + targets.map(\.2.number)
        for number in numbers {
            if let protocolEntry = options.catalog.additions[UInt16(clamping: number)] {
                return ServedProtocol(application: protocolEntry, evidence: .given(UInt16(clamping: number)))
            }
        }
        for (workload, container, containerPort) in targets {
            if let served = imageServes(workload, container, port: containerPort.number) { return served }
        }
        for name in [port.name] + targets.map(\.2.name) {
            if let (application, evidence) = named(name) { return ServedProtocol(application: application, evidence: evidence) }
        }
        for number in numbers {
            if let (application, evidence) = options.catalog.byPort(UInt16(clamping: number)) {
                return ServedProtocol(application: application, evidence: evidence)
            }
        }
        return nil
    }

    // MARK: Services

    mutating func lint(_ service: Service) {
        let selected = set.workloads(selectedBy: service)
        let mesh = mesh(of: selected, namespace: service.object.namespace)
        for port in service.ports {
            var targets: [(Workload, Container, ContainerPort)] = []
            for workload in selected {
                for (container, containerPort) in workload.containerPorts(matching: port) {
                    targets.append((workload, container, containerPort))
                    targeted[workload.object.reference, default: []].insert(containerPort.number)
                }
            }
            guard let served = served(port, targets: targets) else { continue }
            let workloads = Array(Set(targets.map(\.0.object.reference))).sorted()
            switch mesh {
            case .istio: lintIstio(service, port, served, workloads: workloads)
            case .linkerd: lintLinkerd(service, port, served, selected: selected, targets: targets)
            case .none: continue
            }
            if mesh == .istio && served.application.isServerFirst {
                lintPeerAuthentication(service, port, served, selected: selected, targets: targets)
            }
        }
    }

    func describe(_ port: ServicePort) -> String {
        "port \(port.port)\(port.name.map { " (\"\($0)\")" } ?? "")"
    }

    func routesTo(_ workloads: [String]) -> String {
        workloads.isEmpty ? "" : ", routed to \(workloads.joined(separator: ", "))"
    }

    mutating func add(
        _ rule: LintRule, _ object: ManifestObject, line: Int, port: Int?, workloads: [String] = [],
        severity: Severity? = nil, message: String, fix: String
    ) {
        findings.append(LintFinding(
            rule: rule, severity: severity ?? rule.severity, message: message, fix: fix, file: object.file,
            line: line > 0 ? line : object.line, object: object.reference, port: port, workloads: workloads))
    }

    mutating func lintIstio(_ service: Service, _ port: ServicePort, _ served: ServedProtocol, workloads: [String]) {
        guard served.application.isServerFirst else { return }
        let selection = IstioSelection.select(name: port.name, appProtocol: port.appProtocol, port: port.port)
        let suggestion = "tcp-\(port.name.map { $0.split(separator: "-").last.map(String.init) ?? $0 } ?? served.application.name.lowercased())"
        switch selection {
        case .wellKnownTCP:
            return
        case .declared(let declared, _) where IstioSelection.passThrough.contains(declared):
            return
        case .declared(let declared, let how):
            add(
                .istioWrongProtocol, service.object, line: port.line, port: port.port, workloads: workloads,
                message: "\(service.object.reference) \(describe(port)) is declared \(declared) (\(how)) but serves \(served.application.name) (from \(served.evidence)), whose server speaks first; \(declared) proxying waits for the client's request, so connections stall\(routesTo(workloads))",
                fix: "Declare it TCP: rename the port to \(suggestion) or set appProtocol: tcp\(declared == "tls" || declared == "https" ? "; if clients really start TLS, the server side must too" : "").")
        case .sniffed:
            add(
                .istioSniffed, service.object, line: port.line, port: port.port, workloads: workloads,
                message: "\(service.object.reference) \(describe(port)) serves \(served.application.name) (from \(served.evidence)), whose server speaks first, but Istio sniffs its protocol (\(port.appProtocol.map { "appProtocol \($0) is not recognised" } ?? "no appProtocol"), \(port.name.map { "name \"\($0)\" has no recognised prefix" } ?? "unnamed")): the sidecar waits for the client, the client for the greeting — a deadlock until the app times out\(routesTo(workloads))",
                fix: "Name the port \(suggestion) (or set appProtocol: tcp)\(Self.clientsCanStartTLS(served.application) ? "; or have clients start TLS, so they speak first" : "; TLS cannot help: \(served.application.name) negotiates it only after the server's greeting")).")
        }
    }

    mutating func lint(_ entry: ServiceEntry) {
        for port in entry.ports {
            let served = options.catalog.additions[UInt16(clamping: port.number)].map { ServedProtocol(application: $0, evidence: .given(UInt16(clamping: port.number))) }
                ?? named(port.name).map { ServedProtocol(application: $0.0, evidence: $0.1) }
                ?? options.catalog.byPort(UInt16(clamping: port.number)).map { ServedProtocol(application: $0.0, evidence: $0.1) }
            guard let served, served.application.isServerFirst else { continue }
            let declared = port.protocolName?.uppercased()
            guard !["TCP", "TLS", "MONGO", "MYSQL", "REDIS"].contains(declared ?? "") else { continue }
            add(
                .serviceEntry, entry.object, line: port.line, port: port.number,
                message: "\(entry.object.reference) port \(port.number) (\(entry.hosts.joined(separator: ", "))) serves \(served.application.name) (from \(served.evidence)), whose server speaks first, with protocol \(declared ?? "unset"): the egress sidecar waits for the client's bytes",
                fix: "Set protocol: TCP on this port (with Istio's DNS proxying for a hostname), or TLS if clients start TLS.")
        }
    }

    // MARK: PeerAuthentication

    mutating func lintPeerAuthentication(
        _ service: Service, _ port: ServicePort, _ served: ServedProtocol, selected: [Workload],
        targets: [(Workload, Container, ContainerPort)]
    ) {
        guard !set.peerAuthentications.isEmpty else { return }
        for (workload, _, containerPort) in targets {
            guard let (policy, mode, line) = effectiveMode(workload, port: containerPort.number) else { continue }
            if mode == "PERMISSIVE" {
                add(
                    .permissive, policy.object, line: line, port: containerPort.number, workloads: [workload.object.reference],
                    message: "\(policy.object.reference) leaves \(workload.object.reference) port \(containerPort.number) (\(served.application.name), server-first) in PERMISSIVE mTLS: the sidecar must see the client's first bytes to tell mTLS from plaintext, so plaintext clients from outside the mesh stall; in-mesh clients are unaffected",
                    fix: "STRICT if every client is in the mesh; otherwise portLevelMtls \(containerPort.number): {mode: DISABLE} for this port, keeping TLS on the server itself (ASM's advice).")
            } else if mode == "DISABLE", let rule = mutualRule(for: service, port: port.port) {
                add(
                    .disabledOneSide, policy.object, line: line, port: containerPort.number, workloads: [workload.object.reference],
                    message: "\(policy.object.reference) disables mTLS on \(workload.object.reference) port \(containerPort.number) (\(served.application.name)), but \(rule.object.reference) still sends ISTIO_MUTUAL to \(rule.host): in-mesh clients' handshakes fail",
                    fix: "Give \(rule.object.reference) a portLevelSettings entry for port \(port.port) with tls mode DISABLE, or keep mTLS on both sides.")
            }
        }
    }

    /// The mode for a workload's port: a selecting policy's port level or mode, then the
    /// namespace's, then the mesh's (policies in istio-system without a selector).
    func effectiveMode(_ workload: Workload, port: Int) -> (PeerAuthentication, String, Int)? {
        let local = set.peerAuthentications(in: workload.object.namespace)
        let selecting = local.filter { policy in
            guard let selector = policy.selector, !selector.isEmpty else { return false }
            return selector.allSatisfy { workload.podLabels[$0.key] == $0.value }
        }
        let namespaceWide = local.filter { ($0.selector ?? [:]).isEmpty }
        let meshWide = set.peerAuthentications(in: "istio-system").filter { ($0.selector ?? [:]).isEmpty }
        for policy in selecting + namespaceWide + meshWide {
            if let portMode = policy.portModes[port] { return (policy, portMode.mode, portMode.line) }
            if let mode = policy.mode, mode != "UNSET" { return (policy, mode, policy.object.line) }
        }
        return nil
    }

    func mutualRule(for service: Service, port: Int) -> DestinationRule? {
        set.destinationRules(forServiceNamed: service.object.name).first { rule in
            let labels = rule.host.split(separator: ".")
            guard labels.first.map(String.init) == service.object.name else { return false }
            if labels.count > 1 && !service.object.namespace.isEmpty && String(labels[1]) != service.object.namespace { return false }
            return (rule.portModes[port] ?? rule.tlsMode) == "ISTIO_MUTUAL"
        }
    }

    // MARK: Linkerd

    /// The opaque ports of an object: its annotation, else its namespace's, else the
    /// defaults. Nil `replaced` means the defaults apply.
    mutating func opaquePorts(
        annotations: [String: String], namespace: String, object: ManifestObject
    ) -> (ports: OpaquePorts, annotation: String?) {
        let value = annotations[OpaquePorts.annotation] ?? set.namespace(named: namespace)?.annotations[OpaquePorts.annotation]
        guard let value else { return (.defaults, nil) }
        guard let ports = OpaquePorts(parsing: value) else {
            if !findings.contains(where: { $0.rule == .linkerdBadAnnotation && $0.object == object.reference }) {
                add(
                    .linkerdBadAnnotation, object, line: object.line, port: nil,
                    message: "\(object.reference) has \(OpaquePorts.annotation): \"\(value)\", which is not a list of ports and ranges (like 25,3306,4000-4100); Linkerd ignores it",
                    fix: "Write the ports comma-separated, ranges as LOW-HIGH.")
            }
            return (.defaults, nil)
        }
        return (ports, value)
    }

    mutating func lintLinkerd(
        _ service: Service, _ port: ServicePort, _ served: ServedProtocol, selected: [Workload],
        targets: [(Workload, Container, ContainerPort)]
    ) {
        let application = served.application
        guard application.isServerFirst || application.silentClients else { return }
        let serviceSide = opaquePorts(annotations: service.annotations, namespace: service.object.namespace, object: service.object)
        let serviceOpaque = port.appProtocol == "linkerd.io/opaque" || serviceSide.ports.contains(port.port)
        let workloadsList = Array(Set(targets.map(\.0.object.reference))).sorted()
        var workloadOpaque = true
        var workloadAnnotation: String?
        var opaqueOn: [String] = []
        for workload in selected {
            let side = opaquePorts(annotations: workload.podAnnotations, namespace: workload.object.namespace, object: workload.object)
            let numbers = workload.containerPorts(matching: port).map(\.1.number)
            let covered = (numbers.isEmpty ? [Int(port.targetPort ?? "") ?? port.port] : numbers).allSatisfy(side.ports.contains)
            if covered { opaqueOn.append(workload.object.reference) } else { workloadOpaque = false }
            workloadAnnotation = workloadAnnotation ?? side.annotation
        }
        // Without a workload in the input only the Service side can be judged.
        if selected.isEmpty { workloadOpaque = serviceOpaque }
        if serviceOpaque && workloadOpaque { return }
        let what = "\(application.name) (from \(served.evidence))"
        let delay = application.isServerFirst
            ? "the server speaks first, so every connection waits Linkerd's 10 s protocol detection (\"protocol detection timed out after 10s\")"
            : "its clients open pooled connections and stay silent, so each waits out Linkerd's 10 s detection"
        let annotated = serviceSide.annotation ?? workloadAnnotation
        let fix = "List port \(port.port) in \(OpaquePorts.annotation) on both the Service and the workload's pod template (or namespace), or set appProtocol: linkerd.io/opaque on this ClusterIP Service port; the annotation replaces the default list, so keep the defaults you rely on."
        if serviceOpaque != workloadOpaque {
            add(
                .linkerdOneSide, service.object, line: port.line, port: port.port, workloads: workloadsList,
                severity: application.isServerFirst ? .warning : .info,
                message: "\(service.object.reference) \(describe(port)) serves \(what) and is opaque on \(serviceOpaque ? "the Service" : "the workload (\(opaqueOn.joined(separator: ", ")))") only: \(serviceOpaque ? "the server's inbound proxy still detects" : "the clients' outbound proxies still detect") the protocol; \(delay)",
                fix: fix)
        } else if let annotated, OpaquePorts.defaults.contains(port.port) {
            add(
                .linkerdReplacedDefaults, service.object, line: port.line, port: port.port, workloads: workloadsList,
                message: "\(service.object.reference) \(describe(port)) serves \(what); port \(port.port) is in Linkerd's default opaque list, but \(OpaquePorts.annotation): \"\(annotated)\" replaces that list and leaves it out: \(delay)",
                fix: "Add \(port.port) to \(OpaquePorts.annotation) on the Service and the workload.")
        } else {
            add(
                application.isServerFirst ? .linkerdNotOpaque : .linkerdSilentClients, service.object, line: port.line,
                port: port.port, workloads: workloadsList,
                message: "\(service.object.reference) \(describe(port)) serves \(what), which Linkerd does not treat as opaque: \(delay)",
                fix: fix)
        }
    }

    // MARK: Workloads

    mutating func lintWorkloads() {
        for workload in set.workloads {
            let mesh = self.mesh(of: [workload], namespace: workload.object.namespace)
            if mesh == .linkerd, let skipped = workload.podAnnotations[OpaquePorts.skipOutbound] {
                add(
                    .linkerdSkipOutbound, workload.object, line: workload.object.line, port: nil,
                    message: "\(workload.object.reference) skips the proxy for outbound ports \(skipped) (\(OpaquePorts.skipOutbound)): those connections have no mTLS, retries or metrics",
                    fix: "Prefer \(OpaquePorts.annotation) for protocols detection stalls: opaque connections keep mTLS.")
            }
            guard mesh == .istio else { continue }
            for container in workload.containers {
                for port in container.ports where !(targeted[workload.object.reference]?.contains(port.number) ?? false) {
                    let byImage = imageServes(workload, container, port: port.number).map { ($0.application, $0.evidence) }
                    guard let (application, evidence) = byImage ?? named(port.name) ?? options.catalog.byPort(UInt16(clamping: port.number)),
                        application.isServerFirst
                    else { continue }
                    add(
                        .undeclaredWorkloadPort, workload.object, line: port.line, port: port.number,
                        message: "\(workload.object.reference) container \(container.name) port \(port.number) serves \(application.name) (from \(evidence)), whose server speaks first, and no Service in the input declares it: connections to the pod's port are sniffed",
                        fix: "Declare it in the Service that exposes it with a tcp- name or appProtocol: tcp (or lint that Service's manifest together with this one).")
                }
            }
        }
    }
}

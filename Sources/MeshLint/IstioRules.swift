import Diagnosis

/// The Istio (and ASM) rules: how a Service or ServiceEntry port's protocol is selected,
/// and how mTLS policy makes the sidecar wait for client bytes.
enum IstioRules {
    /// CTD101, CTD102: a server-first port Istio sniffs, or declares as a protocol that
    /// waits for the client.
    static func lint(_ site: ServicePortSite, findings: inout LintFindings) {
        let (service, port, served, workloads) = (site.service, site.port, site.served, site.workloads)
        guard served.application.isServerFirst else { return }
        let selection = IstioSelection.select(name: port.name, appProtocol: port.appProtocol, port: port.port)
        let suggestion = "tcp-\(port.name.map { $0.split(separator: "-").last.map(String.init) ?? $0 } ?? served.application.name.lowercased())"
        switch selection {
        case .wellKnownTCP:
            return
        case .declared(let declared, _) where IstioSelection.passThrough.contains(declared):
            return
        case .declared(let declared, let how):
            findings.add(
                .istioWrongProtocol, service.object, line: port.line, port: port.port, workloads: workloads,
                message: "\(service.object.reference) \(site.description) is declared \(declared) (\(how)) but serves \(served.application.name) (from \(served.evidence)), whose server speaks first; \(declared) proxying waits for the client's request, so connections stall\(site.routes)",
                fix: "Declare it TCP: rename the port to \(suggestion) or set appProtocol: tcp\(declared == "tls" || declared == "https" ? "; if clients really start TLS, the server side must too" : "").")
        case .sniffed:
            findings.add(
                .istioSniffed, service.object, line: port.line, port: port.port, workloads: workloads,
                message: "\(service.object.reference) \(site.description) serves \(served.application.name) (from \(served.evidence)), whose server speaks first, but Istio sniffs its protocol (\(port.appProtocol.map { "appProtocol \($0) is not recognised" } ?? "no appProtocol"), \(port.name.map { "name \"\($0)\" has no recognised prefix" } ?? "unnamed")): the sidecar waits for the client, the client for the greeting — a deadlock until the app times out\(site.routes)",
                fix: "Name the port \(suggestion) (or set appProtocol: tcp)\(clientsCanStartTLS(served.application) ? "; or have clients start TLS, so they speak first" : "; TLS cannot help: \(served.application.name) negotiates it only after the server's greeting")).")
        }
    }

    /// CTD103: a ServiceEntry port for a server-first protocol, not declared TCP (or one
    /// of the protocols Istio proxies as TCP).
    static func lint(_ entry: ServiceEntry, protocols: PortProtocols, findings: inout LintFindings) {
        for port in entry.ports {
            guard let served = protocols.served(port), served.application.isServerFirst else { continue }
            let declared = port.protocolName?.uppercased()
            guard !["TCP", "TLS", "MONGO", "MYSQL", "REDIS"].contains(declared ?? "") else { continue }
            findings.add(
                .serviceEntry, entry.object, line: port.line, port: port.number,
                message: "\(entry.object.reference) port \(port.number) (\(entry.hosts.joined(separator: ", "))) serves \(served.application.name) (from \(served.evidence)), whose server speaks first, with protocol \(declared ?? "unset"): the egress sidecar waits for the client's bytes",
                fix: "Set protocol: TCP on this port (with Istio's DNS proxying for a hostname), or TLS if clients start TLS.")
        }
    }

    /// CTD104, CTD105: PERMISSIVE mTLS on a server-first port, or mTLS disabled on the
    /// server's side while a DestinationRule still sends it.
    static func lintPeerAuthentication(_ site: ServicePortSite, set: ManifestSet, findings: inout LintFindings) {
        let (service, port, served) = (site.service, site.port, site.served)
        guard !set.peerAuthentications.isEmpty else { return }
        for target in site.targets {
            let (workload, containerPort) = (target.workload, target.port)
            guard let (policy, mode, line) = effectiveMode(workload, port: containerPort.number, set: set) else { continue }
            if mode == "PERMISSIVE" {
                findings.add(
                    .permissive, policy.object, line: line, port: containerPort.number, workloads: [workload.object.reference],
                    message: "\(policy.object.reference) leaves \(workload.object.reference) port \(containerPort.number) (\(served.application.name), server-first) in PERMISSIVE mTLS: the sidecar must see the client's first bytes to tell mTLS from plaintext, so plaintext clients from outside the mesh stall; in-mesh clients are unaffected",
                    fix: "STRICT if every client is in the mesh; otherwise portLevelMtls \(containerPort.number): {mode: DISABLE} for this port, keeping TLS on the server itself (ASM's advice).")
            } else if mode == "DISABLE", let rule = mutualRule(for: service, port: port.port, set: set) {
                findings.add(
                    .disabledOneSide, policy.object, line: line, port: containerPort.number, workloads: [workload.object.reference],
                    message: "\(policy.object.reference) disables mTLS on \(workload.object.reference) port \(containerPort.number) (\(served.application.name)), but \(rule.object.reference) still sends ISTIO_MUTUAL to \(rule.host): in-mesh clients' handshakes fail",
                    fix: "Give \(rule.object.reference) a portLevelSettings entry for port \(port.port) with tls mode DISABLE, or keep mTLS on both sides.")
            }
        }
    }

    /// The mode for a workload's port: a selecting policy's port level or mode, then the
    /// namespace's, then the mesh's (policies in istio-system without a selector).
    static func effectiveMode(_ workload: Workload, port: Int, set: ManifestSet) -> (PeerAuthentication, String, Int)? {
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

    static func mutualRule(for service: Service, port: Int, set: ManifestSet) -> DestinationRule? {
        set.destinationRules(forServiceNamed: service.object.name).first { rule in
            let labels = rule.host.split(separator: ".")
            guard labels.first.map(String.init) == service.object.name else { return false }
            if labels.count > 1 && !service.object.namespace.isEmpty && String(labels[1]) != service.object.namespace { return false }
            return (rule.portModes[port] ?? rule.tlsMode) == "ISTIO_MUTUAL"
        }
    }

    /// Whether a protocol's clients can open with TLS (an implicit-TLS port), so the
    /// client speaks first. MySQL and SMTP/IMAP/POP3/FTP with STARTTLS negotiate TLS only
    /// after the server's greeting; NATS greets with INFO before any TLS unless its
    /// server sets handshake_first.
    static func clientsCanStartTLS(_ application: ApplicationProtocol) -> Bool {
        ![ProtocolCatalog.mysql, ProtocolCatalog.smtp, ProtocolCatalog.imap, ProtocolCatalog.pop3, ProtocolCatalog.ftp, ProtocolCatalog.nats, ProtocolCatalog.galera]
            .contains(application)
    }
}

import Diagnosis

/// The Linkerd rules: opaque ports on both sides of a connection, the annotation that
/// replaces the defaults, and ports that skip the proxy.
enum LinkerdRules {
    /// The opaque ports of an object: its annotation, else its namespace's, else the
    /// defaults. Nil `replaced` means the defaults apply.
    static func opaquePorts(
        annotations: [String: String], namespace: String, object: ManifestObject, set: ManifestSet, findings: inout LintFindings
    ) -> (ports: OpaquePorts, annotation: String?) {
        let value = annotations[OpaquePorts.annotation] ?? set.namespace(named: namespace)?.annotations[OpaquePorts.annotation]
        guard let value else { return (.defaults, nil) }
        guard let ports = OpaquePorts(parsing: value) else {
            if !findings.contains(.linkerdBadAnnotation, on: object) {
                findings.add(
                    .linkerdBadAnnotation, object, line: object.line, port: nil,
                    message: "\(object.reference) has \(OpaquePorts.annotation): \"\(value)\", which is not a list of ports and ranges (like 25,3306,4000-4100); Linkerd ignores it",
                    fix: "Write the ports comma-separated, ranges as LOW-HIGH.")
            }
            return (.defaults, nil)
        }
        return (ports, value)
    }

    /// CTD201-CTD204: a server-first (or silent-client) port Linkerd does not treat as
    /// opaque on both sides.
    static func lint(_ site: ServicePortSite, set: ManifestSet, findings: inout LintFindings) {
        let (service, port, served, selected) = (site.service, site.port, site.served, site.selected)
        let application = served.application
        guard application.isServerFirst || application.silentClients else { return }
        let serviceSide = opaquePorts(
            annotations: service.annotations, namespace: service.object.namespace, object: service.object, set: set, findings: &findings)
        let serviceOpaque = port.appProtocol == "linkerd.io/opaque" || serviceSide.ports.contains(port.port)
        let workloadsList = site.workloads
        var workloadOpaque = true
        var workloadAnnotation: String?
        var opaqueOn: [String] = []
        for workload in selected {
            let side = opaquePorts(
                annotations: workload.podAnnotations, namespace: workload.object.namespace, object: workload.object, set: set,
                findings: &findings)
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
            findings.add(
                .linkerdOneSide, service.object, line: port.line, port: port.port, workloads: workloadsList,
                severity: application.isServerFirst ? .warning : .info,
                message: "\(service.object.reference) \(site.description) serves \(what) and is opaque on \(serviceOpaque ? "the Service" : "the workload (\(opaqueOn.joined(separator: ", ")))") only: \(serviceOpaque ? "the server's inbound proxy still detects" : "the clients' outbound proxies still detect") the protocol; \(delay)",
                fix: fix)
        } else if let annotated, OpaquePorts.defaults.contains(port.port) {
            findings.add(
                .linkerdReplacedDefaults, service.object, line: port.line, port: port.port, workloads: workloadsList,
                message: "\(service.object.reference) \(site.description) serves \(what); port \(port.port) is in Linkerd's default opaque list, but \(OpaquePorts.annotation): \"\(annotated)\" replaces that list and leaves it out: \(delay)",
                fix: "Add \(port.port) to \(OpaquePorts.annotation) on the Service and the workload.")
        } else {
            findings.add(
                application.isServerFirst ? .linkerdNotOpaque : .linkerdSilentClients, service.object, line: port.line,
                port: port.port, workloads: workloadsList,
                message: "\(service.object.reference) \(site.description) serves \(what), which Linkerd does not treat as opaque: \(delay)",
                fix: fix)
        }
    }
}

import Diagnosis

/// The rules about workloads on their own, whatever Service leads to them.
enum WorkloadRules {
    /// CTD205 (Linkerd's skip-outbound-ports), CTD207-CTD209 (the close_wait timeout
    /// against the proxy's) and CTD106 (a server-first container port no Service in the
    /// input declares).
    static func lint(
        _ set: ManifestSet, targeted: [String: Set<Int>], meshes: inout MeshInjection, protocols: PortProtocols,
        findings: inout LintFindings
    ) {
        for workload in set.workloads {
            let mesh = meshes.mesh(of: [workload], namespace: workload.object.namespace)
            CloseWaitRules.lint(workload, mesh: mesh, set: set, findings: &findings)
            if mesh == .linkerd, let skipped = workload.podAnnotations[OpaquePorts.skipOutbound] {
                findings.add(
                    .linkerdSkipOutbound, workload.object, line: workload.object.line, port: nil,
                    message: "\(workload.object.reference) skips the proxy for outbound ports \(skipped) (\(OpaquePorts.skipOutbound)): those connections have no mTLS, retries or metrics",
                    fix: "Prefer \(OpaquePorts.annotation) for protocols detection stalls: opaque connections keep mTLS.")
            }
            guard mesh == .istio else { continue }
            for container in workload.containers {
                for port in container.ports where !(targeted[workload.object.reference]?.contains(port.number) ?? false) {
                    guard let served = protocols.served(port, of: container, in: workload), served.application.isServerFirst else { continue }
                    let (application, evidence) = (served.application, served.evidence)
                    findings.add(
                        .undeclaredWorkloadPort, workload.object, line: port.line, port: port.number,
                        message: "\(workload.object.reference) container \(container.name) port \(port.number) serves \(application.name) (from \(evidence)), whose server speaks first, and no Service in the input declares it: connections to the pod's port are sniffed",
                        fix: "Declare it in the Service that exposes it with a tcp- name or appProtocol: tcp (or lint that Service's manifest together with this one).")
                }
            }
        }
    }
}

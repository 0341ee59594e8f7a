/// Which mesh's rules apply to a workload: --mesh, else its injection annotations and
/// labels, else its namespace's, else Istio (said once in a notice).
struct MeshInjection {
    enum Mesh { case istio, linkerd, none }

    let set: ManifestSet
    let choice: MeshChoice
    private(set) var notices: [String] = []
    private var assumedIstio = false

    init(set: ManifestSet, choice: MeshChoice) {
        self.set = set
        self.choice = choice
    }

    mutating func mesh(of workloads: [Workload], namespace: String) -> Mesh {
        switch choice {
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
}

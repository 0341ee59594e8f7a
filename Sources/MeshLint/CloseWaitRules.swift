import Diagnosis
import NetCore
import YAML

/// The half-close leak, caught in the manifest: how long conntrack keeps a pod's
/// half-closed flows (net.netfilter.nf_conntrack_tcp_timeout_close_wait, 60 s in a new
/// namespace) against how long its proxy keeps their sockets.
enum CloseWaitRules {
    static let linkerdAnnotation = "config.linkerd.io/close-wait-timeout"
    static let sysctl = "net.netfilter.nf_conntrack_tcp_timeout_close_wait"
    static let istioProxyConfig = "proxy.istio.io/config"
    /// Envoy's TCP idle timeout when nothing sets ISTIO_META_IDLE_TIMEOUT.
    static let envoyDefaultIdleSeconds = 3600

    /// CTD207-CTD209 for one workload in `mesh`.
    static func lint(_ workload: Workload, mesh: MeshInjection.Mesh, set: ManifestSet, findings: inout LintFindings) {
        switch mesh {
        case .linkerd: lintLinkerd(workload, set: set, findings: &findings)
        case .istio: lintIstio(workload, findings: &findings)
        case .none: return
        }
    }

    /// Linkerd's injector reads the annotation (the pod's, or its namespace's) with Go's
    /// time.ParseDuration, keeps whole seconds, and hands them to proxy-init, which sets
    /// the sysctl; a value it cannot read is logged and dropped.
    static func lintLinkerd(_ workload: Workload, set: ManifestSet, findings: inout LintFindings) {
        let object = workload.object
        let onPod = workload.podAnnotations[linkerdAnnotation]
        guard let value = onPod ?? set.namespace(named: object.namespace)?.annotations[linkerdAnnotation] else { return }
        let line = onPod == nil ? object.line : workload.podAnnotationLines[linkerdAnnotation] ?? object.line
        let whole = DurationText.goDuration(value).map { Int(saturating: $0.rounded(.down)) } ?? 0
        guard whole >= 1 else {
            let why = DurationText.goDuration(value) == nil
                ? "is not a Go duration (write 1h or 3600s: a bare number has no unit)" : "is under a second (Linkerd keeps whole seconds, here 0, and skips 0)"
            findings.add(
                .linkerdCloseWaitInvalid, object, line: line, port: nil,
                message: "\(object.reference) sets \(linkerdAnnotation): \"\(value)\", which \(why): the injector drops it with a warning, and conntrack keeps forgetting half-closed flows after the namespace's default (60 s)",
                fix: "Write a Go duration at least as long as the app keeps connections half-closed, e.g. \(linkerdAnnotation): \"1h\".")
            return
        }
        if let arguments = workload.proxyInitArguments {
            if !arguments.contains(where: { $0 == "--timeout-close-wait-secs" || $0.hasPrefix("--timeout-close-wait-secs=") }) {
                findings.add(
                    .linkerdCloseWaitNeedsRoot, object, line: line, port: nil, severity: .warning,
                    message: "\(object.reference) sets \(linkerdAnnotation): \"\(value)\", but its injected linkerd-init has no --timeout-close-wait-secs: the annotation was added after injection, or dropped, and the sysctl keeps its default",
                    fix: "Re-inject the workload (linkerd inject, or restart it under the injector) with proxyInit.runAsRoot=true in the control plane's values.")
            }
        } else {
            findings.add(
                .linkerdCloseWaitNeedsRoot, object, line: line, port: nil,
                message: "\(object.reference) sets \(linkerdAnnotation): \"\(value)\" (\(whole) s), which only a root, privileged linkerd-init can apply: Linkerd's charts refuse to render it without proxyInit.runAsRoot (linkerd/linkerd2#13481), so injection fails where that value is not set",
                fix: "Set proxyInit.runAsRoot=true in the Linkerd control plane's Helm values (the init container then runs privileged), or set \(sysctl) in the pod's securityContext.sysctls where the kubelet allows it.")
        }
        findings.add(
            .closeWaitShorterThanIdle, object, line: line, port: nil, severity: .info,
            message: "\(object.reference) keeps half-closed flows \(whole) s in conntrack, and Linkerd's proxy has no idle timeout of its own for TCP: a connection the app leaves half-closed longer than that still leaks the proxy's socket until the proxy restarts",
            fix: "Choose the value from the app's side: longer than its clients' idle timeout for a half-closed connection, or make the app close promptly once its upstream has.")
    }

    /// Istio sets no close_wait of its own: a pod that sets the sysctl is judged against
    /// Envoy's idle timeout (ISTIO_META_IDLE_TIMEOUT in the pod's proxy config, else 1 h).
    static func lintIstio(_ workload: Workload, findings: inout LintFindings) {
        // A negative or absurd value is not a timeout the kernel takes (it refuses it);
        // nothing to compare.
        guard let setting = workload.podSysctls[sysctl], let closeWait = Int(setting.value), (0...Int(Int32.max)).contains(closeWait) else { return }
        let (idle, source) = istioIdleTimeout(workload)
        guard idle > 0, closeWait < idle else { return }
        findings.add(
            .closeWaitShorterThanIdle, workload.object, line: setting.line, port: nil,
            message: "\(workload.object.reference) sets \(sysctl)=\(closeWait) in its securityContext while Envoy keeps idle connections \(idle) s (\(source)): an app that closes more than \(closeWait) s after its upstream leaks the proxy's socket for up to \(idle - closeWait) s",
            fix: "Raise the sysctl to at least \(idle), or lower ISTIO_META_IDLE_TIMEOUT in the pod's \(istioProxyConfig) proxyMetadata below \(closeWait) s.")
    }

    /// Envoy's idle timeout from the pod's `proxy.istio.io/config` annotation (a YAML
    /// document of its own), in whole seconds; 0 when disabled.
    static func istioIdleTimeout(_ workload: Workload) -> (seconds: Int, source: String) {
        let fallback = (envoyDefaultIdleSeconds, "Envoy's default")
        guard let config = workload.podAnnotations[istioProxyConfig],
            let document = try? YAMLReader.documents(Array(config.utf8), expandedNodeLimit: 10_000).first,
            let value = document["proxyMetadata"]?["ISTIO_META_IDLE_TIMEOUT"]?.scalar,
            let seconds = DurationText.goDuration(value)
        else { return fallback }
        return (Int(saturating: seconds.rounded(.down)), "ISTIO_META_IDLE_TIMEOUT=\(value) in \(istioProxyConfig)")
    }
}

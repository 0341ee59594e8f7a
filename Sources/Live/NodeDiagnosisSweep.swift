import Conntrack
import Diagnosis
import KernelIO

/// Diagnoses many namespaces of a node, `parallel` at a time: `diagnose --all-netns`,
/// `--pod`, and `export`. One namespace's failure is its result, never the sweep's.
public enum NodeDiagnosisSweep {
    /// The results in the order given, and how many namespaces went away meanwhile
    /// (every process exited: pods come and go) and were dropped.
    /// - Parameter every: every namespace of the node, to name where a proxy that lives
    ///   outside its pod's namespace lives (ambient's ztunnel); `namespaces` when nil.
    public static func run(
        _ namespaces: [NodeNamespace], every: [NodeNamespace]? = nil, parallel: Int, options: DiagnosisOptions,
        trace: (@Sendable (String, Duration) -> Void)? = nil
    ) throws -> (results: [NamespaceResult], vanished: Int) {
        let podByNamespace = Dictionary(
            (every ?? namespaces).compactMap { node in node.pod.label.map { (node.netnsLabel, $0) } }, uniquingKeysWith: { first, _ in first })
        let results = try inParallel(namespaces, width: parallel) { node -> NamespaceResult? in
            do {
                var report = try LiveCollector.collectAndDiagnose(node.namespace, processesInside: node.pids, options: options, trace: trace)
                if let home = report.sidecar?.proxyNamespace, let pod = podByNamespace[home] {
                    report.sidecar?.proxyPod = pod
                    report.sidecar?.evidence += " (pod \(pod))"
                }
                return .diagnosed(NamespaceIdentity(node), report)
            } catch {
                if node.wentAway { return nil }
                return .failed(NamespaceIdentity(node), because: error)
            }
        }
        return (results.compactMap { $0 }, results.filter { $0 == nil }.count)
    }
}

extension NodeNamespace {
    /// Whether the namespace listed is no longer where it was found: its file is gone (the
    /// process exited, `ip netns del` unlinked it), or it holds something else — an
    /// `ip netns` file between its unmount and its unlink is an empty file of its own, a
    /// reused PID another namespace. Its failure then is churn, not the sweep's.
    var wentAway: Bool {
        guard let path = namespace.path else { return false }
        if let now = fileIdentity(path) { return now.inode != inode }
        // A file that cannot be looked at (EACCES) is a failure to report, not churn.
        return nothingIsAt(path)
    }
}

extension NamespaceIdentity {
    /// A swept namespace as monitoring labels it, with where it is on the node.
    public init(_ node: NodeNamespace) {
        self.init(
            netns: node.netnsLabel, pod: node.pod.label,
            place: NodePlace(
                netnsName: node.netnsName, podName: node.pod.name, podUID: node.pod.uid, podSource: node.pod.source,
                pid: node.pid, processCount: node.processCount, isHost: node.isHost))
    }
}

extension NamespaceResult {
    /// The result of a namespace that could not be diagnosed: the error's one line and
    /// its bounded reason.
    public static func failed(_ identity: NamespaceIdentity, because error: any Error) -> Self {
        .failed(identity, "\(error)", reason: FailureReason(classifying: error))
    }
}

extension FailureReason {
    /// The bounded reason an error stands for, for the export's failure label: the
    /// errno behind it, however the readers wrapped it.
    public init(classifying error: any Error) {
        switch error {
        case let error as NamespaceError:
            switch error {
            case .permissionDenied, .lookDenied: self = .permissionDenied
            case .noSuchProcess, .noSuchFile, .noSuchName: self = .namespaceGone
            case .notANetworkNamespace, .emptySpec: self = .other
            case .enterFailed: self = .kernelError
            }
        case ConntrackReadError.permissionDenied:
            self = .permissionDenied
        default:
            switch error.underlyingErrno {
            case .permissionDenied?, .notPermitted?: self = .permissionDenied
            case .noSuchFileOrDirectory?, .noSuchProcess?: self = .namespaceGone
            case .some: self = .kernelError
            case nil: self = .other
            }
        }
    }
}

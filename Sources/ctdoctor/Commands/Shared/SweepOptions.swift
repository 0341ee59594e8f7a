import ArgumentParser
import Diagnosis
import Export
import Formats
import JSON
import KernelIO
import Live
import NetCore
import NodeSweep
import Rendering

/// `--all-netns`, `--pod`, `--parallel`: diagnosing a node's namespaces from the node.
struct SweepOptions: ParsableArguments {
    @Flag(name: .customLong("all-netns"), help: "Diagnose every network namespace on the node (each process's, and those under /var/run/netns), named by their pods where the processes' files tell.")
    var allNetns = false

    @Option(help: ArgumentHelp("Diagnose the namespace of this pod only: NAME or NAMESPACE/NAME as the container runtime, HOSTNAME or /etc/hostname name it, or an ip netns name.", valueName: "pod"))
    var pod: String?

    @Option(help: "With --all-netns: how many namespaces to diagnose at once.")
    var parallel = 2

    var isActive: Bool { allNetns || pod != nil }

    func validate(with namespace: NamespaceOptions, inputs: InputOptions) throws {
        guard (1...64).contains(parallel) else { throw ValidationError("--parallel takes 1 to 64") }
        guard isActive else { return }
        if namespace.spec != nil { throw ValidationError("--all-netns and --pod find namespaces themselves; leave out --netns") }
        if inputs.isOffline { throw ValidationError("--all-netns and --pod read live namespaces; they cannot be combined with --from or copied tables") }
    }

    /// The namespaces to diagnose, every namespace of the node (to name where a proxy
    /// living outside its pod's namespace lives), and what could not be listed.
    func select() throws -> (namespaces: [NodeNamespace], everyNamespace: [NodeNamespace], notices: [String]) {
        let listing = try NodeInventory().namespaces()
        var notices: [String] = []
        if listing.unreadableProcesses > 0 {
            notices.append("\(listing.unreadableProcesses == 1 ? "1 process's namespace" : "\(listing.unreadableProcesses) processes' namespaces") could not be read (permission denied: other users' processes need CAP_SYS_PTRACE): namespaces only they hold are missing")
        }
        guard let pod else { return (listing.namespaces, listing.namespaces, notices) }
        let matching = listing.namespaces.filter { node in
            node.pod.name == pod || node.pod.name?.hasSuffix("/\(pod)") == true || node.netnsName == pod
        }
        guard !matching.isEmpty else {
            let known = listing.namespaces.compactMap { $0.pod.name ?? $0.netnsName }.sorted()
            throw CommandFailure("no pod named \(pod) among the node's \(listing.namespaces.count) network namespaces\(known.isEmpty ? "" : " (pods: \(known.prefix(8).joined(separator: ", "))\(known.count > 8 ? ", …" : ""))")")
        }
        guard matching.count == 1 else {
            throw CommandFailure("\(matching.count) namespaces match \(pod): \(matching.map { "\($0.pod.name ?? $0.displayName) (\($0.netnsLabel))" }.joined(separator: ", ")); give NAMESPACE/NAME")
        }
        return (matching, listing.namespaces, notices)
    }
}

extension NamespaceIdentity {
    /// A swept namespace as monitoring labels it, with where it is on the node.
    init(_ node: NodeNamespace) {
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
    static func failed(_ identity: NamespaceIdentity, because error: any Error) -> Self {
        .failed(identity, "\(error)", reason: ctdoctor.failureReason(of: error))
    }
}

/// The bounded reason an error stands for, for the export's failure label.
func failureReason(of error: any Error) -> FailureReason {
    switch error {
    case let error as NamespaceError:
        switch error {
        case .permissionDenied, .lookDenied: return .permissionDenied
        case .noSuchProcess, .noSuchFile, .noSuchName: return .namespaceGone
        case .notANetworkNamespace, .emptySpec: return .other
        case .enterFailed: return .kernelError
        }
    case ConntrackReadError.permissionDenied:
        return .permissionDenied
    default:
        // However the reader wrapped it (ConntrackReadError, SocketReadError, a netlink
        // error), the errno behind the failure decides.
        switch error.underlyingErrno {
        case .permissionDenied?, .notPermitted?: return .permissionDenied
        case .noSuchFileOrDirectory?, .noSuchProcess?: return .namespaceGone
        case .some: return .kernelError
        case nil: return .other
        }
    }
}

/// Diagnoses the selected namespaces, `parallel` at a time. Namespaces whose every
/// process exited meanwhile are dropped, with a notice: pods come and go.
func sweep(
    _ namespaces: [NodeNamespace], every: [NodeNamespace]? = nil, parallel: Int, options: DiagnosisOptions, notices: inout [String]
) throws -> [NamespaceResult] {
    // Where a proxy that lives outside its pod's namespace lives (ambient's ztunnel): the
    // pod of that namespace, by its net:[inode] label.
    let podByNamespace = Dictionary((every ?? namespaces).compactMap { node in node.pod.label.map { (node.netnsLabel, $0) } }, uniquingKeysWith: { first, _ in first })
    let results = try inParallel(namespaces, width: parallel) { node -> NamespaceResult? in
        do {
            var report = try LiveCollector.collectAndDiagnose(node.namespace, options: options, trace: Console.tracer)
            if let home = report.sidecar?.proxyNamespace, let pod = podByNamespace[home] {
                report.sidecar?.proxyPod = pod
                report.sidecar?.evidence += " (pod \(pod))"
            }
            return .diagnosed(NamespaceIdentity(node), report)
        } catch {
            if let path = node.namespace.path, fileKind(path) == .missing { return nil }
            return .failed(NamespaceIdentity(node), because: error)
        }
    }
    let vanished = results.filter { $0 == nil }.count
    if vanished > 0 { notices.append("\(vanished) namespaces went away during the sweep (their processes exited)") }
    return results.compactMap { $0 }
}

/// `diagnose`/`leaks`/`collisions` over many namespaces (or one pod's).
func runSweep(
    _ sweepOptions: SweepOptions, output: OutputOptions, arguments: DiagnosisArguments, sections: ReportParts
) throws {
    let options = try arguments.options()
    let failOn = arguments.failOn.severity
    let selection = try sweepOptions.select()
    var notices = selection.notices
    let results = try sweep(
        selection.namespaces, every: selection.everyNamespace, parallel: sweepOptions.parallel, options: options, notices: &notices)
    if sweepOptions.pod != nil, let only = results.first {
        // One pod asked for: its report, as --netns would print it.
        guard let report = only.report else { throw CommandFailure(only.failure ?? "the namespace could not be diagnosed") }
        try render(report, format: output.format, sections: sections, failOn: failOn)
        return
    }
    guard results.contains(where: { $0.report != nil }) || results.isEmpty else {
        throw CommandFailure("no namespace could be diagnosed: \(results.first?.failure ?? "")")
    }
    var out = OutputBuffer { try Console.writeOut(bytes: $0) }
    switch output.format {
    case .table:
        out.write(SweepRendering.human(results, sections: sections, notices: notices))
    case .json:
        out.write { SweepDocument.json(results, failOn: failOn, parts: sections, notices: notices).write(to: &$0); $0.append(0x0A) }
    case .ndjson:
        for record in SweepDocument.ndjson(results, failOn: failOn, parts: sections, notices: notices) {
            out.write { record.write(to: &$0); $0.append(0x0A) }
        }
    }
    try out.flush()
    if let failOn, results.contains(where: { $0.report.map { $0.findings(for: sections).contains { $0.severity >= failOn } } ?? false }) {
        throw ExitCode(ExitStatus.findings)
    }
}

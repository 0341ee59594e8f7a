import ArgumentParser
import Diagnosis
import Export
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

    /// The namespaces to diagnose, and what could not be listed.
    func select() throws -> (namespaces: [NodeNamespace], notices: [String]) {
        let listing = try NodeInventory().namespaces()
        var notices: [String] = []
        if listing.unreadableProcesses > 0 {
            notices.append("\(listing.unreadableProcesses == 1 ? "1 process's namespace" : "\(listing.unreadableProcesses) processes' namespaces") could not be read (permission denied: other users' processes need CAP_SYS_PTRACE): namespaces only they hold are missing")
        }
        guard let pod else { return (listing.namespaces, notices) }
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
        return (matching, notices)
    }
}

/// One namespace of a sweep: where it is on the node, and its result as the export
/// labels it (its diagnosis, or why there is none).
struct SweepResult: Sendable {
    var node: NodeNamespace
    var outcome: NamespaceResult

    var report: DiagnosisReport? { outcome.report }
    var failure: String? { outcome.failure }

    static func identity(of node: NodeNamespace) -> NamespaceIdentity {
        NamespaceIdentity(netns: node.netnsLabel, pod: node.pod.label)
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
func sweep(_ namespaces: [NodeNamespace], parallel: Int, options: DiagnosisOptions, notices: inout [String]) throws -> [SweepResult] {
    let results = try inParallel(namespaces, width: parallel) { node -> SweepResult? in
        do {
            let report = try LiveCollector.collectAndDiagnose(node.namespace, options: options)
            return SweepResult(node: node, outcome: .diagnosed(SweepResult.identity(of: node), report))
        } catch {
            if let path = node.namespace.path, fileKind(path) == .missing { return nil }
            return SweepResult(node: node, outcome: .failed(SweepResult.identity(of: node), because: error))
        }
    }
    let vanished = results.filter { $0 == nil }.count
    if vanished > 0 { notices.append("\(vanished) namespaces went away during the sweep (their processes exited)") }
    return results.compactMap { $0 }
}

/// Renders a sweep: a summary line per namespace, then the findings of those with any;
/// JSON `ctdoctor.sweep.v1`; ndjson one record per namespace and a summary.
enum SweepRendering {
    static let schema = "ctdoctor.sweep.v1"

    static func counts(_ report: DiagnosisReport) -> (leaked: Int, atRisk: Int, stalled: Int) {
        (report.leaks.filter { $0.classification == .leaked }.count, report.leaks.filter { $0.classification == .atRisk }.count,
         report.stalls.reduce(0) { $0 + $1.connections.count })
    }

    static func record(_ result: SweepResult, failOn: Severity?, sections: DiagnosisRendering.Sections, full: Bool) -> JSONValue {
        let node = result.node
        var members: [(String, JSONValue)] = [
            ("netns", .string(node.netnsLabel)), ("netns_name", .string(node.netnsName)), ("pod", .string(node.pod.name)),
            ("pod_uid", .string(node.pod.uid)), ("pod_source", .string(node.pod.source)), ("pid", .integer(node.pid)),
            ("processes", .integer(node.processCount)), ("host", .bool(node.isHost)), ("error", .string(result.failure)),
        ]
        if full {
            members.append(("diagnosis", result.report.map { DiagnosisRendering.json($0, failOn: failOn, sections: sections) } ?? .null))
        } else {
            let report = result.report
            let (leaked, atRisk, stalled) = report.map(counts) ?? (0, 0, 0)
            members = [("kind", .string("namespace"))] + members + [
                ("sidecar", .string(report?.sidecar?.profile.mesh.rawValue)), ("verdict", .string(report?.verdict)),
                ("worst_severity", .string(report.flatMap { DiagnosisRendering.relevantFindings($0, sections).map(\.severity).max()?.name })),
                ("leaked", .integer(leaked)), ("at_risk", .integer(atRisk)), ("stalled", .integer(stalled)),
            ]
        }
        return .object(members)
    }

    static func summary(_ results: [SweepResult], sections: DiagnosisRendering.Sections) -> [(String, JSONValue)] {
        let reports = results.compactMap(\.report)
        let totals = reports.map(counts).reduce((0, 0, 0)) { ($0.0 + $1.leaked, $0.1 + $1.atRisk, $0.2 + $1.stalled) }
        return [
            ("namespaces", .integer(results.count)), ("diagnosed", .integer(reports.count)),
            ("failed", .integer(results.count - reports.count)),
            ("with_sidecar", .integer(reports.filter { $0.sidecar != nil }.count)),
            ("leaked", .integer(totals.0)), ("at_risk", .integer(totals.1)), ("stalled", .integer(totals.2)),
            ("worst_severity", .string(reports.flatMap { DiagnosisRendering.relevantFindings($0, sections) }.map(\.severity).max()?.name)),
        ]
    }

    static func human(_ results: [SweepResult], sections: DiagnosisRendering.Sections, notices: [String]) -> String {
        let withSidecar = results.filter { $0.report?.sidecar != nil }.count
        var out = "Node sweep: \(results.count) network namespaces, \(withSidecar) with a sidecar\n\n"
        var table = TextTable([
            .init("Namespace"), .init("Pod"), .init("Sidecar"), .init("Leaked", .right), .init("At risk", .right),
            .init("Stalled", .right), .init("Worst"), .init("Verdict"),
        ])
        for result in results {
            let node = result.node
            let name = node.netnsName ?? (node.isHost ? "host" : node.netnsLabel)
            guard let report = result.report else {
                table.append([name, node.pod.label ?? "-", "?", "", "", "", "failed", result.failure ?? ""])
                continue
            }
            let (leaked, atRisk, stalled) = counts(report)
            let worst = DiagnosisRendering.relevantFindings(report, sections).map(\.severity).max()
            table.append([
                name, node.pod.label ?? "-", report.sidecar?.profile.mesh.rawValue ?? "-", String(leaked), String(atRisk),
                String(stalled), worst?.name ?? "-", report.verdict,
            ])
        }
        out += table.render() + "\n"
        for result in results {
            guard let report = result.report, report.sidecar != nil,
                !DiagnosisRendering.relevantFindings(report, sections).isEmpty
            else { continue }
            out += "\n── \(result.node.displayName.terminalSafe) (\(result.node.netnsLabel))\n"
            out += DiagnosisRendering.human(report, sections: sections, color: false)
        }
        if !notices.isEmpty { out += "\nNotices\n" + notices.map { "  - \($0.terminalSafe)\n" }.joined() }
        return out
    }
}

/// `diagnose`/`leaks`/`collisions` over many namespaces (or one pod's).
func runSweep(
    _ sweepOptions: SweepOptions, output: OutputOptions, arguments: DiagnosisArguments, sections: DiagnosisRendering.Sections
) throws {
    let options = try arguments.options()
    let failOn = arguments.failOn.severity
    let selection = try sweepOptions.select()
    var notices = selection.notices
    let results = try sweep(selection.namespaces, parallel: sweepOptions.parallel, options: options, notices: &notices)
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
        let document = JSONValue.object([
            ("schema", .string(SweepRendering.schema)), ("fail_on", .string(failOn?.name ?? "never")),
            ("namespaces", .array(results.map { SweepRendering.record($0, failOn: failOn, sections: sections, full: true) })),
            ("summary", .object(SweepRendering.summary(results, sections: sections))), ("notices", .strings(notices)),
        ])
        out.write { document.write(to: &$0); $0.append(0x0A) }
    case .ndjson:
        for result in results {
            out.write { SweepRendering.record(result, failOn: failOn, sections: sections, full: false).write(to: &$0); $0.append(0x0A) }
        }
        let summary = JSONValue.object([("kind", .string("summary"))] + SweepRendering.summary(results, sections: sections) + [("notices", .strings(notices))])
        out.write { summary.write(to: &$0); $0.append(0x0A) }
    }
    try out.flush()
    if let failOn, results.contains(where: { $0.report.map { DiagnosisRendering.relevantFindings($0, sections).contains { $0.severity >= failOn } } ?? false }) {
        throw ExitCode(ExitStatus.findings)
    }
}

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
        let matching = namespaces(ofPod: pod, in: listing.namespaces)
        guard !matching.isEmpty else { throw noSuchPod(pod, among: listing.namespaces) }
        guard matching.count == 1 else {
            throw CommandFailure("\(matching.count) namespaces match \(pod): \(matching.map { "\($0.pod.name ?? $0.displayName) (\($0.netnsLabel))" }.joined(separator: ", ")); give NAMESPACE/NAME")
        }
        return (matching, listing.namespaces, notices)
    }
}

/// Diagnoses the selected namespaces (`NodeDiagnosisSweep`); namespaces that went away
/// meanwhile are dropped, with a notice.
func sweep(
    _ namespaces: [NodeNamespace], every: [NodeNamespace]? = nil, parallel: Int, options: DiagnosisOptions, notices: inout [String]
) throws -> [NamespaceResult] {
    let (results, vanished) = try NodeDiagnosisSweep.run(namespaces, every: every, parallel: parallel, options: options, trace: Console.tracer)
    if vanished > 0 { notices.append("\(vanished) namespaces went away during the sweep (their processes exited)") }
    return results
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

/// The one-line failure for a pod the node does not have, with the pods it does.
func noSuchPod(_ pod: String, among listing: [NodeNamespace]) -> CommandFailure {
    let known = listing.compactMap { $0.pod.name ?? $0.netnsName }.sorted()
    return CommandFailure("no pod named \(pod) among the node's \(listing.count) network namespaces\(known.isEmpty ? "" : " (pods: \(known.prefix(8).joined(separator: ", "))\(known.count > 8 ? ", …" : ""))")")
}

/// The namespaces of `pod`: NAME or NAMESPACE/NAME as the runtime names it, or an ip
/// netns name.
func namespaces(ofPod pod: String, in listing: [NodeNamespace]) -> [NodeNamespace] {
    listing.filter { node in node.pod.name == pod || node.pod.name?.hasSuffix("/\(pod)") == true || node.netnsName == pod }
}

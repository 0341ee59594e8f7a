import ArgumentParser
import Conntrack
import Diagnosis
import Formats
import JSON
import KernelIO
import Live
import NetCore
import Rendering
import Sockets

/// `leaks --reap`: destroying the sidecar sockets that are certainly leaked.
struct ReapOptions: ParsableArguments {
    @Flag(help: "Destroy leaked sidecar sockets (SOCK_DESTROY), after re-verifying each one; a dry run unless --yes.")
    var reap = false

    @Flag(help: "With --reap: really destroy them.")
    var yes = false

    @Option(name: .customLong("min-idle"), help: ArgumentHelp("With --reap: only sockets idle at least this long.", valueName: "duration"))
    var minIdle = "120s"

    func minimumIdleMilliseconds() throws -> UInt64 {
        guard let seconds = durationSeconds(minIdle), seconds >= 0 else {
            throw ValidationError("--min-idle takes a duration such as 120s or 5m, not '\(minIdle)'")
        }
        return UInt64(saturating: seconds * 1000)
    }

    func validate(sweep: SweepOptions, inputs: InputOptions) throws {
        guard reap else {
            if yes { throw ValidationError("--yes confirms --reap; give both") }
            return
        }
        _ = try minimumIdleMilliseconds()
        if inputs.isOffline { throw ValidationError("--reap acts on live sockets; it cannot be combined with --from or copied tables") }
        if sweep.isActive { throw ValidationError("--reap works on one namespace at a time: use --netns") }
    }
}

/// Diagnoses, then reaps (`LeakReaper`), each action logged on standard error. Exit 0
/// when every qualifying socket was destroyed (or there was none), 1 when some remain (a
/// dry run, or skipped), 2 when a destroy failed.
func runReap(_ reap: ReapOptions, namespace: NamespaceOptions, output: OutputOptions, arguments: DiagnosisArguments) throws {
    let options = try arguments.options()
    let minimumIdle = try reap.minimumIdleMilliseconds()
    let target = try namespace.resolve()
    let report = try timed("collect and diagnose") {
        try LiveCollector.collectAndDiagnose(target, options: options, trace: Console.tracer)
    }
    let outcomes = try LeakReaper(namespace: target, minimumIdleMilliseconds: minimumIdle, destroys: reap.yes).reap(report) {
        log.notice("\($0.logLine)")
    }
    let minimumIdleSeconds = minimumIdle / 1000
    var out = OutputBuffer { try Console.writeOut(bytes: $0) }
    switch output.format {
    case .table:
        out.write(ReapRendering.human(outcomes, dryRun: !reap.yes, minimumIdleSeconds: minimumIdleSeconds))
        report.notices.forEach { log.warning("\($0)") }
    case .json:
        let document = ReapDocument.json(outcomes, namespace: report.namespace, dryRun: !reap.yes, minimumIdleSeconds: minimumIdleSeconds, notices: report.notices)
        out.write { document.write(to: &$0); $0.append(0x0A) }
    case .ndjson:
        for line in ReapDocument.ndjson(outcomes, dryRun: !reap.yes, minimumIdleSeconds: minimumIdleSeconds) {
            out.write { line.write(to: &$0); $0.append(0x0A) }
        }
    }
    try out.flush()
    if let failed = outcomes.first(where: { $0.result == .failed }) {
        throw CommandFailure(failed.detail, cause: failed.cause)
    }
    if outcomes.contains(where: { $0.result != .destroyed }) { throw ExitCode(ExitStatus.findings) }
}

import ArgumentParser
import Diagnosis
import Formats
import JSON
import KernelIO
import Live
import Rendering

/// Collects, diagnoses, renders; exits 1 when findings reach --fail-on.
func runDiagnosis(
    namespace: NamespaceOptions, inputs: InputOptions, sweep: SweepOptions, output: OutputOptions, arguments: DiagnosisArguments,
    sections: ReportParts
) throws {
    if sweep.isActive {
        try runSweep(sweep, output: output, arguments: arguments, sections: sections)
        return
    }
    let options = try arguments.options()
    let failOn = arguments.failOn.severity
    let report = try diagnose(namespace: namespace, inputs: inputs, options: options)
    try timed("render") { try render(report, format: output.format, sections: sections, failOn: failOn) }
}

/// Collects a live namespace's facts, at the cost of its suspects; the phases' times go
/// to the tracer.
func collectLive(_ target: NetworkNamespace, options: DiagnosisOptions) throws -> DiagnosisInput {
    try timed("collect (all phases)") {
        try LiveCollector(namespace: target, trace: Console.tracer).collect(for: options)
    }
}

/// Diagnoses what `inputs` name: a live namespace, a snapshot or copied tables.
func diagnose(namespace: NamespaceOptions, inputs: InputOptions, options: DiagnosisOptions) throws -> DiagnosisReport {
    let input = try inputs.load(namespace: namespace, options: options)
    return timed("diagnose") { Diagnosis.diagnose(input, options: options) }
}

/// Runs `body`, reporting its wall time under `name` when CTDOCTOR_TRACE is set.
func timed<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
    let start = ContinuousClock.now
    defer { Console.tracer?(name, ContinuousClock.now - start) }
    return try body()
}

/// Prints a report and turns its findings into the exit status.
func render(_ report: DiagnosisReport, format: OutputFormat, sections: ReportParts, failOn: Severity?) throws {
    var out = OutputBuffer { try Console.writeOut(bytes: $0) }
    switch format {
    case .table:
        out.write(DiagnosisRendering.human(report, sections: sections, color: Console.colorful))
        report.notices.forEach { log.warning("\($0)") }
    case .json:
        out.write { DiagnosisDocument.json(report, failOn: failOn, parts: sections).write(to: &$0); $0.append(0x0A) }
    case .ndjson:
        for record in DiagnosisDocument.ndjson(report, failOn: failOn) {
            out.write { record.write(to: &$0); $0.append(0x0A) }
        }
    }
    try out.flush()
    let relevant = report.findings(for: sections)
    if let failOn, relevant.contains(where: { $0.severity >= failOn }) {
        throw ExitCode(ExitStatus.findings)
    }
}

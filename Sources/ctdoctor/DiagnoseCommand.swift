import ArgumentParser
import Diagnosis
import KernelIO
import Live
import Rendering

struct DiagnoseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Find sidecar sockets leaked by half-closes, the ports they poison, whether this kernel recovers from the collisions, and stalled server-first connections.",
        discussion: """
            Looks at every sidecar socket left in FIN_WAIT2 on a capture port, finds its flow in \
            conntrack by the reply tuple, and classifies it: leaked (conntrack forgot the flow: the \
            app's FIN can no longer reach the proxy), at risk (conntrack forgets it before the proxy \
            does), or healthy. Leaked sockets poison the app's ephemeral ports; diagnose predicts \
            the collisions and audits the kernel and sysctls that decide whether a collision fails \
            or recovers. Connections a capture port accepted that carried no byte either way for \
            --stall-after are grouped by the port the client dialled: on a server-first port \
            (SMTP, MySQL, NATS, FTP… or --server-first) that is the sidecar's protocol detection \
            waiting for the client while the client waits for the greeting. Every finding comes \
            with its evidence and the fix for this kernel and mesh.

            Exit status: 0 no finding at or above --fail-on; 1 findings; 2 error. JSON schema \
            ctdoctor.diagnosis.v1 is documented in README under "JSON output".

            Examples:
              ctdoctor diagnose
              ctdoctor diagnose --netns 4242 --format json
              ctdoctor diagnose --sidecar linkerd --fail-on error
              ctdoctor diagnose --stall-after 30s --server-first 7000/legacy-rpc
            """
    )

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var inputs: InputOptions
    @OptionGroup var sweep: SweepOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var diagnosis: DiagnosisArguments

    func validate() throws {
        try inputs.validate(with: namespace)
        try sweep.validate(with: namespace, inputs: inputs)
    }

    func run() throws {
        try runDiagnosis(namespace: namespace, inputs: inputs, sweep: sweep, output: output, arguments: diagnosis, sections: .all)
    }
}

struct LeaksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leaks",
        abstract: "List sidecar sockets stuck in FIN_WAIT2 after a half-close: leaked, at risk or healthy.",
        discussion: """
            The leak part of diagnose: each FIN_WAIT2 socket on a capture port with its flow's \
            conntrack entry (or its absence), the app's end of the flow, the original \
            destination, the owning process, its idle time and when the proxy's idle timeout \
            will close it. Exit status as diagnose; JSON schema ctdoctor.leaks.v1.

            --reap destroys the sockets classified leaked (SOCK_DESTROY over sock_diag; needs \
            CAP_NET_ADMIN), and nothing else: each is read again right before, by its tuple and \
            cookie, and must still be the same socket (inode, cookie), in FIN_WAIT2 on a capture \
            port, without a conntrack entry, idle at least --min-idle (default 120s). Without \
            --yes it is a dry run that says what it would destroy. Every action is logged on \
            standard error. The proxy sees ECONNABORTED on that connection and closes it. Exit \
            0 when every qualifying socket was destroyed (or none qualified), 1 when some remain \
            (dry run, or skipped), 2 when a destroy failed. JSON schema ctdoctor.reap.v1.

            Examples:
              ctdoctor leaks
              ctdoctor leaks --netns 4242 --idle-timeout 30m --format json
              ctdoctor leaks --netns 4242 --reap              # dry run
              ctdoctor leaks --netns 4242 --reap --yes --min-idle 10m
            """
    )

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var inputs: InputOptions
    @OptionGroup var sweep: SweepOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var diagnosis: DiagnosisArguments
    @OptionGroup(title: "Reclaiming leaked sockets") var reap: ReapOptions

    func validate() throws {
        try inputs.validate(with: namespace)
        try sweep.validate(with: namespace, inputs: inputs)
        try reap.validate(sweep: sweep, inputs: inputs)
    }

    func run() throws {
        if reap.reap { return try runReap(reap, namespace: namespace, output: output, arguments: diagnosis) }
        try runDiagnosis(namespace: namespace, inputs: inputs, sweep: sweep, output: output, arguments: diagnosis, sections: [.findings, .leaks])
    }
}

struct CollisionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collisions",
        abstract: "Predict ephemeral-port collisions with leaked sidecar sockets, and detect live ones.",
        discussion: """
            Poisoned ports are the leaked sockets' peer ports inside ip_local_port_range, less the \
            reserved ones, split by the parity connect() tries first. For each source address: how \
            many, the share of first-pass ports they take, and the expected number of colliding \
            connects before the leaks end, with the model and its assumptions. Live collisions are \
            SYN_SENT conntrack entries on a leaked socket's tuple; TcpExtTCPChallengeACK, \
            TCPSYNChallenge and TCPSynRetrans are shown. Exit status as diagnose; JSON schema \
            ctdoctor.collisions.v1.

            Examples:
              ctdoctor collisions --connect-rate 50
              ctdoctor collisions --netns 4242 --format json
            """
    )

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var inputs: InputOptions
    @OptionGroup var sweep: SweepOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var diagnosis: DiagnosisArguments

    func validate() throws {
        try inputs.validate(with: namespace)
        try sweep.validate(with: namespace, inputs: inputs)
    }

    func run() throws {
        try runDiagnosis(namespace: namespace, inputs: inputs, sweep: sweep, output: output, arguments: diagnosis, sections: [.findings, .collisions, .kernel])
    }
}

/// Collects, diagnoses, renders; exits 1 when findings reach --fail-on.
func runDiagnosis(
    namespace: NamespaceOptions, inputs: InputOptions, sweep: SweepOptions, output: OutputOptions, arguments: DiagnosisArguments,
    sections: DiagnosisRendering.Sections
) throws {
    if sweep.isActive {
        try runSweep(sweep, output: output, arguments: arguments, sections: sections)
        return
    }
    let options = try arguments.options()
    let failOn = try arguments.failThreshold()
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
func render(_ report: DiagnosisReport, format: OutputFormat, sections: DiagnosisRendering.Sections, failOn: Severity?) throws {
    var out = OutputBuffer { try Console.writeOut(bytes: $0) }
    switch format {
    case .table:
        out.write(DiagnosisRendering.human(report, sections: sections, color: Console.colorful))
        report.notices.forEach { log.warning("\($0)") }
    case .json:
        out.write { DiagnosisRendering.json(report, failOn: failOn, sections: sections).write(to: &$0); $0.append(0x0A) }
    case .ndjson:
        for record in DiagnosisRendering.ndjson(report, failOn: failOn) {
            out.write { record.write(to: &$0); $0.append(0x0A) }
        }
    }
    try out.flush()
    let relevant = DiagnosisRendering.relevantFindings(report, sections)
    if let failOn, relevant.contains(where: { $0.severity >= failOn }) {
        throw ExitCode(ExitStatus.findings)
    }
}

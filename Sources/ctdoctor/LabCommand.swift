import ArgumentParser
import Collector
import Diagnosis
import Dispatch
import Glibc
import KernelIO
import Lab
import Rendering

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Reproduce the sidecar half-close leak or a port collision in a throwaway namespace, then diagnose it.",
        discussion: """
            Builds a network namespace shaped like a meshed pod: iptables REDIRECTs the app's \
            connections to a sidecar-like proxy on 15001 that forwards half-closes with \
            shutdown(SHUT_WR), an upstream that closes first, and an app that closes late. The \
            namespace's nf_conntrack_tcp_timeout_close_wait is shortened (--close-wait) so the \
            leak forms in seconds. Then ctdoctor diagnoses the namespace and checks its answer \
            against what the lab built: exit 0 when they agree, 1 when not. Needs root; removes \
            the namespace afterwards unless --keep.

            half-close: leaked, at-risk and healthy half-closes next to established connections.
            collision: a leak, then a connect from the leaked socket's port: on this kernel it \
            recovers after a SYN retransmit, or, with --emulate-old-kernel, times out as on a \
            kernel without the v6.2 conntrack fix.

            Examples:
              ctdoctor lab half-close
              ctdoctor lab collision --emulate-old-kernel
              ctdoctor lab half-close --keep        # then explore with --netns ctd-lab-…
            """
    )

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case halfClose = "half-close"
        case collision
    }

    @Argument(help: "half-close or collision.") var scenario: Scenario
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("close-wait"), help: "nf_conntrack_tcp_timeout_close_wait inside the lab, seconds (the kernel default is 60).")
    var closeWait = 3

    @Flag(help: "Keep the namespace and its sockets until Enter is pressed, for exploring with --netns.")
    var keep = false

    @Flag(name: .customLong("emulate-old-kernel"), help: "collision: drop the app's RST before conntrack, as a kernel without the v6.2 fix would.")
    var emulateOldKernel = false

    @Option(name: .customLong("connect-timeout"), help: "collision: seconds before the colliding connect() gives up.")
    var connectTimeout = 4

    @OptionGroup var diagnosis: DiagnosisArguments

    func validate() throws {
        guard (1...600).contains(closeWait) else { throw ValidationError("--close-wait takes 1 to 600 seconds") }
        guard (1...120).contains(connectTimeout) else { throw ValidationError("--connect-timeout takes 1 to 120 seconds") }
        if emulateOldKernel && scenario != .collision {
            throw ValidationError("--emulate-old-kernel applies to the collision scenario only")
        }
    }

    func run() throws {
        guard getuid() == 0 else {
            throw CommandFailure("the lab creates a network namespace and iptables rules: run it as root")
        }
        let narrate = output.format == .table
        let say: @Sendable (String) -> Void = { line in if narrate { Console.writeOut("lab: \(line)\n") } }
        let name = "ctd-lab-\(scenario.rawValue)-\(getpid())"
        let lab = try HalfCloseLab(name: name, closeWaitSeconds: closeWait, say: say)
        let cleanup = Cleanup.register { lab.tearDown() }
        defer {
            lab.tearDown()
            Cleanup.unregister(cleanup)
        }
        let options = try diagnosis.options()
        let failOn = try diagnosis.failThreshold()
        let namespace = lab.lab.namespace
        let diagnose: @Sendable () throws -> DiagnosisReport = {
            Diagnosis.diagnose(try LiveCollector(namespace: namespace).collect(profile: options.sidecar), options: options)
        }

        var attempt: CollisionAttempt?
        switch scenario {
        case .halfClose:
            try lab.build()
        case .collision:
            attempt = try lab.collide(emulateOldKernel: emulateOldKernel, timeoutSeconds: connectTimeout, diagnose: diagnose)
        }
        let report = try diagnose()
        var problems = lab.check(report)
        if let attempt {
            // On a kernel that recovers, the collision resets the leaked socket; what
            // matters then is that it was seen while it happened.
            if attempt.connected { problems = problems.filter { !$0.contains("leaked, then collided with") } }
            if let during = attempt.duringAttempt, !attempt.connected, during.collisions.liveCollisions.isEmpty {
                problems.append("the diagnosis taken during the colliding connect did not see it")
            }
        }

        switch output.format {
        case .table:
            if let attempt, let during = attempt.duringAttempt {
                Console.writeOut("\nlab: diagnosis taken while the app was connecting from port \(attempt.port):\n")
                Console.writeOut(DiagnosisRendering.human(during, sections: [.findings], color: Console.colorful))
                Console.writeOut("\nlab: counters during the attempt: "
                    + attempt.counterDeltas.sorted { $0.key < $1.key }.map { "\($0.key) +\($0.value)" }.joined(separator: ", ") + "\n")
            }
            Console.writeOut("\nlab: diagnosis of \(name) now:\n")
            Console.writeOut(DiagnosisRendering.human(report, color: Console.colorful))
            Console.writeOut(problems.isEmpty
                ? "\nlab: the diagnosis matches what the lab built.\n"
                : "\nlab: the diagnosis does NOT match what the lab built:\n" + problems.map { "  - \($0)\n" }.joined())
        case .json, .ndjson:
            let document = JSONValue.object([
                ("schema", .string("ctdoctor.lab.v1")),
                ("scenario", .string(scenario.rawValue)),
                ("namespace", .string(name)),
                ("close_wait_seconds", .integer(Int64(closeWait))),
                ("flows", .array(lab.flows.map { flow in
                    .object([("name", .string(flow.name)), ("app_port", .integer(Int64(flow.appPort))),
                             ("expected", .string(flow.expected?.rawValue))])
                })),
                ("collision", attempt.map { attempt in
                    .object([
                        ("port", .integer(Int64(attempt.port))), ("connected", .bool(attempt.connected)),
                        ("seconds", .number(attempt.seconds)), ("error", .string(attempt.error)),
                        ("counter_deltas", .object(attempt.counterDeltas.sorted { $0.key < $1.key }.map { ($0.key, .integer(Int64($0.value))) })),
                        ("diagnosis_during", attempt.duringAttempt.map { DiagnosisRendering.json($0, failOn: failOn) } ?? .null),
                    ])
                } ?? .null),
                ("diagnosis", DiagnosisRendering.json(report, failOn: failOn)),
                ("matches", .bool(problems.isEmpty)),
                ("problems", .strings(problems)),
            ])
            Console.writeOut(document.text + "\n")
        }
        if keep {
            Console.writeError("ctdoctor: lab namespace \(name) kept; explore with `ctdoctor diagnose --netns \(name)` or `ip netns exec \(name) ss -tanpo`. Press Enter to remove it.\n")
            _ = readLine()
        }
        if !problems.isEmpty { throw ExitCode(ExitStatus.findings) }
    }
}

/// A failure a command reports in one line, naming its cause.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

import ArgumentParser
import Diagnosis
import Dispatch
import Formats
import Glibc
import JSON
import KernelIO
import Lab
import Live
import Pressure
import Rendering

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Reproduce a half-close leak, a port collision or a server-first stall in a throwaway namespace, then diagnose it.",
        discussion: """
            Builds a network namespace shaped like a meshed pod: iptables REDIRECTs the app's \
            connections to a sidecar-like proxy on 15001 that forwards half-closes with \
            shutdown(SHUT_WR), an upstream that closes first, and an app that closes late. The \
            namespace's nf_conntrack_tcp_timeout_close_wait is shortened (--close-wait) so the \
            leak forms in seconds. Then ctdoctor diagnoses the namespace and checks its answer \
            against what the lab built: exit 0 when they agree, 1 when not. Needs root; removes \
            the namespace afterwards unless --keep.

            half-close: leaked, at-risk and healthy half-closes next to established connections.
            inbound-collision: a pod whose PREROUTING REDIRECTs ports 8080 and 9090 to 15006, \
            a client in a veth peer namespace: a leak on 15006, a clash NAT resolves by moving \
            a client port, and a connect that the funnel sends onto the leaked socket, \
            diagnosed while it is in flight (--emulate-old-kernel: it then times out).
            ambient: the same flows in Istio ambient's shape: listeners on 15001, 15006 and \
            15008 (HBONE) held by a process of another namespace, as ztunnel holds them; \
            diagnose must name the mesh ambient and the proxy's namespace as foreign.
            collision: a leak, then a connect from the leaked socket's port: on this kernel it \
            recovers after a SYN retransmit, or, with --emulate-old-kernel, times out as on a \
            kernel without the v6.2 conntrack fix.
            collision-rate: --leaks real leaks (their ports picked by connect(), as an app's \
            are), then --connects captured connects whose ports the kernel picks, to many \
            destinations and to one; counts the connects that picked a leaked port and those \
            that collided, beside what the collision model expects (README, "Collision \
            model"). The app's RSTs are dropped as a pre-6.2 kernel judges them, so a \
            collision does not end its leak.
            server-first: an SMTP server that greets first, behind a proxy that waits for the \
            client's bytes to detect the protocol (--mesh istio: forever; linkerd: 10 s), on \
            port 25, and declared TCP on 2525. ctdoctor diagnoses while port 25 is stalled \
            (--stall-after, default here 2 s), then the lab waits for the greeting to show \
            how the stall ends.

            Examples:
              ctdoctor lab half-close
              ctdoctor lab ambient
              ctdoctor lab collision --emulate-old-kernel
              ctdoctor lab collision-rate --leaks 40 --connects 1000
              ctdoctor lab inbound-collision
              ctdoctor lab server-first --mesh linkerd
              ctdoctor lab half-close --keep        # then explore with --netns ctd-lab-…
            """
    )

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case halfClose = "half-close"
        case ambient
        case collision
        case collisionRate = "collision-rate"
        case inboundCollision = "inbound-collision"
        case serverFirst = "server-first"
        case pressure
    }

    /// The inbound-collision lab's client namespace, named so a later lab removes it when
    /// the ctdoctor that made it was killed.
    static let clientNamespaceKind = "inbound-client"

    @Argument(help: "half-close, ambient, collision, collision-rate, inbound-collision, server-first or pressure.") var scenario: Scenario
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("close-wait"), help: "nf_conntrack_tcp_timeout_close_wait inside the lab, seconds (the kernel default is 60).")
    var closeWait = 3

    @Flag(help: "Keep the namespace and its sockets until Enter is pressed, for exploring with --netns.")
    var keep = false

    @Flag(name: .customLong("emulate-old-kernel"), help: "collision: drop the app's RST before conntrack, as a kernel without the v6.2 fix would.")
    var emulateOldKernel = false

    @Option(name: .customLong("connect-timeout"), help: "collision: seconds before the colliding connect() gives up.")
    var connectTimeout = 4

    @Option(help: "server-first: whose protocol detection the lab's proxy imitates (istio or linkerd).")
    var mesh: ServerFirstLab.Mesh = .istio

    @Option(help: "collision-rate: leaked sockets to make.")
    var leaks = 40

    @Option(help: "collision-rate: captured connects per destination pattern.")
    var connects = 1000

    @OptionGroup var diagnosis: DiagnosisArguments

    func validate() throws {
        guard (1...600).contains(closeWait) else { throw ValidationError("--close-wait takes 1 to 600 seconds") }
        guard (1...120).contains(connectTimeout) else { throw ValidationError("--connect-timeout takes 1 to 120 seconds") }
        if emulateOldKernel && scenario != .collision && scenario != .inboundCollision {
            throw ValidationError("--emulate-old-kernel applies to the collision and inbound-collision scenarios only")
        }
        guard (1...400).contains(leaks) else { throw ValidationError("--leaks takes 1 to 400 (the lab's port range holds 500 first-pass ports)") }
        guard (1...100_000).contains(connects) else { throw ValidationError("--connects takes 1 to 100000") }
        if mesh != .istio && scenario != .serverFirst {
            throw ValidationError("--mesh applies to the server-first scenario only")
        }
    }

    func run() throws {
        guard getuid() == 0 else {
            throw CommandFailure("the lab creates a network namespace and iptables rules: run it as root")
        }
        let narrate = output.format == .table
        let say: @Sendable (String) -> Void = { line in if narrate { Console.writeOut("lab: \(line)\n") } }
        for stale in LabNamespace.removeStale(scenarios: Scenario.allCases.map(\.rawValue) + [Self.clientNamespaceKind]) {
            log.notice("removed the stale lab namespace \(stale): the ctdoctor that made it is gone")
        }
        let name = "ctd-lab-\(scenario.rawValue)-\(getpid())"
        var options = try diagnosis.options()
        let outcome: Outcome
        switch scenario {
        case .halfClose, .collision, .ambient:
            let lab = try HalfCloseLab(name: name, closeWaitSeconds: closeWait, ambient: scenario == .ambient, say: say)
            outcome = try whileRegistered(tearDown: lab.tearDown, { try halfClose(lab, options: options) }, report: emit)
        case .collisionRate:
            outcome = try collisionRate(name: name, options: options, say: say)
        case .inboundCollision:
            let lab = try InboundCollisionLab(
                name: name, clientName: "ctd-lab-\(Self.clientNamespaceKind)-\(getpid())", closeWaitSeconds: closeWait, say: say)
            outcome = try whileRegistered(tearDown: lab.tearDown, { try inboundCollision(lab, options: options) }, report: emit)
        case .serverFirst:
            if diagnosis.stallAfter == nil { options.stallAfterSeconds = 2 }
            if options.sidecar == nil { options.sidecar = mesh.profile }
            let lab = try ServerFirstLab(name: name, mesh: mesh, say: say)
            outcome = try whileRegistered(tearDown: lab.tearDown, { try serverFirst(lab, options: options) }, report: emit)
        case .pressure:
            let lab = try PressureLab(name: name, say: say)
            let problems = try whileRegistered(tearDown: lab.tearDown) { try pressure(lab, name: name, say: say) }
            if !problems.isEmpty { throw ExitCode(ExitStatus.findings) }
            return
        }
        if !outcome.problems.isEmpty { throw ExitCode(ExitStatus.findings) }
    }

    /// What a scenario found, for the report.
    struct Outcome {
        var report: DiagnosisReport
        var problems: [String]
        var flows: [JSONValue]
        var extra: [(String, JSONValue)] = []
    }

    /// Runs `body` with `tearDown` registered for signals, then tears down; the report
    /// is written (and --keep honoured) before the namespace goes.
    func whileRegistered<Result>(
        tearDown: @escaping @Sendable () -> Void, _ body: () throws -> Result, report: (Result) -> Void = { _ in }
    ) throws -> Result {
        let cleanup = Cleanup.register(tearDown)
        defer {
            tearDown()
            Cleanup.unregister(cleanup)
        }
        let outcome = try body()
        report(outcome)
        if keep {
            let name = "ctd-lab-\(scenario.rawValue)-\(getpid())"
            Console.writeError("ctdoctor: lab namespace \(name) kept; explore with `ctdoctor diagnose --netns \(name)` or `ip netns exec \(name) ss -tanpo`. Press Enter to remove it.\n")
            _ = readLine()
        }
        return outcome
    }

    static func diagnosis(of lab: LabNamespace, options: DiagnosisOptions) -> @Sendable () throws -> DiagnosisReport {
        let namespace = lab.namespace
        return {
            try LiveCollector.collectAndDiagnose(namespace, options: options)
        }
    }

    func halfClose(_ lab: HalfCloseLab, options: DiagnosisOptions) throws -> Outcome {
        let diagnose = Self.diagnosis(of: lab.lab, options: options)
        var attempt: CollisionAttempt?
        if scenario == .collision {
            attempt = try lab.collide(emulateOldKernel: emulateOldKernel, timeoutSeconds: connectTimeout, diagnose: diagnose)
        } else {
            try lab.build()
        }
        let report = try diagnose()
        // On a kernel that recovers, the collision resets the leaked socket; what matters
        // then is that it was seen while it happened.
        var problems = lab.check(report, collisionRecovered: attempt?.connected ?? false)
        if let attempt {
            if let during = attempt.duringAttempt, !attempt.connected, during.collisions.liveCollisions.isEmpty {
                problems.append("the diagnosis taken during the colliding connect did not see it")
            }
        }
        if let attempt, let during = attempt.duringAttempt, output.format == .table {
            Console.writeOut("\nlab: diagnosis taken while the app was connecting from port \(attempt.port):\n")
            Console.writeOut(DiagnosisRendering.human(during, sections: [.findings], color: Console.colorful))
            Console.writeOut("\nlab: counters during the attempt: "
                + attempt.counterDeltas.sorted { $0.key < $1.key }.map { "\($0.key) +\($0.value)" }.joined(separator: ", ") + "\n")
        }
        return Outcome(
            report: report, problems: problems, flows: lab.flows.map(\.record),
            extra: [
                ("close_wait_seconds", .integer(closeWait)),
                ("collision", attempt?.record(failOn: diagnosis.failOn.severity) ?? .null),
            ])
    }

    /// Measures both connect patterns, each on a lab of its own: a pattern's collisions
    /// leave conntrack entries that would shield the leaks from the next.
    func collisionRate(name: String, options: DiagnosisOptions, say: @escaping @Sendable (String) -> Void) throws -> Outcome {
        var measurements: [CollisionMeasurement] = []
        var firstReport: DiagnosisReport?
        for pattern in ConnectPattern.allCases {
            let lab = try CollisionRateLab(name: name, say: say)
            let measurement = try whileRegistered(tearDown: lab.tearDown) { () throws -> CollisionMeasurement in
                try lab.makeLeaks(leaks)
                let report = try Self.diagnosis(of: lab.lab, options: options)()
                firstReport = firstReport ?? report
                lab.closeListener()
                say("\(connects) connects to \(pattern == .oneDestination ? "one service address" : "\(connects) service addresses")…")
                return try lab.measure(connects: connects, pattern: pattern, diagnosis: report)
            }
            say("…\(measurement.picks) picked a leaked port (model \(formatQuantity(measurement.expected.picks)), uniform over the range \(formatQuantity(measurement.uniformPicks))); \(measurement.collisions) collided, \(measurement.leaksHit) distinct leaks (model \(formatQuantity(measurement.expected.leaksHit)) leaks hit)\(measurement.slowConnects > 0 ? "; \(measurement.slowConnects) slow but met no leak" : "")")
            measurements.append(measurement)
        }
        let outcome = Outcome(
            report: firstReport!, problems: measurements.flatMap { m in m.problems.map { "\(m.pattern.rawValue): \($0)" } },
            flows: [], extra: [("measurements", .array(measurements.map(\.record)))])
        emit(outcome)
        return outcome
    }

    /// The diagnosis taken while the client's connect lands on the leaked inbound socket.
    func inboundCollision(_ lab: InboundCollisionLab, options: DiagnosisOptions) throws -> Outcome {
        let attempt = try lab.run(emulateOldKernel: emulateOldKernel, timeoutSeconds: connectTimeout, diagnose: Self.diagnosis(of: lab.pod, options: options))
        // The collision's own diagnosis when it lasted; on a kernel that recovered at
        // once, the one before it shows what the lab built.
        let report = try (attempt.connected ? lab.beforeCollision : attempt.duringAttempt) ?? Self.diagnosis(of: lab.pod, options: options)()
        return Outcome(
            report: report, problems: lab.check(during: attempt), flows: [],
            extra: [
                ("close_wait_seconds", .integer(closeWait)), ("moved_port", lab.movedPort.map { .integer(Int($0)) } ?? .null),
                ("collision", attempt.record(failOn: diagnosis.failOn.severity)),
            ])
    }

    func serverFirst(_ lab: ServerFirstLab, options: DiagnosisOptions) throws -> Outcome {
        try lab.build(stallAfterSeconds: options.stallAfterSeconds)
        let report = try Self.diagnosis(of: lab.lab, options: options)()
        var problems = lab.check(report)
        problems += lab.awaitStalledGreeting()
        return Outcome(
            report: report, problems: problems,
            flows: lab.flows.map(\.record),
            extra: [("mesh", .string(mesh.rawValue)), ("stall_after_seconds", .number(options.stallAfterSeconds))])
    }

    /// Runs the pressure lab and shows pressure's answer beside what the lab built.
    func pressure(_ lab: PressureLab, name: String, say: @escaping @Sendable (String) -> Void) throws -> [String] {
        let run = try lab.run()
        let (report, racesLost, problems) = (run.report, run.racesLost, run.problems)
        switch output.format {
        case .table:
            Console.writeOut("\nlab: pressure of \(name):\n")
            Console.writeOut(PressureRendering.human(report, namespace: name, color: Console.colorful))
            Console.writeOut(problems.isEmpty
                ? "\nlab: pressure names what the lab built.\n"
                : "\nlab: pressure does NOT match what the lab built:\n" + problems.map { "  - \($0)\n" }.joined())
        case .json, .ndjson:
            let members: [(String, JSONValue)] = [
                ("half_closed", .integer(lab.halfClosed)), ("established", .integer(lab.established)),
                ("close_wait_seconds", .integer(PressureLab.closeWaitSeconds)), ("races_lost", .integer(racesLost)),
                ("vanished_endpoint", .string(PressureLab.vanishedDNS.description)),
            ]
            Console.writeOut(LabDocument.pressure(namespace: name, members: members, report: report, problems: problems).text + "\n")
        }
        return problems
    }

    func emit(_ outcome: Outcome) {
        let name = "ctd-lab-\(scenario.rawValue)-\(getpid())"
        switch output.format {
        case .table:
            let when = scenario == .serverFirst ? ", taken during the stall" : scenario == .inboundCollision ? " (during the collision, or before it when it recovered at once)" : " now"
            Console.writeOut("\nlab: diagnosis of \(name)\(when):\n")
            Console.writeOut(DiagnosisRendering.human(outcome.report, color: Console.colorful))
            Console.writeOut(outcome.problems.isEmpty
                ? "\nlab: the diagnosis matches what the lab built.\n"
                : "\nlab: the diagnosis does NOT match what the lab built:\n" + outcome.problems.map { "  - \($0)\n" }.joined())
        case .json, .ndjson:
            let document = LabDocument.json(
                scenario: scenario.rawValue, namespace: name, members: outcome.extra, flows: outcome.flows, diagnosis: outcome.report,
                failOn: diagnosis.failOn.severity, problems: outcome.problems)
            Console.writeOut(document.text + "\n")
        }
    }
}


extension ServerFirstLab.Mesh: ExpressibleByArgument {}

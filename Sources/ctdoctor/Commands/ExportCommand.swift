import ArgumentParser
import Diagnosis
import Export
import Formats
import Glibc
import JSON
import KernelIO
import NetCore
import Rendering

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Diagnose and write the findings for monitoring: Prometheus text exposition or JSON.",
        discussion: """
            For a cron job or a DaemonSet: runs the diagnosis and writes Prometheus text \
            exposition (the node_exporter textfile collector's format) or a JSON document. With \
            --output the file is written beside its target and renamed over it, so a scrape never \
            reads half a file; a symbolic link as target is refused. Metric names, labels and \
            their meaning are listed in README under "Metrics".

            When collection fails the file is still written, with ctdoctor_run_success 0 (so an \
            alert can fire), and ctdoctor exits 2. Findings do not change the exit status: \
            exporting them is the job. JSON schema ctdoctor.export.v1.

            With --every the command stays up and exports again at that interval, for a \
            DaemonSet container without a shell: a failed run is logged and written as such, and \
            the next one follows; SIGTERM or SIGINT ends it after the run in progress, exit 0.

            Examples:
              ctdoctor export --output /var/lib/node_exporter/textfile/ctdoctor.prom
              ctdoctor export --all-netns --every 5m --output /textfile/ctdoctor.prom
              ctdoctor export --netns 4242 --format json
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case prometheus, json
    }

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var inputs: InputOptions
    @OptionGroup var sweep: SweepOptions

    @Option(help: "prometheus (text exposition) or json (ctdoctor.export.v1).")
    var format: Format = .prometheus

    @Option(help: ArgumentHelp("Write here, atomically, instead of standard output.", valueName: "path"))
    var output: String?

    @Option(help: ArgumentHelp("Stay up and export again at this interval (e.g. 5m, 300s); needs --output.", valueName: "duration"))
    var every: String?

    @OptionGroup var diagnosis: DiagnosisArguments

    func validate() throws {
        try inputs.validate(with: namespace)
        try sweep.validate(with: namespace, inputs: inputs)
        if every != nil {
            _ = try interval()
            guard output != nil else { throw ValidationError("--every rewrites a file: give --output") }
            guard !inputs.isOffline else { throw ValidationError("--every re-reads live tables; it cannot be combined with --from or copied tables") }
        }
    }

    func interval() throws -> Duration? {
        guard let every else { return nil }
        guard let seconds = durationSeconds(every), seconds >= 1 else {
            throw ValidationError("--every takes a duration of at least 1s, such as 5m or 300s, not '\(every)'")
        }
        return .milliseconds(Int64(saturating: seconds * 1000))
    }

    func run() throws {
        guard let interval = try interval() else { return try exportOnce() }
        Cleanup.stopGracefully()
        while !Cleanup.isStopRequested {
            let started = ContinuousClock.now
            do {
                try exportOnce()
            } catch {
                // Written to the file as a failed run already; the next run may succeed.
                log.error("\(error)")
            }
            sleepUnlessStopped(until: started + interval)
        }
    }

    func exportOnce() throws {
        let options = try diagnosis.options()
        let started = wallClockSeconds()
        let clock = ContinuousClock.now
        var failure: (any Error)?
        var results: [NamespaceResult] = []
        if sweep.isActive {
            do {
                let selection = try sweep.select()
                var notices = selection.notices
                results += try ctdoctor.sweep(
                    selection.namespaces, every: selection.everyNamespace, parallel: sweep.parallel, options: options, notices: &notices)
                notices.forEach { log.warning("\($0)") }
            } catch {
                failure = error
            }
        } else {
            let identity = NamespaceIdentity(netns: inputs.identity(namespace: namespace))
            do {
                results.append(.diagnosed(identity, try diagnose(namespace: namespace, inputs: inputs, options: options)))
            } catch {
                failure = error
                results.append(.failed(identity, because: error))
            }
        }
        let run = ExportRun(startedAt: started, durationSeconds: (ContinuousClock.now - clock).inSeconds, results: results)
        try write(run, failOn: diagnosis.failOn.severity)
        if let failure { throw failure }
    }

    func write(_ run: ExportRun, failOn: Severity?) throws {
        let bytes: [UInt8]
        switch format {
        case .prometheus:
            bytes = MetricsExposition.render(run)
        case .json:
            var out: [UInt8] = []
            ExportDocument.json(run, failOn: failOn).write(to: &out)
            out.append(0x0A)
            bytes = out
        }
        if let output {
            try writeFileAtomically(bytes, to: output)
        } else {
            try Console.writeOut(bytes: bytes)
        }
    }
}

/// Sleeps until `deadline` or a stop signal, in slices so a signal is noticed soon.
func sleepUnlessStopped(until deadline: ContinuousClock.Instant) {
    while !Cleanup.isStopRequested {
        let left = min(deadline - ContinuousClock.now, .milliseconds(200))
        guard left > .zero else { return }
        let (seconds, attoseconds) = left.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        nanosleep(&request, nil)
    }
}

/// Seconds since the Unix epoch, for timestamps others compare with their clocks.
func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

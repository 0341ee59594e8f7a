import ArgumentParser
import Conntrack
import Diagnosis
import Formats
import JSON
import KernelIO
import Live
import NetCore
import Offline
import Pressure
import Rendering

struct PressureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pressure",
        abstract: "Say what fills the conntrack table: fill, states, timeouts, top destinations, sources and pods, the kernel's drop and insert-race counters, and stale DNAT entries.",
        discussion: """
            One streamed pass over the table (a million entries cost what a few thousand do) \
            groups the entries by protocol, state and time left; names the destinations, DNAT \
            targets, sources and pods holding the most (pods named by their addresses across \
            the node's namespaces when ctdoctor can enter them); and, for each timeout sysctl, \
            counts the entries that have sat idle long enough that a lower value would free \
            them now. The kernel's counters (what `conntrack -S` reads over ctnetlink: \
            insert_failed, drop, early_drop, invalid…) are read at both ends of --interval, \
            and their growth turns into findings: lost insert races (the DNS 5-second delay), a \
            full table evicting entries, INVALID packets that a rule drops.

            With --endpoints (from `kubectl get endpointslices -A -o json`), entries DNATed to \
            an address no EndpointSlice lists are stale; --reap deletes them over ctnetlink, \
            each looked up again by its reply tuple first, as a dry run unless --yes.

            A copied table works too: --conntrack-file, with --stats-file (`conntrack -S`) and \
            --sysctl-file (`sysctl -a | grep nf_conntrack`) from the same namespace; timeouts \
            not given are taken as the kernel's defaults and marked so.

            Exit status: 0 no finding at or above --fail-on; 1 findings (or, with --reap, \
            entries left); 2 error. JSON schema ctdoctor.pressure.v1, documented in README.

            Examples:
              ctdoctor pressure
              ctdoctor pressure --netns 4242 --interval 10s --format json
              ctdoctor pressure --all-netns --interval 5s
              ctdoctor pressure --endpoints slices.json --reap
              ctdoctor pressure --conntrack-file conntrack-L.txt --stats-file conntrack-S.txt --sysctl-file sysctl.txt
            """
    )

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var output: OutputOptions

    @OptionGroup var sweep: SweepOptions

    @Option(help: ArgumentHelp("How long to watch the kernel's counters grow (seconds or 10s, 1m); 0 reads them once.", valueName: "duration"))
    var interval = "1s"

    @Option(help: "How many destinations, sources and pods to list.")
    var top = 10

    @Option(name: .customLong("unreplied-after"), help: ArgumentHelp("Report UNREPLIED entries older than this.", valueName: "duration"))
    var unrepliedAfter = "60s"

    @Option(help: ArgumentHelp("EndpointSlices as `kubectl get endpointslices -A -o json` prints them (or Endpoints): entries DNATed elsewhere are stale.", valueName: "path"))
    var endpoints: String?

    @Flag(help: "With --endpoints: delete the stale entries (re-checked each), a dry run unless --yes.")
    var reap = false

    @Flag(help: "With --reap: really delete them.")
    var yes = false

    @Option(name: .customLong("conntrack-file"), help: ArgumentHelp("A copied table instead of a live namespace: conntrack -L (any -o), -o xml, /proc/net/nf_conntrack, or ctdoctor JSON.", valueName: "path"))
    var conntrackFile: String?

    @Option(name: .customLong("stats-file"), help: ArgumentHelp("With --conntrack-file: `conntrack -S` output or /proc/net/stat/nf_conntrack from the same namespace.", valueName: "path"))
    var statsFile: String?

    @Option(name: .customLong("sysctl-file"), help: ArgumentHelp("With --conntrack-file: `sysctl -a | grep nf_conntrack` from the same namespace (timeouts, max, buckets).", valueName: "path"))
    var sysctlFile: String?

    @Option(name: .customLong("fail-on"), help: ArgumentHelp("Exit 1 when a finding is at least this severe: info, warning, error or never.", valueName: "severity"))
    var failOn: FailThreshold = .warning

    func intervalSeconds() throws -> Double {
        guard let seconds = durationSeconds(interval), seconds >= 0, seconds <= 3600 else {
            throw ValidationError("--interval takes a duration from 0 to 1h, such as 5s or 1m, not '\(interval)'")
        }
        return seconds
    }

    func unrepliedAfterSeconds() throws -> UInt64 {
        guard let seconds = durationSeconds(unrepliedAfter), seconds >= 0 else {
            throw ValidationError("--unreplied-after takes a duration such as 60s or 5m, not '\(unrepliedAfter)'")
        }
        return UInt64(saturating: seconds)
    }

    func validate() throws {
        _ = try intervalSeconds()
        _ = try unrepliedAfterSeconds()
        guard (1...1000).contains(top) else { throw ValidationError("--top takes 1 to 1000") }
        guard (1...64).contains(sweep.parallel) else { throw ValidationError("--parallel takes 1 to 64") }
        let live = sweep.isActive || namespace.spec != nil
        if conntrackFile != nil && live { throw ValidationError("--conntrack-file reads a copy; leave out --netns, --pod and --all-netns") }
        if conntrackFile == nil && (statsFile != nil || sysctlFile != nil) {
            throw ValidationError("--stats-file and --sysctl-file describe a copied table: give --conntrack-file too")
        }
        if sweep.allNetns && (sweep.pod != nil || namespace.spec != nil) { throw ValidationError("--all-netns reads every namespace; leave out --netns and --pod") }
        if sweep.pod != nil && namespace.spec != nil { throw ValidationError("--pod finds its namespace; leave out --netns") }
        if yes && !reap { throw ValidationError("--yes confirms --reap; give both") }
        if reap {
            if endpoints == nil { throw ValidationError("--reap deletes entries DNATed to no endpoint: give --endpoints") }
            if conntrackFile != nil { throw ValidationError("--reap acts on a live table; it cannot be combined with --conntrack-file") }
            if sweep.allNetns { throw ValidationError("--reap works on one namespace at a time: use --netns or --pod") }
        }
    }

    func run() throws {
        let liveEndpoints = try endpoints.map { path in try EndpointList.parse(try readInputFile(path), source: path) }
        let unreplied = try unrepliedAfterSeconds()
        if let conntrackFile { return try runOffline(conntrackFile, liveEndpoints: liveEndpoints, unrepliedAfter: unreplied) }
        var request = PressureCollector.Request(
            intervalSeconds: try intervalSeconds(), liveEndpoints: liveEndpoints, unrepliedAfterSeconds: unreplied, top: top)
        if sweep.isActive { return try runSweep(request) }
        let target = try namespace.resolve()
        let (pods, notice) = PressureSweep.podAddresses()
        request.podsByAddress = pods
        var report = try PressureCollector(namespace: target).collect(request)
        if let notice { report.notices.append(notice) }
        if reap { report.reaped = try runReap(report.table, namespace: target) }
        try render([PressureSweep.Row(name: target.name, pod: nil, namespace: target, result: .success(report))])
        try exitForReap(report.reaped)
        try exitForFindings([report])
    }

    func runSweep(_ request: PressureCollector.Request) throws {
        let selection = try sweep.select()
        let (pods, podNotice) = PressureSweep.podAddresses()
        var withPods = request
        withPods.podsByAddress = pods
        var rows = try PressureSweep.run(selection.namespaces, request: withPods, parallel: sweep.parallel)
        (selection.notices + [podNotice].compactMap { $0 }).forEach { log.warning("\($0)") }
        if sweep.pod != nil, let first = rows.first, case .failure(let error) = first.result { throw error }
        if reap, let first = rows.first, case .success(var report) = first.result, let namespace = first.namespace {
            report.reaped = try runReap(report.table, namespace: namespace)
            rows[0].result = .success(report)
        }
        try render(rows)
        if reap, let first = rows.first, case .success(let report) = first.result { try exitForReap(report.reaped) }
        // A namespace that could not be read is its own row, as in diagnose's sweep; only
        // a sweep that read none fails.
        let failed = rows.filter { if case .failure = $0.result { true } else { false } }.count
        if failed > 0 { log.warning("\(failed) of \(rows.count) namespaces could not be read: their rows say why") }
        if failed == rows.count, let first = rows.first, case .failure(let error) = first.result {
            throw CommandFailure("no namespace could be read: \(Main.oneLine(error))", cause: error)
        }
        try exitForFindings(rows.compactMap { try? $0.result.get() })
    }

    func runOffline(_ path: String, liveEndpoints: Set<IPAddress>?, unrepliedAfter: UInt64) throws {
        let table = try PastedInput.conntrack(try readInputFile(path), source: path)
        let sysctls = try sysctlFile.map { try SysctlText.parse(try readInputFile($0), source: $0) }
        let statistics = try statsFile.map { try PastedInput.statistics(try readInputFile($0), source: $0) }
        let report = PressureReport.ofCopy(
            table.entries, sysctls: sysctls, statistics: statistics, liveEndpoints: liveEndpoints, unrepliedAfterSeconds: unrepliedAfter,
            top: top, notices: ["read from \(path) (\(table.format.rawValue))"])
        try render([PressureSweep.Row(name: path, pod: nil, namespace: nil, result: .success(report))])
        try exitForFindings([report])
    }

    func render(_ rows: [PressureSweep.Row]) throws {
        var out = OutputBuffer { try Console.writeOut(bytes: $0) }
        let single = rows.count == 1 && !sweep.allNetns
        switch output.format {
        case .table:
            for (index, row) in rows.enumerated() {
                if index > 0 { out.write("\n") }
                switch row.result {
                case .success(let report):
                    out.write(PressureRendering.human(report, namespace: row.name, color: Console.colorful))
                case .failure(let error):
                    out.write("Namespace  \(row.name.terminalSafe)\n  could not be read: \(Main.oneLine(error))\n")
                }
            }
        case .json, .ndjson:
            let documents = rows.map { row -> JSONValue in
                switch row.result {
                case .success(let report): return PressureDocument.json(report, namespace: row.name, pod: row.pod)
                case .failure(let error): return PressureDocument.failed(namespace: row.name, pod: row.pod, error: Main.oneLine(error))
                }
            }
            if single || output.format == .ndjson {
                for document in documents { out.write { document.write(to: &$0); $0.append(0x0A) } }
            } else {
                out.write { PressureDocument.sweep(documents).write(to: &$0); $0.append(0x0A) }
            }
        }
        try out.flush()
        if output.format != .table {
            for row in rows { if case .success(let report) = row.result { report.notices.forEach { log.warning("\($0)") } } }
        }
    }

    /// Deletes (or, without --yes, lists) the stale entries, each logged on standard
    /// error as it is decided.
    func runReap(_ table: TablePressure?, namespace: NetworkNamespace) throws -> StaleReapRun {
        guard let table else {
            throw CommandFailure("--reap needs the table, which could not be read here (see the notices): nothing deleted")
        }
        guard let stale = table.stale else {
            throw CommandFailure("--reap: no entry was judged stale, since the namespace's own addresses could not be read (see the notices): nothing deleted")
        }
        var run = try StaleEntryReaper(namespace: namespace).reap(stale.kept, dryRun: !yes)
        run.notKept = stale.entries - stale.kept.count
        run.outcomes.forEach { log.notice("\($0.logLine)") }
        return run
    }

    /// As `leaks --reap`: exit 2 when a delete failed, 1 when stale entries remain (a dry
    /// run, or more than were kept), 0 when every one went.
    func exitForReap(_ run: StaleReapRun?) throws {
        guard let run else { return }
        if let failed = run.outcomes.first(where: { $0.result == .failed }) { throw CommandFailure(failed.detail, cause: failed.cause) }
        if run.count(.wouldDelete) > 0 || run.notKept > 0 { throw ExitCode(ExitStatus.findings) }
    }

    func exitForFindings(_ reports: [PressureReport]) throws {
        if reap { return }
        if let threshold = failOn.severity, reports.contains(where: { $0.findings.contains { $0.severity >= threshold } }) {
            throw ExitCode(ExitStatus.findings)
        }
    }
}

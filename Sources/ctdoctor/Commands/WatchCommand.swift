import ArgumentParser
import Diagnosis
import Export
import Formats
import JSON
import KernelIO
import Live
import NetCore
import Rendering

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Watch a namespace and report each leak the moment conntrack forgets its flow, and when it ends.",
        discussion: """
            Subscribes to ctnetlink's DESTROY events (what `conntrack -E` reads) in the \
            namespace. When conntrack destroys the entry of a flow a capture port answered \
            while the proxy's socket is still in FIN_WAIT2 (checked over sock_diag at once), \
            the leak is born: the app's FIN can no longer reach the proxy. Known leaks are \
            swept every second and reported when their socket goes, with their lifetime. \
            Leaks already there when watching begins are reported as found. A new connect \
            whose SYN conntrack tracks onto a leaked socket's tuple is a collision, reported as \
            it happens, then as recovered (a flow on its tuple connected) or failed (its entry \
            ended still in SYN_SENT, or nothing connected within 180 s). \
            Events the kernel drops (ENOBUFS) are reported and made up for by a full read.

            Runs until Ctrl-C or SIGTERM (exit 0), or for --duration. Each event is one line: \
            with --format ndjson a ctdoctor.watch.v1 record, documented in README.

            Examples:
              ctdoctor watch --netns 4242
              ctdoctor watch --netns 4242 --format ndjson --duration 10m > leaks.ndjson
              ctdoctor watch --netns 4242 --textfile /var/lib/node_exporter/textfile/ctdoctor-watch.prom
            """
    )

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var output: OutputOptions

    @Option(help: ArgumentHelp("The sidecar: istio, asm, ambient (ztunnel), linkerd, or ports:OUT,IN. Default: detected.", valueName: "sidecar"))
    var sidecar: SidecarChoice?

    @Option(help: ArgumentHelp("Stop after this long (30s, 10m, 1h). Default: until stopped.", valueName: "duration"))
    var duration: String?

    @Option(help: ArgumentHelp("Also keep Prometheus counters of what was seen in this file (for node_exporter's textfile collector), rewritten atomically at most once a second and at the end.", valueName: "path"))
    var textfile: String?

    func durationSeconds() throws -> Double? {
        guard let duration else { return nil }
        guard let seconds = ctdoctor.durationSeconds(duration), seconds > 0 else {
            throw ValidationError("--duration takes a duration such as 30s or 10m, not '\(duration)'")
        }
        return seconds
    }

    func validate() throws {
        _ = try durationSeconds()
        if output.format == .json { throw ValidationError("watch reports events as they happen: use --format ndjson (or table)") }
    }

    func run() throws {
        let target = try namespace.resolve()
        var options = DiagnosisOptions()
        options.sidecar = sidecar?.profile
        let deadline = try durationSeconds().map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
        Cleanup.stopGracefully()
        let format = output.format
        let metrics = textfile.map { _ in WatchMetrics(netns: namespace.spec ?? "current", pod: nil) }
        var written = ContinuousClock.now - .seconds(2)
        func writeMetrics(force: Bool) throws {
            guard let metrics, let textfile, force || ContinuousClock.now - written >= .seconds(1) else { return }
            try writeFileAtomically(metrics.exposition(), to: textfile)
            written = ContinuousClock.now
        }
        try writeMetrics(force: true)
        defer { try? writeMetrics(force: true) }
        try LiveLeakWatch(namespace: target, options: options).run(
            stop: {
                try? writeMetrics(force: false)
                return Cleanup.isStopRequested || deadline.map { ContinuousClock.now >= $0 } ?? false
            }
        ) { event in
            metrics?.record(event)
            var out = OutputBuffer { try Console.writeOut(bytes: $0) }
            if format == .ndjson {
                out.write { WatchRecord.json(event, namespace: target.name).write(to: &$0); $0.append(0x0A) }
            } else {
                out.write(WatchRendering.line(event))
            }
            try out.flush()
        }
    }

}

import ArgumentParser
import Conntrack
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
        abstract: "Watch a namespace, a pod or the whole node, and report each leak the moment conntrack forgets its flow, and when it ends.",
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
            Events the kernel drops (ENOBUFS) are reported and made up for by a full read. \
            Every 5 s the accepted connections on the capture ports are scanned: one silent \
            both ways past --stall-after is a stall (on a server-first port, a sniffing \
            proxy holding the greeting back), reported when seen and when it ends.

            With --all-netns every namespace of the node is watched from one thread, and the \
            node is listed again every 5 s: a pod that appears is watched (namespace-added, \
            with the leaks it already holds), a pod that goes ends its leaks \
            (namespace-gone), and a namespace that cannot be watched is reported \
            (namespace-failed) and tried again a minute later while the others go on. --pod \
            watches one pod's namespace, and its next one when the pod is recreated.

            Runs until Ctrl-C or SIGTERM (exit 0), or for --duration. Each event is one line: \
            with --format ndjson a ctdoctor.watch.v1 record, documented in README. \
            --textfile and --listen keep Prometheus counters of the events (labels netns \
            and pod); --listen serves them on its own thread, loopback unless an address \
            is given.

            Examples:
              ctdoctor watch --netns 4242
              ctdoctor watch --netns 4242 --format ndjson --duration 10m > leaks.ndjson
              ctdoctor watch --netns 4242 --textfile /var/lib/node_exporter/textfile/ctdoctor-watch.prom
              ctdoctor watch --all-netns --listen 9850 --format ndjson
              ctdoctor watch --pod shop/cart-7d9f
            """
    )

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var output: OutputOptions

    @Flag(name: .customLong("all-netns"), help: "Watch every network namespace on the node, pods that appear included (the node is listed again every 5 s); each event names its namespace and pod.")
    var allNetns = false

    @Option(help: ArgumentHelp("Watch the namespace of this pod only (NAME, NAMESPACE/NAME or an ip netns name), and its next one when the pod is recreated.", valueName: "pod"))
    var pod: String?

    @Option(help: ArgumentHelp("The sidecar: istio, asm, ambient (ztunnel), linkerd, or ports:OUT,IN. Default: detected.", valueName: "sidecar"))
    var sidecar: SidecarChoice?

    @Option(help: ArgumentHelp("Stop after this long (30s, 10m, 1h). Default: until stopped.", valueName: "duration"))
    var duration: String?

    @Option(help: ArgumentHelp("Also keep Prometheus counters of what was seen in this file (for node_exporter's textfile collector), rewritten atomically at most once a second and at the end.", valueName: "path"))
    var textfile: String?

    @Option(help: ArgumentHelp("Serve the same counters for Prometheus at http://ADDRESS:PORT/metrics: PORT alone listens on 127.0.0.1; :PORT (or 0.0.0.0:PORT, [::]:PORT) lets other hosts scrape it.", valueName: "[address:]port"))
    var listen: String?

    @Option(name: .customLong("stall-after"), help: ArgumentHelp("An accepted connection on a capture port silent both ways this long is a stall, reported when first seen (scans every 5 s) and when it ends. Default: 5s.", valueName: "duration"))
    var stallAfter: String?

    func stallAfterSeconds() throws -> Double? {
        guard let stallAfter else { return nil }
        guard let seconds = ctdoctor.durationSeconds(stallAfter), seconds > 0 else {
            throw ValidationError("--stall-after takes a duration such as 5s or 30s, not '\(stallAfter)'")
        }
        return seconds
    }

    @Option(name: .customLong("event-buffer"), help: ArgumentHelp("Each event socket's receive buffer: room for a burst of conntrack events before the kernel drops some (events-lost). 64K to 256M, in bytes or with K or M. Default: 8M, or 2M each with --all-netns and --pod.", valueName: "size"))
    var eventBuffer: String?

    @Option(name: .customLong("kernel-filter"), help: ArgumentHelp("Which conntrack events the kernel hands over: ports (the TCP flows a capture port answers, when new, on reaching ESTABLISHED and when destroyed before the close finished: all that watch judges), tcp (every TCP event, as a protocol filter keeps) or off (every event).", valueName: "filter"))
    var kernelFilter = ConntrackEventFilter.ports

    /// `--event-buffer`: bytes, or K/M (binary) multiples.
    func eventBufferBytes() throws -> Int? {
        guard let eventBuffer else { return nil }
        let bad = ValidationError("--event-buffer takes a size from 64K to 256M (such as 512K or 16M), not '\(eventBuffer)'")
        var digits = Substring(eventBuffer)
        var unit = 1
        switch digits.last {
        case "K", "k": unit = 1 << 10
        case "M", "m": unit = 1 << 20
        default: break
        }
        if unit > 1 { digits = digits.dropLast() }
        guard let count = Int(digits), count > 0, count <= (256 << 20) / unit, count * unit >= 64 << 10 else { throw bad }
        return count * unit
    }

    func durationSeconds() throws -> Double? {
        guard let duration else { return nil }
        guard let seconds = ctdoctor.durationSeconds(duration), seconds > 0 else {
            throw ValidationError("--duration takes a duration such as 30s or 10m, not '\(duration)'")
        }
        return seconds
    }

    /// `--listen`: PORT (loopback), :PORT (every address, as Go programs such as
    /// node_exporter read it), ADDRESS:PORT or [IPV6]:PORT.
    func listenEndpoint() throws -> Endpoint? {
        guard let listen else { return nil }
        let bad = ValidationError("--listen takes PORT, :PORT, ADDRESS:PORT or [IPV6]:PORT, not '\(listen)'")
        guard let colon = listen.lastIndex(of: ":") else { return Endpoint(.v4(0x7F00_0001), try parsePort(listen, option: "--listen")) }
        let port = try parsePort(String(listen[listen.index(after: colon)...]), option: "--listen")
        var host = listen[..<colon]
        if host.isEmpty { return Endpoint(.v4(0), port) }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = host.dropFirst().dropLast()
        } else if host.contains(":") {
            throw bad  // an IPv6 address without brackets: where its port starts is a guess
        }
        guard let address = IPAddress(host) else { throw bad }
        return Endpoint(address, port)
    }

    func validate() throws {
        _ = try durationSeconds()
        _ = try listenEndpoint()
        _ = try eventBufferBytes()
        _ = try stallAfterSeconds()
        if output.format == .json { throw ValidationError("watch reports events as they happen: use --format ndjson (or table)") }
        if allNetns && pod != nil { throw ValidationError("--all-netns watches every namespace; leave out --pod") }
        if (allNetns || pod != nil) && namespace.spec != nil { throw ValidationError("--all-netns and --pod find namespaces themselves; leave out --netns") }
    }

    func run() throws {
        var options = DiagnosisOptions()
        options.sidecar = sidecar?.profile
        if let stall = try stallAfterSeconds() { options.stallAfterSeconds = stall }
        let deadline = try durationSeconds().map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
        Cleanup.stopGracefully()
        let format = output.format
        let metrics = textfile != nil || listen != nil ? WatchMetrics() : nil
        let endpoint = try listenEndpoint().map { address in
            do {
                return try HTTPEndpoint(listeningOn: address) { [metrics] head, complete in
                    MetricsHTTP.response(toHead: head, complete: complete) { metrics?.exposition() ?? [] }
                }
            } catch {
                throw CommandFailure("cannot listen on \(address) for /metrics: \(error)", cause: error)
            }
        }
        defer { endpoint?.stop() }
        if let endpoint { log.notice("serving /metrics on http://\(endpoint.address)/metrics") }
        var written = ContinuousClock.now - .seconds(2)
        func writeMetrics(force: Bool) throws {
            guard let metrics, let textfile, force || ContinuousClock.now - written >= .seconds(1) else { return }
            try writeFileAtomically(metrics.exposition(), to: textfile)
            written = ContinuousClock.now
        }
        let stop = {
            try? writeMetrics(force: false)
            return Cleanup.isStopRequested || deadline.map { ContinuousClock.now >= $0 } ?? false
        }
        /// `netns` names the namespace in the journal; `label` in the metrics (the spec as
        /// given to --netns, as before node watches: dashboards keep their series).
        func emit(_ event: WatchEvent, netns: String, label: String? = nil, pod: String?) throws {
            metrics?.record(event, netns: label ?? netns, pod: pod)
            var out = OutputBuffer { try Console.writeOut(bytes: $0) }
            if format == .ndjson {
                out.write { WatchRecord.json(event, namespace: netns, pod: pod).write(to: &$0); $0.append(0x0A) }
            } else {
                out.write(WatchRendering.line(event, namespace: allNetns || self.pod != nil ? (pod ?? netns) : nil))
            }
            try out.flush()
        }
        guard allNetns || self.pod != nil else {
            let target = try namespace.resolve()
            let netns = namespace.spec ?? "current"
            metrics?.watching(netns: netns, pod: nil)
            try writeMetrics(force: true)
            defer { try? writeMetrics(force: true) }
            var watch = LiveLeakWatch(namespace: target, options: options)
            if let bytes = try eventBufferBytes() { watch.receiveBufferBytes = bytes }
            watch.eventFilter = kernelFilter
            try watch.run(stop: stop) { try emit($0, netns: target.name, label: netns, pod: nil) }
            return
        }
        let selection = try nodeSelection()
        try writeMetrics(force: true)
        defer { try? writeMetrics(force: true) }
        var watch = NodeLeakWatch(select: selection, options: options)
        if let bytes = try eventBufferBytes() { watch.receiveBufferBytes = bytes }
        watch.eventFilter = kernelFilter
        try watch.run(stop: stop) { identity, event in
            if event.kind == .namespaceAdded { metrics?.watching(netns: identity.netns, pod: identity.pod) }
            try emit(event, netns: identity.netns, pod: identity.pod)
        }
    }

    /// What a node watch lists at each scan: every namespace, or the pod's (which must
    /// be there when the watch starts; a pod recreated later is followed).
    func nodeSelection() throws -> NodeLeakWatch.Selection {
        guard let pod else { return { try NodeInventory().namespaces().namespaces } }
        let first = try NodeInventory().namespaces().namespaces
        let matching = namespaces(ofPod: pod, in: first)
        guard !matching.isEmpty else { throw noSuchPod(pod, among: first) }
        return { namespaces(ofPod: pod, in: try NodeInventory().namespaces().namespaces) }
    }
}

import ArgumentParser
import Conntrack
import Diagnosis
import Foundation
import KernelIO
import Netlink
import Synchronization

/// What `ctdoctor watch` costs on a busy namespace: churners create and delete unrelated
/// conntrack entries (each change one NEW or DESTROY event to the watch) while the watch
/// runs; its CPU time and resident memory are read from /proc every second, and its
/// journal says whether the kernel had to drop events. Every figure is the watch's own,
/// beside the event rate it was under, in the same run, once per kernel filter: what the
/// capture-port filter saves over nfct_filter's reach (TCP) and over none.
struct WatchLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch-load",
        abstract: "Run ctdoctor watch under conntrack churn; report its share of a core, its memory over the soak and events lost (needs root).")

    @Option(help: "The ctdoctor binary (default: beside this one).") var ctdoctor: String?
    @Option(help: "How long the churn lasts.") var seconds = 30.0
    @Option(help: "Churners, each on its own addresses.") var lanes = 2
    @Option(help: "Conntrack changes per second each churner aims at.") var rate = 30_000
    @Flag(help: "With --all-netns instead of --netns: the watch polls every namespace of the node.") var node = false

    @Option(
        name: .customLong("kernel-filter"), parsing: .upToNextOption,
        help: "The watch's --kernel-filter values to measure in turn, each under the same churn (ports tcp off).")
    var kernelFilters = ["ports", "tcp", "off"]

    @Flag(help: "Churn a meshed pod's own flows instead: one churner connects through a REDIRECT to capture port 15001 (--connections a second), each connection's NEW, UPDATEs and DESTROY an event.")
    var meshed = false
    @Option(help: "Connections per second the --meshed churner aims at.") var connections = 3000

    /// One watch's figures under one filter.
    struct Row {
        var filter: String
        var changesPerSecond: Int
        /// Events per second a socket with the same filter received, beside the watch.
        var deliveredPerSecond: Int
        var cpuShare: Double
        var rssAt5sKiB: Int
        var rssAtEndKiB: Int
        var rssPeakKiB: Int
        var lost: Int
        var journalLines: Int
    }

    func run() throws {
        let selfPath = try ProcFS().readLink("/proc/self/exe")
        let binary = ctdoctor ?? (selfPath as NSString).deletingLastPathComponent + "/ctdoctor"
        let rows = try kernelFilters.map { try measure(filter: $0, binary: binary, selfPath: selfPath) }
        let load = meshed
            ? "a meshed pod's flows: 1 churner × \(connections) connections/s aimed through a REDIRECT to 15001"
            : "\(lanes) churners × \(rate) entry changes/s aimed"
        print("watch under churn (\(node ? "--all-netns" : "--netns"), \(load), \(Int(seconds)) s per filter)")
        print("  --kernel-filter  changes/s  events handed over/s  watch CPU      RSS at 5 s / end / peak  events-lost  journal lines")
        for row in rows {
            let cpu = String(format: "%.1f %%", row.cpuShare * 100)
            let rss = "\(row.rssAt5sKiB / 1024) / \(row.rssAtEndKiB / 1024) / \(row.rssPeakKiB / 1024) MiB"
            print("  \(pad(row.filter, 15))  \(pad(String(row.changesPerSecond), 9))  \(pad(String(row.deliveredPerSecond), 20))  \(pad(cpu, 13))  \(pad(rss, 23))  \(pad(String(row.lost), 11))  \(row.journalLines)")
        }
        print(meshed
            ? "  (changes: two per connection, its NEW and DESTROY; its UPDATEs come on top. CPU is the watch's own, as a share of one core)"
            : "  (each change is one NEW or DESTROY event; CPU is the watch's own, as a share of one core)")
    }

    func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }

    /// A fresh namespace, a watch with `filter`, the churn for `seconds`, the watch sampled
    /// from /proc every second.
    func measure(filter: String, binary: String, selfPath: String) throws -> Row {
        let lab = try BenchNamespace(name: "ctd-bench-watch-\(getpid())")
        defer { lab.destroy() }
        if meshed {
            // The sidecar's outbound capture, and conntrack forgetting closed flows within a
            // second, so that each connection's DESTROY comes within the run.
            try lab.shell(["iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", "8080", "-j", "REDIRECT", "--to-ports", "15001"])
            try lab.shell(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_timeout_time_wait=1"])
        }
        let counter = try DeliveredEvents(namespace: lab.namespace, filter: ConntrackEventFilter(rawValue: filter))
        let journal = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-watch-load-\(getpid()).ndjson")
        defer { try? FileManager.default.removeItem(at: journal) }
        _ = FileManager.default.createFile(atPath: journal.path, contents: nil)

        let watch = Process()
        watch.executableURL = URL(fileURLWithPath: binary)
        watch.arguments = ["watch"] + (node ? ["--all-netns"] : ["--netns", lab.name])
            + ["--format", "ndjson", "--duration", "\(Int(seconds) + 30)s", "--kernel-filter", filter]
        watch.standardOutput = try FileHandle(forWritingTo: journal)
        try watch.run()
        defer { if watch.isRunning { kill(watch.processIdentifier, SIGKILL) } }
        usleep(2_000_000)
        guard watch.isRunning else {
            print("watch-load: ctdoctor watch --kernel-filter \(filter) exited with \(watch.terminationStatus)")
            throw ExitCode.failure
        }

        let churnArguments = (0..<(meshed ? 1 : lanes)).map { lane in
            ["churn", "--netns", lab.name, "--seconds", String(seconds), "--lane", String(lane)]
                + (meshed ? ["--no-entries", "--via-capture-port", "15001", "--connections", String(connections)] : ["--rate", String(rate)])
        }
        counter.start()
        let counting = Date()
        let churners = try churnArguments.map { arguments -> (Process, Pipe) in
            let process = Process()
            let output = Pipe()
            process.executableURL = URL(fileURLWithPath: selfPath)
            process.arguments = arguments
            process.standardOutput = output
            try process.run()
            return (process, output)
        }
        var samples: [(seconds: Double, cpuTicks: Int, rssKiB: Int)] = []
        let start = Date()
        while churners.contains(where: { $0.0.isRunning }) {
            if let sample = Self.sample(watch.processIdentifier) { samples.append((Date().timeIntervalSince(start), sample.ticks, sample.rssKiB)) }
            usleep(1_000_000)
        }
        var changes = 0
        for (process, output) in churners {
            process.waitUntilExit()
            let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ")
            changes += report.firstIndex(of: "rate").flatMap { Int(report[$0 + 1]) } ?? 0
        }
        let delivered = Double(counter.stop()) / Date().timeIntervalSince(counting)
        kill(watch.processIdentifier, SIGTERM)
        watch.waitUntilExit()
        let lines = (try? String(contentsOf: journal, encoding: .utf8))?.split(separator: "\n") ?? []

        guard let first = samples.first, let last = samples.last, last.seconds > first.seconds else {
            print("watch-load: the watch could not be sampled")
            throw ExitCode.failure
        }
        // USER_HZ is 100 on every Linux ABI.
        let cpu = Double(last.cpuTicks - first.cpuTicks) / 100 / (last.seconds - first.seconds)
        let settled = samples.first { $0.seconds >= 5 } ?? first
        return Row(
            filter: filter, changesPerSecond: changes, deliveredPerSecond: Int(delivered), cpuShare: cpu, rssAt5sKiB: settled.rssKiB, rssAtEndKiB: last.rssKiB,
            rssPeakKiB: samples.map(\.rssKiB).max() ?? 0, lost: lines.filter { $0.contains("\"event\":\"events-lost\"") }.count,
            journalLines: lines.count)
    }

    /// utime + stime (ticks) and VmRSS (KiB) of `pid`.
    static func sample(_ pid: Int32) -> (ticks: Int, rssKiB: Int)? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After the command's closing parenthesis: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        let rss = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }.flatMap { line in
            line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        } ?? 0
        return (user + system, rss)
    }
}

/// A second event socket beside the watch's, with the same filter, that only counts the
/// messages the kernel hands it: how much each filter lets through, measured rather than
/// inferred from the watch's CPU.
final class DeliveredEvents: @unchecked Sendable {
    let socket: NetlinkSocket
    let stopped = Atomic<Bool>(false)
    let count = Atomic<Int>(0)
    var thread: Thread?

    init(namespace: NetworkNamespace, filter: ConntrackEventFilter?) throws {
        socket = try namespace.run { try NetlinkSocket(bus: .netfilter, receiveBufferBytes: 8 << 20) }
        for kind in [ConntrackEventKind.new, .update, .destroy] { try socket.join(group: kind.group) }
        // What a watch of a namespace with no sidecar it recognises captures: every mesh's ports.
        let ports = SidecarProfile.knownCapturePorts
        if let program = filter?.program(capturePorts: ports) { try socket.attach(filter: program) }
    }

    func start() {
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while !stopped.load(ordering: .relaxed) {
                guard (try? socket.waitReadable(milliseconds: 100)) == true, let received = try? socket.receive(into: &buffer) else { continue }
                var reader = NetlinkMessageReader(buffer, count: received)
                var messages = 0
                while let message = try? reader.next() { if ConntrackEventKind(message) != nil { messages += 1 } }
                count.add(messages, ordering: .relaxed)
            }
        }
        self.thread = thread
        thread.start()
    }

    /// Stops counting; how many were counted.
    func stop() -> Int {
        stopped.store(true, ordering: .relaxed)
        while thread?.isFinished == false { usleep(10_000) }
        return count.load(ordering: .relaxed)
    }
}

import ArgumentParser
import Foundation
import KernelIO

/// What `ctdoctor watch` costs on a busy namespace: churners create and delete unrelated
/// conntrack entries (each change one NEW or DESTROY event to the watch) while the watch
/// runs; its CPU time and resident memory are read from /proc every second, and its
/// journal says whether the kernel had to drop events. Every figure is the watch's own,
/// beside the event rate it was under, in the same run.
struct WatchLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch-load",
        abstract: "Run ctdoctor watch under conntrack churn; report its share of a core, its memory over the soak and events lost (needs root).")

    @Option(help: "The ctdoctor binary (default: beside this one).") var ctdoctor: String?
    @Option(help: "How long the churn lasts.") var seconds = 30.0
    @Option(help: "Churners, each on its own addresses.") var lanes = 2
    @Option(help: "Conntrack changes per second each churner aims at.") var rate = 30_000
    @Flag(help: "With --all-netns instead of --netns: the watch polls every namespace of the node.") var node = false

    func run() throws {
        let selfPath = try ProcFS().readLink("/proc/self/exe")
        let binary = ctdoctor ?? (selfPath as NSString).deletingLastPathComponent + "/ctdoctor"
        let lab = try BenchNamespace(name: "ctd-bench-watch-\(getpid())")
        defer { lab.destroy() }
        let journal = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-watch-load-\(getpid()).ndjson")
        defer { try? FileManager.default.removeItem(at: journal) }
        _ = FileManager.default.createFile(atPath: journal.path, contents: nil)

        let watch = Process()
        watch.executableURL = URL(fileURLWithPath: binary)
        watch.arguments = ["watch"] + (node ? ["--all-netns"] : ["--netns", lab.name]) + ["--format", "ndjson", "--duration", "\(Int(seconds) + 30)s"]
        watch.standardOutput = try FileHandle(forWritingTo: journal)
        try watch.run()
        defer { if watch.isRunning { kill(watch.processIdentifier, SIGKILL) } }
        usleep(2_000_000)

        let churners = try (0..<lanes).map { lane -> (Process, Pipe) in
            let process = Process()
            let output = Pipe()
            process.executableURL = URL(fileURLWithPath: selfPath)
            process.arguments = ["churn", "--netns", lab.name, "--seconds", String(seconds), "--lane", String(lane), "--rate", String(rate)]
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
        kill(watch.processIdentifier, SIGTERM)
        watch.waitUntilExit()
        let lines = (try? String(contentsOf: journal, encoding: .utf8))?.split(separator: "\n") ?? []
        let lost = lines.filter { $0.contains("\"event\":\"events-lost\"") }.count

        guard let first = samples.first, let last = samples.last, last.seconds > first.seconds else {
            print("watch-load: the watch could not be sampled")
            throw ExitCode.failure
        }
        // USER_HZ is 100 on every Linux ABI.
        let cpu = Double(last.cpuTicks - first.cpuTicks) / 100 / (last.seconds - first.seconds)
        let settled = samples.first { $0.seconds >= 5 } ?? first
        let peak = samples.map(\.rssKiB).max() ?? 0
        print("watch under churn (\(node ? "--all-netns" : "--netns"), \(lanes) churners × \(rate)/s aimed, \(Int(seconds)) s)")
        print("  conntrack changes reached   \(changes)/s (each a NEW or DESTROY event)")
        print("  watch CPU                   \(String(format: "%.1f", cpu * 100)) % of a core")
        print("  watch RSS                   \(settled.rssKiB / 1024) MiB at 5 s, \(last.rssKiB / 1024) MiB at the end, peak \(peak / 1024) MiB")
        print("  events-lost reports         \(lost)")
        print("  journal lines               \(lines.count)")
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

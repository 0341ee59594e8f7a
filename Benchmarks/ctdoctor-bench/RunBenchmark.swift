import ArgumentParser
import Conntrack
import Foundation
import KernelIO
import Live
import Sockets

/// The foundation benchmark: a throwaway namespace whose conntrack table and socket
/// table grow through stages up to node scale (a million entries, half a million
/// sockets), then a node of pod-like namespaces; every contender runs as a whole process
/// through `ip netns exec` with output to /dev/null, in interleaved rounds so machine
/// noise hits all alike.
struct RunBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the benchmark and print medians and ratios (needs root).")

    @Option(help: "Conntrack entries of the largest stage (nf_conntrack_max and its buckets are raised for the run, then restored).")
    var entries = 1_048_576
    @Option(help: "TCP sockets held open at the largest stage, in mixed states.") var sockets = 500_000
    @Option(help: "Pod-like namespaces of the node stage, each with a sidecar, 1,500 sockets and 3 leaks (0: skip it).")
    var pods = 100
    @Option(help: "Buckets of each pod's own socket hash (net.ipv4.tcp_child_ehash_entries) for a second node stage beside the shared-hash one (0: skip it).")
    var podSocketHash = 4096
    @Option(help: "Rounds per contender; medians are reported.") var repeats = 5
    @Option(help: "The ctdoctor binary to measure; default: the tarball's, else the one next to this one.") var ctdoctor: String?
    @Option(help: "A release tarball (scripts/release) to weigh, whose binary is the one measured unless --ctdoctor names another.")
    var tarball: String?
    @Flag(help: "Keep the namespace and its sockets after measuring, until Enter is pressed.") var keep = false

    func run() throws {
        guard getuid() == 0 else { throw ValidationError("the benchmark creates a network namespace: run it as root") }
        let selfPath = try ProcFS().readLink("/proc/self/exe")
        // What users run is the tarball's binary: the one next to this benchmark is
        // whatever `swift build -c release` linked last, the dynamic runtime's unless
        // scripts/release ran after it, which costs start time in every row.
        let unpacked = ctdoctor == nil ? try tarball.map(UnpackedTarball.init) : nil
        defer { unpacked?.remove() }
        let binary = ctdoctor ?? unpacked?.binary ?? (selfPath as NSString).deletingLastPathComponent + "/ctdoctor"
        print("# ctdoctor benchmark — up to \(sockets) sockets and \(entries) conntrack entries, then \(pods) pod namespaces; \(repeats) rounds")
        print("# measuring \(binary)")
        print("# kernel \(try BenchNamespace.run(["uname", "-r"]).trimmingCharacters(in: .whitespacesAndNewlines)), \(ProcessInfo.processInfo.activeProcessorCount) cores")
        // The sockets' own flows take conntrack entries too.
        let capacity = try ConntrackCapacity.raise(toHold: entries + sockets + 100_000)
        defer { capacity.restore() }
        if let note = capacity.note { print("# \(note)") }

        print("")
        print(try SizeAndStart(binary: binary, tarball: tarball).report(measure: { try measure($0, rounds: max(repeats, 20)) }, table: table), terminator: "")
        print("")
        try tableStages(binary: binary, selfPath: selfPath)
        if pods > 0 {
            print("")
            print(try NodeStage(pods: pods, binary: binary, helper: selfPath).report(measure: measure, table: table), terminator: "")
            if podSocketHash > 0 {
                print("")
                print(try NodeStage(pods: pods, binary: binary, helper: selfPath, ownSocketHash: podSocketHash).report(measure: measure, table: table), terminator: "")
            }
        }
        print("")
        let lintDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-lint-bench-\(getpid())")
        try FileManager.default.createDirectory(at: lintDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: lintDirectory) }
        print(LintBenchmark.report(try LintBenchmark.rows([10_000, 100_000], binary: binary, directory: lintDirectory, repeats: min(repeats, 3))), terminator: "")
        print("Reproduce: scripts/release && swift build -c release --product ctdoctor-bench && sudo .build/release/ctdoctor-bench run --tarball dist/ctdoctor-*.tar.gz")
    }

    /// The leaks the table stages have made by the last one: a node-scale stage is 1M
    /// entries, 500k sockets and this many leaks.
    static let leaksByLastStage = 1_000

    /// diagnose must cost what its suspects cost, not what the tables cost: measure it as
    /// both tables grow, beside the raw dump and beside the way a user gets the same
    /// answer without it. Each stage adds sockets, fills conntrack up to the stage's size
    /// and turns half-closed flows into leaks (`leaksByLastStage` in all by the last).
    func tableStages(binary: String, selfPath: String) throws {
        let lab = try BenchNamespace(name: "ctd-bench-\(getpid())")
        defer { lab.destroy() }
        var holders: [Holder] = []
        defer { holders.forEach { $0.release() } }
        let stages = [(10_000, 10_000), (100_000, 100_000), (100_000, 262_144), (sockets, entries)]
            .map { (min($0.0, sockets), min($0.1, entries)) }
            .reduce(into: [(Int, Int)]()) { list, stage in if list.last.map({ $0 != stage }) ?? true { list.append(stage) } }
        var diagnoseRows: [(String, Row, Row, Row)] = []
        var held = 0
        var inserted = 0
        var leaks = 0
        for (index, (socketTarget, entryTarget)) in stages.enumerated() {
            let last = index == stages.count - 1
            if socketTarget > held {
                holders += try lab.holdSockets(
                    total: socketTarget - held, helper: selfPath, firstHolder: holders.count,
                    halfClosedOnCapturePort: Self.leaksByLastStage + 100)
                held = socketTarget
            }
            let before = try lab.conntrackCount()
            let fill = try ConntrackFiller.fill(namespace: lab.namespace, count: max(0, entryTarget - before), firstIndex: inserted)
            inserted += fill.inserted + fill.refused
            leaks = try lab.leak(flows: last ? max(100, Self.leaksByLastStage - leaks) : 100, port: 15001)
            let size = try lab.conntrackCount()
            let socketCount = try SocketReader(namespace: lab.namespace).sockets(withInfo: false).0.count
            let label = "\(size) entries, \(socketCount) sockets, \(leaks) leaks"
            let rows = try measure([
                ("raw netlink dump, count only", lab.exec([selfPath, "raw-count"])),
                ("conntrack -L + ss -tanoi", lab.exec(["sh", "-c", "conntrack -L; ss -tanoi"])),
                ("ctdoctor diagnose", lab.exec([binary, "diagnose", "--fail-on", "never", "--format", "json"])),
            ])
            diagnoseRows.append((label, rows[0], rows[1], rows[2]))
            if last {
                try finalStage(lab: lab, binary: binary, selfPath: selfPath, socketCount: socketCount)
            } else if entryTarget == 262_144 {
                print("")
                print("## Conntrack (\(size) entries, \(socketCount) sockets)")
                print(table(try measure(conntrackContenders(lab: lab, binary: binary, selfPath: selfPath)), baseline: "raw netlink dump, count only"))
            }
        }

        print("")
        // Say the leaks that were made, not the ones asked for: a stage short of suspects
        // (too few half-closed sockets on 15001 alive in conntrack) would otherwise be
        // reported under a heading it did not meet.
        print("## diagnose as the tables grow (\(leaks) leaked sockets by the last stage among the FIN_WAIT2 suspects on 15001, \(Self.leaksByLastStage) asked for; 100 silent accepted connections, stall candidates, among its ESTABLISHED)")
        print("| tables | raw full dump, count only | conntrack -L + ss -tanoi | ctdoctor diagnose | ratio to the raw dump | ratio to conntrack -L + ss | diagnose user CPU | diagnose peak RSS |")
        print("|---|---|---|---|---|---|---|---|")
        for (label, raw, user, diagnose) in diagnoseRows {
            print(String(
                format: "| %@ | %.0f ms | %.0f ms | %.0f ms | **%.3fx** | **%.4fx** | %.0f ms | %.1f MiB |", label, raw.wall * 1000,
                user.wall * 1000, diagnose.wall * 1000, diagnose.wall / raw.wall, diagnose.wall / user.wall, diagnose.user * 1000,
                Double(diagnose.rssKiB) / 1024))
        }
        print("Targets: diagnose <= 0.1x the raw full dump and <= 0.05x conntrack -L + ss -tanoi at 262k/100k, <= 0.02x at 1M/500k, flat as the tables grow.")
        print("Where diagnose's time goes on the largest tables (CTDOCTOR_TRACE=1): " + (try Trace.phases(of: lab.exec([binary, "diagnose", "--fail-on", "never"]))))
        if keep {
            print("namespace \(lab.name) kept; press Enter to tear it down")
            _ = readLine()
        }
    }

    func conntrackContenders(lab: BenchNamespace, binary: String, selfPath: String) -> [(String, [String])] {
        [
            ("raw netlink dump, count only", lab.exec([selfPath, "raw-count"])),
            ("ctdoctor conntrack --count", lab.exec([binary, "conntrack", "--count"])),
            ("ctdoctor conntrack (table)", lab.exec([binary, "conntrack"])),
            ("ctdoctor conntrack --format ndjson", lab.exec([binary, "conntrack", "--format", "ndjson"])),
            ("ctdoctor pressure --interval 0", lab.exec([binary, "pressure", "--interval", "0", "--format", "json", "--fail-on", "never"])),
            ("conntrack -L", lab.exec(["conntrack", "-L"])),
            ("cat /proc/net/nf_conntrack", lab.exec(["cat", "/proc/net/nf_conntrack"])),
        ]
    }

    /// The listings on the largest tables: sockets, conntrack, and conntrack again with
    /// the other core taken by a spinning process.
    func finalStage(lab: BenchNamespace, binary: String, selfPath: String, socketCount: Int) throws {
        let tcpBytes = try lab.namespace.run { try ProcFS().readNet("tcp") }
        let tcp6Bytes = try lab.namespace.run { try ProcFS().readNet("tcp6") }
        let procRate = try ProcTCPSpeed.linesPerSecond(tcpBytes + tcp6Bytes, repeats: 5)
        let socketRows = try measure([
            ("raw sock_diag dump, count only (one walk, both families)", lab.exec([selfPath, "raw-socket-count"])),
            ("raw sock_diag dump, count only (a walk per family, as ss)", lab.exec([selfPath, "raw-socket-count", "--per-family"])),
            ("ctdoctor sockets (table)", lab.exec([binary, "sockets"])),
            ("ctdoctor sockets --format ndjson", lab.exec([binary, "sockets", "--format", "ndjson"])),
            ("ss -tan", lab.exec(["ss", "-tan"])),
            ("ss -tani", lab.exec(["ss", "-tani"])),
        ])
        print("")
        print("## TCP sockets (\(socketCount))")
        print(table(socketRows, baseline: "ss -tan"))
        print("Targets: ctdoctor sockets (table and ndjson) <= 0.6x ss -tan, peak RSS <= 16 MiB at 500k.")
        print(String(format: "/proc/net/tcp{,6} parse: %.2f M lines/s (target >= 3)", procRate / 1e6))

        let tableSize = try lab.conntrackCount()
        print("")
        print("## Conntrack (\(tableSize) entries)")
        print(table(try measure(conntrackContenders(lab: lab, binary: binary, selfPath: selfPath)), baseline: "raw netlink dump, count only"))
        print("Targets: the table <= 1.5x and ndjson <= 1.2x the raw count-only dump, peak RSS <= 32 MiB; ndjson's decode overlapping the kernel's walk (wall < user + sys). pressure's summary <= 1.2x the raw dump, peak RSS <= 32 MiB.")

        // The decode must not need a free core: spin on core 1 while both run.
        let spinner = try Holder(["taskset", "-c", "1", selfPath, "spin"])
        let busyRows: [Row]
        do {
            defer { spinner.kill() }
            busyRows = try measure([
                ("raw netlink dump, count only", lab.exec([selfPath, "raw-count"])),
                ("ctdoctor conntrack --format ndjson", lab.exec([binary, "conntrack", "--format", "ndjson"])),
            ])
        }
        print("")
        print("## Conntrack (\(tableSize) entries) with one core busy (a process spinning on core 1)")
        print(table(busyRows, baseline: "raw netlink dump, count only"))
        print("Target: ndjson <= 1.5x the raw count-only dump.")
    }

    struct Row {
        var name: String
        var wall: Double
        var user: Double
        var system: Double
        var rssKiB: Int
        var failures: Int
    }

    /// Runs each contender `repeats` times, round-robin, and takes medians. Each runs
    /// under GNU time, whose %M is the peak RSS of the contender alone (see runMeasured).
    func measure(_ contenders: [(String, [String])]) throws -> [Row] { try measure(contenders, rounds: repeats) }

    func measure(_ contenders: [(String, [String])], rounds: Int) throws -> [Row] {
        let peakFile = "/tmp/ctdoctor-bench-peak-\(getpid())"
        defer { unlink(peakFile) }
        var samples = Array(repeating: [(ProcessMeasurement, Double)](), count: contenders.count)
        for _ in 0..<rounds {
            for (index, contender) in contenders.enumerated() {
                let run = try runMeasured(["/usr/bin/time", "-f", "%M", "-o", peakFile] + contender.1)
                let peak = Double(try String(contentsOfFile: peakFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan
                samples[index].append((run, peak))
            }
        }
        return contenders.enumerated().map { index, contender in
            Row(
                name: contender.0,
                wall: median(samples[index].map(\.0.wallSeconds)),
                user: median(samples[index].map(\.0.userSeconds)),
                system: median(samples[index].map(\.0.systemSeconds)),
                rssKiB: Int(median(samples[index].map(\.1))),
                failures: samples[index].filter { $0.0.exitStatus != 0 }.count)
        }
    }

    func table(_ rows: [Row], baseline: String) -> String {
        let base = rows.first { $0.name == baseline }!.wall
        var text = "| contender | median wall | ratio to \(baseline) | user CPU | user + sys CPU | peak RSS |\n|---|---|---|---|---|---|\n"
        for row in rows {
            let failed = row.failures > 0 ? " (\(row.failures) runs FAILED)" : ""
            text += String(
                format: "| %@%@ | %.0f ms | %.2fx | %.0f ms | %.0f ms | %.1f MiB |\n",
                row.name, failed, row.wall * 1000, row.wall / base, row.user * 1000, (row.user + row.system) * 1000,
                Double(row.rssKiB) / 1024)
        }
        return text
    }
}

/// The throwaway namespace and the processes inside it.
final class BenchNamespace {
    let name: String
    let namespace: NetworkNamespace

    init(name: String) throws {
        self.name = name
        _ = try Self.run(["ip", "netns", "add", name])
        namespace = NetworkNamespace(path: "/var/run/netns/\(name)", name: name)
        _ = try shell(["ip", "link", "set", "lo", "up"])
        // Long conntrack timeouts keep the table's size steady while the benchmark runs;
        // leaks are made on purpose by deleting entries (see leak(flows:port:)).
        _ = try shell([
            "sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=1024 65535",
            "net.ipv4.tcp_max_tw_buckets=262144", "net.netfilter.nf_conntrack_tcp_timeout_time_wait=3600",
            "net.netfilter.nf_conntrack_tcp_timeout_close_wait=3600",
        ])
    }

    func destroy() { _ = try? Self.run(["ip", "netns", "del", name]) }

    func exec(_ command: [String]) -> [String] { ["ip", "netns", "exec", name] + command }

    @discardableResult
    func shell(_ command: [String]) throws -> String { try Self.run(exec(command)) }

    func conntrackCount() throws -> Int {
        Int(try namespace.run { try ProcFS().readSysctl("net/netfilter/nf_conntrack_count") }) ?? 0
    }

    /// Starts helpers that each hold up to 25,000 sockets (16,000 descriptors, under the
    /// 20,000 RLIMIT_NOFILE this machine allows): 48% ESTABLISHED, 16% half-closed
    /// (FIN_WAIT2 on the listener side, CLOSE_WAIT on the client), 36% TIME_WAIT. The
    /// ESTABLISHED connections carried a request and its answer, except
    /// `silentOnCapturePort` of the first holder's: the sidecar's stall candidates. The
    /// first holder half-closes at least `halfClosedOnCapturePort` of its connections
    /// (taken from its TIME_WAIT share): only those can become leaks later, and 8% of the
    /// first stage's 10,000 sockets is fewer than the 1,000 leaks the last stage makes.
    func holdSockets(
        total: Int, helper: String, firstHolder: Int = 0, silentOnCapturePort: Int = 100,
        halfClosedOnCapturePort: Int = 0, alsoListen: [UInt16] = []
    ) throws -> [Holder] {
        let perHolder = 25_000
        let count = max(1, (total + perHolder - 1) / perHolder)
        var holders: [Holder] = []
        for index in firstHolder..<(firstHolder + count) {
            let quota = total / count
            // The first holder plays the sidecar's outbound listener; the others listen
            // elsewhere, as an app's own servers would.
            let listenPort = 15001 + index * 10
            let dialPort = 8080 + index
            // Dial a service port that iptables REDIRECTs to the listener, like a sidecar.
            _ = try shell([
                "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.0.0.1", "--dport", "\(dialPort)",
                "-j", "REDIRECT", "--to-ports", "\(listenPort)",
            ])
            let established = quota * 24 / 100
            let halfClosed = index == 0 ? max(quota * 8 / 100, min(halfClosedOnCapturePort, quota / 4)) : quota * 8 / 100
            let timeWait = quota - 2 * (established + halfClosed)
            holders.append(
                try Holder(
                    exec([
                        helper, "hold-sockets", "--listen-port", "\(listenPort)", "--dial-port", "\(dialPort)",
                        "--established", "\(established)", "--half-closed", "\(halfClosed)", "--time-wait", "\(timeWait)",
                        "--silent", "\(index == 0 ? min(silentOnCapturePort, established) : 0)",
                    ] + (index == firstHolder ? alsoListen.flatMap { ["--also-listen", "\($0)"] } : []))))
        }
        for holder in holders { try holder.waitReady() }
        return holders
    }

    /// Deletes the conntrack entries of `flows` half-closed flows whose proxy socket is
    /// in FIN_WAIT2 on `port`, as their expiry would: those sockets become leaks.
    func leak(flows: Int, port: UInt16) throws -> Int {
        let suspects = try SocketReader(namespace: namespace).sockets(in: [.finWait2], withInfo: false, localPorts: [port]).0
        let keys = suspects.map { ReplyTupleKey(source: $0.local, destination: $0.remote) }
        let alive = try ConntrackReplyLookup(namespace: namespace).entries(for: keys)
        let socket = try namespace.run { try NetlinkSocket(bus: .netfilter) }
        var deleted = 0
        var buffer = [UInt8](repeating: 0, count: 8192)
        for key in keys where alive[key] != nil && deleted < flows {
            try socket.send(ConntrackRequest.delete(replyOf: key, sequence: UInt32(deleted + 1)))
            _ = try socket.receive(into: &buffer)
            deleted += 1
        }
        return suspects.count - alive.count + deleted
    }

    @discardableResult
    static func run(_ command: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ValidationError("\(command.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Where a ctdoctor run's time goes: its CTDOCTOR_TRACE lines, by phase, summed over the
/// namespaces of a sweep (counts and families in parentheses dropped, so phases add up).
enum Trace {
    static func phases(of command: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["CTDOCTOR_TRACE=1"] + command
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let data = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var order: [String] = []
        var totals: [String: (milliseconds: Double, count: Int)] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let body = line.firstRange(of: "trace: ").map({ line[$0.upperBound...] }),
                let colon = body.lastIndex(of: ":"),
                let milliseconds = Double(body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces).replacing(" ms", with: ""))
            else { continue }
            var phase = String(body[..<colon])
            // "(900)", "(ipv4, ipv6)" vary by namespace; "(other core)", "(waiting)" say what the time is.
            if let open = phase.firstIndex(of: "("), phase.last == ")", phase[open...].contains(where: { $0.isNumber || $0 == "," }) {
                phase = String(phase[..<open]).trimmingCharacters(in: .whitespaces)
            }
            if totals[phase] == nil { order.append(phase) }
            totals[phase, default: (0, 0)].milliseconds += milliseconds
            totals[phase, default: (0, 0)].count += 1
        }
        return order.map { phase in
            let total = totals[phase]!
            return String(format: "%@ %.0f ms", phase, total.milliseconds) + (total.count > 1 ? " (\(total.count)×)" : "")
        }.joined(separator: "; ")
    }
}

/// A helper process of the benchmark (hold-sockets, spin): it holds its sockets until
/// its standard input closes, or runs until killed.
final class Holder {
    let process = Process()
    let input = Pipe()
    let output = Pipe()

    init(_ command: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    func waitReady() throws {
        let line = String(decoding: output.fileHandleForReading.availableDataUntilNewline(), as: UTF8.self)
        guard line.hasPrefix("ready") else { throw ValidationError("socket holder failed: \(line)") }
    }

    func release() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    func kill() {
        process.terminate()
        process.waitUntilExit()
    }
}

extension FileHandle {
    func availableDataUntilNewline() -> Data {
        var data = Data()
        while true {
            let byte = readData(ofLength: 1)
            if byte.isEmpty || byte == Data([0x0A]) { return data }
            data.append(byte)
        }
    }
}

/// A release tarball unpacked in a directory of its own, for its `bin/ctdoctor`.
struct UnpackedTarball {
    let directory: String
    let binary: String

    init(_ tarball: String) throws {
        // A fresh directory of mkdtemp's, never one left (or planted) under a known name.
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("ctdoctor-bench-tarball-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw ValidationError("cannot make a directory to unpack \(tarball) in: errno \(errno)")
        }
        let directory = String(cString: made)
        self.directory = directory
        do {
            _ = try BenchNamespace.run(["tar", "-xf", tarball, "-C", directory])
            let roots = try FileManager.default.contentsOfDirectory(atPath: directory)
            guard roots.count == 1, FileManager.default.isExecutableFile(atPath: "\(directory)/\(roots[0])/bin/ctdoctor") else {
                throw ValidationError("\(tarball) does not hold one directory with bin/ctdoctor (found \(roots))")
            }
            binary = "\(directory)/\(roots[0])/bin/ctdoctor"
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

import Foundation
import KernelIO
import NetCore
import Lab
import TestSupport
import Testing

/// A `ctdoctor watch --format ndjson` process on a namespace, its journal in a temporary
/// file (a pipe could fill and stall it), read back as the events so far.
final class WatchRun {
    let process = Process()
    let journal = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-watch-\(UUID().uuidString).ndjson")

    convenience init(namespace: String, duration: String, extra: [String] = []) throws {
        try self.init(arguments: ["--netns", namespace, "--duration", duration] + extra)
        // Subscribed before the caller makes its leaks (the late one's entry goes ~2 s
        // into the lab's build), with room for a slow start on a busy machine.
        usleep(3_000_000)
    }

    /// `ctdoctor watch --format ndjson` with `arguments`.
    init(arguments: [String]) throws {
        _ = FileManager.default.createFile(atPath: journal.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Binary.ctdoctor)
        process.arguments = ["watch", "--format", "ndjson"] + arguments
        process.standardOutput = try FileHandle(forWritingTo: journal)
        try process.run()
    }

    /// The first event that `matches`, waiting up to `seconds` for it.
    func await(seconds: Double, _ matches: ([String: Any]) -> Bool) throws -> [String: Any]? {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if let found = try events().first(where: matches) { return found }
            usleep(100_000)
        } while Date() < deadline
        return nil
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: journal)
    }

    func events() throws -> [[String: Any]] {
        try String(contentsOf: journal, encoding: .utf8).split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    /// Ends it as an operator would; true when it exited 0.
    func stop() -> Bool {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationReason == .exit && process.terminationStatus == 0
    }
}

/// `ctdoctor watch` on the half-close lab: the leak reported when conntrack destroys its
/// flow, not minutes later, and its end when the socket goes. Needs root; with CI=true it
/// never skips.
@Suite("watch", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
struct WatchTests {
    @Test func aLeakIsReportedWhenConntrackForgetsItsFlowAndAgainWhenItsSocketGoes() throws {
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("watch"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        let textfile = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-watch-\(UUID().uuidString).prom")
        defer { try? FileManager.default.removeItem(at: textfile) }
        let watch = try WatchRun(namespace: lab.lab.name, duration: "20s", extra: ["--textfile", textfile.path])
        let events = watch.events
        try lab.build()
        let leakedPort = try #require(lab.flows.first { $0.expected == .leaked }?.appPort)
        func born() throws -> [String: Any]? {
            try events().first { $0["event"] as? String == "leak-born" && ($0["app"] as? String)?.hasSuffix(":\(leakedPort)") == true }
        }
        for _ in 0..<150 where try born() == nil { usleep(100_000) }
        let seenBirth = try events()
        let birth = try #require(try born(), "no leak-born for port \(leakedPort): \(seenBirth)")
        #expect(birth["schema"] as? String == "ctdoctor.watch.v1" && (birth["proxy"] as? String)?.hasSuffix(":15001") == true)
        #expect(birth["original_destination"] as? String == "10.96.0.10:80" && birth["cookie"] is Int)
        // Nothing but the lab's half-closes leaked.
        let otherPorts = Set(lab.flows.filter { $0.expected != .leaked && $0.expected != .atRisk }.map(\.appPort))
        #expect(try events().filter { $0["event"] as? String == "leak-born" }.allSatisfy { event in
            !otherPorts.contains { (event["app"] as? String)?.hasSuffix(":\($0)") == true }
        })

        // End the leak the way an operator would; the next sweep reports it with its lifetime.
        let reaped = try Shell.run([Binary.ctdoctor, "leaks", "--netns", lab.lab.name, "--reap", "--yes", "--min-idle", "0s"])
        #expect(reaped.status == 0 || reaped.status == 1, "\(reaped.standardError)")
        func ended() throws -> [String: Any]? {
            try events().first { $0["event"] as? String == "leak-ended" && $0["cookie"] as? Int == birth["cookie"] as? Int }
        }
        for _ in 0..<150 where try ended() == nil { usleep(100_000) }
        let seenEnd = try events()
        let end = try #require(try ended(), "no leak-ended after the reap: \(seenEnd)")
        #expect((end["lifetime_seconds"] as? Double ?? -1) > 0)
        #expect(watch.stop(), "SIGTERM ends it cleanly")

        // The textfile, as Prometheus' promtool and prometheus_client read it.
        let metrics = try ParsedExposition(file: textfile.path)
        let namespace = ["netns": lab.lab.name]
        #expect((metrics.value("ctdoctor_watch_leaks_born", namespace) ?? 0) >= 1, "\(metrics.families.keys.sorted())")
        #expect((metrics.value("ctdoctor_watch_leaks_ended", namespace) ?? 0) >= 1)
        #expect(metrics.families["ctdoctor_watch_leaks_born"]?.type == "counter")
        let lifetimes = try #require(metrics.families["ctdoctor_watch_leak_lifetime_seconds"])
        #expect(lifetimes.type == "histogram" && lifetimes.samples.contains { $0.labels["le"] == "+Inf" && $0.value >= 1 })
    }

    @Test func aCollisionIsSeenAsItHappensAndItsOutcomeFollows() throws {
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("watchcoll"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        let watch = try WatchRun(namespace: lab.lab.name, duration: "30s")
        let events = watch.events
        // A leak, then a connect from its port: on this kernel it recovers.
        let attempt = try lab.collide(emulateOldKernel: false, timeoutSeconds: 4) {
            throw CancellationError()
        }
        func event(_ kind: String) throws -> [String: Any]? {
            try events().first { $0["event"] as? String == kind && ($0["app"] as? String)?.hasSuffix(":\(attempt.port)") == true }
        }
        for _ in 0..<150 where try event("collision-recovered") == nil && attempt.connected { usleep(100_000) }
        let seen = try events()
        let born = try #require(try event("leak-born"), "\(seen)")
        let collision = try #require(try event("collision"), "no collision seen for port \(attempt.port): \(seen)")
        #expect(collision["cookie"] as? Int == born["cookie"] as? Int && (collision["time"] as? Double ?? 0) >= (born["time"] as? Double ?? 0))
        if attempt.connected {
            let recovered = try #require(try event("collision-recovered"), "\(seen)")
            #expect((recovered["after_seconds"] as? Double ?? -1) >= 0 && (recovered["after_seconds"] as? Double ?? 99) < Double(attempt.seconds) + 5)
            // The outcome carries the counters' step, read in the namespace when the
            // collision was seen and when it ended. How large it is depends on how soon
            // the watch read the collision (on a busy machine, after the retransmit), so
            // what is checked is that both readings were made, of every counter.
            let steps = try #require(recovered["counter_steps"] as? [String: Int], "\(recovered)")
            #expect(Set(steps.keys) == ["TcpExtTCPChallengeACK", "TcpExtTCPSYNChallenge", "TcpExtTCPSynRetrans"], "\(steps)")
        }
        #expect(watch.stop())
    }
}

/// A stall as it happens: the server-first lab's sniffing proxy holds an SMTP greeting
/// back; watch reports that connection (and only it) as a stall on a server-first port.
@Suite("watch sees stalls", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
struct WatchStallTests {
    @Test func theHeldGreetingIsAStallOnAServerFirstPortAndNothingElseIs() throws {
        let lab = try ServerFirstLab(name: TestNamespace.uniqueName("watchstall"), mesh: .istio, say: { _ in })
        defer { lab.tearDown() }
        let watch = try WatchRun(namespace: lab.lab.name, duration: "60s", extra: ["--stall-after", "1s", "--sidecar", "istio"])
        try lab.build(stallAfterSeconds: 1)
        let stalledPort = try #require(lab.flows.first(where: \.expectStalled)?.appPort)
        let stall = try watch.await(seconds: 12) { $0["event"] as? String == "stall" }
        let seen = try watch.events()
        let event = try #require(stall, "no stall reported: \(seen)")
        #expect((event["app"] as? String)?.hasSuffix(":\(stalledPort)") == true, "\(event)")
        #expect(event["original_destination"] as? String == "\(ServerFirstLab.smtpServer):\(ServerFirstLab.stalledPort)")
        #expect(event["protocol"] as? String == "SMTP" && event["server_first"] as? Bool == true)
        #expect((event["after_seconds"] as? Double ?? 0) >= 1)
        #expect(seen.filter { $0["event"] as? String == "stall" }.count == 1, "only the sniffed SMTP connection stalls: \(seen)")
        #expect(watch.stop())
    }
}

/// Events the kernel drops are never silent: a watch stopped while 20,000 entries arrive
/// on a 64 KiB buffer comes back to ENOBUFS, says so, reads the namespace again, and still
/// knows its leak (once: the full read does not report it a second time).
@Suite("watch when the kernel drops events", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
struct WatchOverrunTests {
    @Test func anOverrunIsReportedAndTheLeaksAreReadAgainWithoutDuplicates() throws {
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("watchlost"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        try lab.build()
        let leakedPort = try #require(lab.flows.first { $0.expected == .leaked }?.appPort)
        let watch = try WatchRun(namespace: lab.lab.name, duration: "60s", extra: ["--event-buffer", "64K"])
        let found = try watch.await(seconds: 10) { $0["event"] as? String == "leak-found" && ($0["app"] as? String)?.hasSuffix(":\(leakedPort)") == true }
        let seenAtStart = try watch.events()
        let leak = try #require(found, "the leak already there was not found at the start: \(seenAtStart)")

        // The watch cannot read while stopped; the kernel queues what fits and drops the rest.
        kill(watch.process.processIdentifier, SIGSTOP)
        let filled = try Shell.run([Binary.bench, "fill-conntrack", "--netns", lab.lab.name, "--entries", "20000"])
        kill(watch.process.processIdentifier, SIGCONT)
        #expect(filled.status == 0, "\(filled.standardError)")
        let lost = try watch.await(seconds: 15) { $0["event"] as? String == "events-lost" }
        let seen = try watch.events()
        let overrun = try #require(lost, "no events-lost after 20,000 events on a 64 KiB buffer: \(seen.suffix(5))")
        #expect((overrun["overruns"] as? Int ?? 0) >= 1 && (overrun["detail"] as? String)?.contains("ENOBUFS") == true)
        #expect(seen.filter { $0["cookie"] as? Int == leak["cookie"] as? Int && $0["event"] as? String == "leak-found" }.count == 1,
            "the full read after the overrun reported the known leak again")

        // Still tracked after the resynchronisation: its end is seen.
        let reaped = try Shell.run([Binary.ctdoctor, "leaks", "--netns", lab.lab.name, "--reap", "--yes", "--min-idle", "0s"])
        #expect(reaped.status == 0 || reaped.status == 1, "\(reaped.standardError)")
        let ended = try watch.await(seconds: 10) { $0["event"] as? String == "leak-ended" && $0["cookie"] as? Int == leak["cookie"] as? Int }
        let seenEnd = try watch.events()
        #expect(ended != nil, "\(seenEnd.suffix(5))")
        #expect(watch.stop())
    }
}

/// Counts stay exact under load: two churners create and delete unrelated conntrack
/// entries (tens of thousands of events a second) in the lab's namespace while its leak
/// is made; the watch reports that leak once and nothing else as a leak. The kernel's
/// capture-port filter keeps the churn off the event socket, so even a 64 KiB buffer
/// never overflows. What the load costs the watch is the benchmark's
/// (`ctdoctor-bench watch-load`), not a timed test's.
@Suite("watch under churn", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
struct WatchLoadTests {
    @Test func theLabsLeakIsCountedOnceAndTheChurnNeverLooksLikeALeak() throws {
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("watchload"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        let watch = try WatchRun(namespace: lab.lab.name, duration: "60s", extra: ["--event-buffer", "64K"])
        let churners = try Churners(namespace: lab.lab.name, rate: 25000, seconds: 60)
        usleep(1_000_000)
        try lab.build()
        let leakedPort = try #require(lab.flows.first { $0.expected == .leaked }?.appPort)
        let born = try watch.await(seconds: 10) {
            ["leak-born", "leak-found"].contains($0["event"] as? String) && ($0["app"] as? String)?.hasSuffix(":\(leakedPort)") == true
        }
        #expect(churners.allRunning, "the churn lasted until the leak was seen")
        let (rate, failures) = churners.stop()
        #expect(failures.isEmpty, "\(failures)")
        let events = try watch.events()
        #expect(born != nil, "the lab's leak was not seen under \(rate) changes/s: \(events.suffix(5))")
        // The leak, once; the lab's fresh half-close (its entry lasts 60 s, about as long
        // as the churn) at most once; nothing else.
        let halfClosed = Set(lab.flows.filter { $0.expected == .leaked || $0.expected == .atRisk }.map(\.appPort))
        let leakEvents = events.filter { ["leak-born", "leak-found"].contains($0["event"] as? String) }
        let ports = leakEvents.compactMap { ($0["app"] as? String)?.split(separator: ":").last.flatMap { UInt16($0) } }
        #expect(ports.filter { $0 == leakedPort }.count == 1, "\(leakEvents)")
        #expect(Set(ports).isSubset(of: halfClosed) && Set(ports).count == ports.count, "only the lab's half-closes, each once: \(leakEvents)")
        #expect(rate >= 10_000, "the churn reached \(rate) changes/s")
        #expect(!events.contains { $0["event"] as? String == "events-lost" }, "the churn reached the event socket: \(events.suffix(3))")
        #expect(watch.stop())
    }
}

/// `ctdoctor watch --all-netns`: a pod that appears while it runs is watched, its leak
/// seen born there and labelled with its namespace, and its deletion ends the leak.
@Suite("watch over the node", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
struct NodeWatchTests {
    /// A namespace's `net:[INODE]`, as a node watch names it.
    func label(of lab: HalfCloseLab) throws -> String {
        var status = stat()
        guard stat("/var/run/netns/\(lab.lab.name)", &status) == 0 else { throw CocoaError(.fileNoSuchFile) }
        return "net:[\(status.st_ino)]"
    }

    /// The processes whose namespace `netns` is, with their commands.
    func holders(of netns: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.filter { Int($0) != nil }.compactMap { pid in
            guard (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/net")) == netns else { return nil }
            let command = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8))?.replacingOccurrences(of: "\u{0}", with: " ") ?? "?"
            return "\(pid): \(command)"
        }
    }

    @Test func aPodThatAppearsIsWatchedItsLeakSeenBornAndItsDeletionEndsIt() throws {
        let watch = try WatchRun(arguments: ["--all-netns", "--duration", "60s"])
        // Watching the node before the pod exists.
        let first = try watch.await(seconds: 10) { $0["event"] as? String == "namespace-added" }
        let seenStarting = try watch.events()
        #expect(first != nil, "\(seenStarting)")
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("nodewatch"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        let netns = try label(of: lab)
        let added = try watch.await(seconds: 12) { $0["event"] as? String == "namespace-added" && $0["namespace"] as? String == netns }
        let seenAdding = try watch.events()
        try #require(added != nil, "the new namespace \(netns) was not added: \(seenAdding)")
        try lab.build()
        let leakedPort = try #require(lab.flows.first { $0.expected == .leaked }?.appPort)
        let born = try watch.await(seconds: 8) {
            $0["event"] as? String == "leak-born" && ($0["app"] as? String)?.hasSuffix(":\(leakedPort)") == true
        }
        let seenBirth = try watch.events()
        let birth = try #require(born, "no leak-born for port \(leakedPort): \(seenBirth)")
        #expect(birth["namespace"] as? String == netns, "the event names the namespace it happened in")
        // No other namespace of the node saw this lab's leak.
        #expect(try watch.events().filter { $0["event"] as? String == "leak-born" && ($0["app"] as? String)?.hasSuffix(":\(leakedPort)") == true }.count == 1)

        // The pod is deleted: its leak ends with it, and the namespace is let go.
        lab.tearDown()
        let gone = try watch.await(seconds: 12) { $0["event"] as? String == "namespace-gone" && $0["namespace"] as? String == netns }
        let seenGoing = try watch.events()
        try #require(gone != nil, "\(netns) was not reported gone (held by \(holders(of: netns))): \(seenGoing)")
        let ended = seenGoing.first { $0["event"] as? String == "leak-ended" && $0["cookie"] as? Int == birth["cookie"] as? Int }
        #expect(ended?["namespace"] as? String == netns, "\(seenGoing)")
        #expect(!seenGoing.contains { $0["event"] as? String == "namespace-failed" && $0["namespace"] as? String == netns }, "\(seenGoing)")
        #expect(watch.stop())
    }
}

/// The monitoring stack a node runs, started on loopback: watch serving /metrics and
/// writing its textfile, Debian's node_exporter reading that file, and Debian's Prometheus
/// scraping both. What Prometheus' HTTP API answers is what an SRE's dashboard shows.
@Suite("watch feeds a real Prometheus", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
struct PrometheusScrapeTests {
    /// Loopback ports nothing listens on now, all different (each held until all are picked).
    func freePorts(_ count: Int) throws -> [UInt16] {
        let listeners = try (0..<count).map { _ in try StreamSocket.listen(on: Endpoint(.v4(0x7F00_0001), 0)) }
        defer { listeners.forEach { $0.close() } }
        return try listeners.map { try $0.localEndpoint().port }
    }

    /// GET over HTTP/1.0 on loopback: the body.
    func get(port: UInt16, _ target: String) throws -> String {
        let socket = try StreamSocket.connect(to: Endpoint(.v4(0x7F00_0001), port), timeoutMilliseconds: 2000)
        defer { socket.close() }
        try socket.send(Array("GET \(target) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8))
        var response: [UInt8] = []
        while try socket.waitReadable(milliseconds: 5000) {
            let chunk = try socket.receive()
            if chunk.isEmpty { break }
            response += chunk
        }
        let text = String(decoding: response, as: UTF8.self)
        return text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
    }

    /// The value of an instant query's one series, by job.
    func query(port: UInt16, _ expression: String) throws -> [String: Double] {
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
        let body = try get(port: port, "/api/v1/query?query=\(encoded)")
        guard let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]]
        else { return [:] }
        var values: [String: Double] = [:]
        for series in result {
            guard let metric = series["metric"] as? [String: String], let value = series["value"] as? [Any], value.count == 2,
                let text = value[1] as? String, let number = Double(text)
            else { continue }
            values[metric["job"] ?? "", default: 0] += number
        }
        return values
    }

    func start(_ arguments: [String], log: URL) throws -> Process {
        try TestProgram.check(arguments[0])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    @Test func prometheusShowsTheLeaksBornAndTheCollisionThroughBothPaths() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-prom-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("textfile"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("watchprom"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        let ports = try freePorts(3)
        let (watchPort, exporterPort, prometheusPort) = (ports[0], ports[1], ports[2])
        let watch = try WatchRun(namespace: lab.lab.name, duration: "90s", extra: [
            "--listen", "127.0.0.1:\(watchPort)", "--textfile", directory.appendingPathComponent("textfile/ctdoctor-watch.prom").path,
        ])
        let exporter = try start([
            "prometheus-node-exporter", "--web.listen-address=127.0.0.1:\(exporterPort)", "--collector.disable-defaults",
            "--collector.textfile", "--collector.textfile.directory=\(directory.appendingPathComponent("textfile").path)",
        ], log: directory.appendingPathComponent("node-exporter.log"))
        defer { kill(exporter.processIdentifier, SIGKILL); exporter.waitUntilExit() }
        let config = """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: ctdoctor-watch
                static_configs: [{targets: ["127.0.0.1:\(watchPort)"]}]
              - job_name: node
                static_configs: [{targets: ["127.0.0.1:\(exporterPort)"]}]
            """
        try config.write(to: directory.appendingPathComponent("prometheus.yml"), atomically: true, encoding: .utf8)
        let prometheus = try start([
            "prometheus", "--config.file=\(directory.appendingPathComponent("prometheus.yml").path)",
            "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)", "--web.listen-address=127.0.0.1:\(prometheusPort)",
        ], log: directory.appendingPathComponent("prometheus.log"))
        defer { kill(prometheus.processIdentifier, SIGKILL); prometheus.waitUntilExit() }

        // A leak, then a connect from its port onto it. With the app's RST dropped (a
        // kernel without the fix) the leaked socket stays, so a busy machine cannot make
        // the watch look it up too late.
        let attempt = try lab.collide(emulateOldKernel: true, timeoutSeconds: 3) { throw CancellationError() }
        let collision = try watch.await(seconds: 10) { $0["event"] as? String == "collision" }
        let events = try watch.events()
        #expect(collision != nil, "watch saw no collision: \(events)")

        func scraped() throws -> (born: [String: Double], collisions: [String: Double]) {
            // Prometheus may still be starting on a busy machine: not answering yet is no answer.
            do {
                return (try query(port: prometheusPort, "ctdoctor_watch_leaks_born_total"),
                        try query(port: prometheusPort, #"ctdoctor_watch_collisions_total{outcome="seen"}"#))
            } catch where prometheus.isRunning {
                return ([:], [:])
            }
        }
        var answer = try scraped()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, (answer.born["ctdoctor-watch"] ?? 0) < 1 || (answer.born["node"] ?? 0) < 1
            || (answer.collisions["ctdoctor-watch"] ?? 0) < 1 || (answer.collisions["node"] ?? 0) < 1 {
            usleep(500_000)
            answer = try scraped()
        }
        let logs = (try? String(contentsOf: directory.appendingPathComponent("prometheus.log"), encoding: .utf8).suffix(1500)) ?? ""
        #expect(prometheus.isRunning, "Prometheus exited: \(logs)")
        #expect((answer.born["ctdoctor-watch"] ?? 0) >= 1, "Prometheus scraping /metrics: \(answer), log: \(logs)")
        #expect((answer.born["node"] ?? 0) >= 1, "Prometheus scraping node_exporter's textfile: \(answer)")
        #expect((answer.collisions["ctdoctor-watch"] ?? 0) >= 1 && (answer.collisions["node"] ?? 0) >= 1, "\(answer), port \(attempt.port)")
        // Both scrape targets healthy, as Prometheus judged them.
        #expect(try query(port: prometheusPort, "up") == ["ctdoctor-watch": 1, "node": 1])
        #expect(watch.stop())
    }
}

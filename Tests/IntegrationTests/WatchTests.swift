import Foundation
import Lab
import TestSupport
import Testing

/// A `ctdoctor watch --format ndjson` process on a namespace, its journal in a temporary
/// file (a pipe could fill and stall it), read back as the events so far.
final class WatchRun {
    let process = Process()
    let journal = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-watch-\(UUID().uuidString).ndjson")

    init(namespace: String, duration: String, extra: [String] = []) throws {
        _ = FileManager.default.createFile(atPath: journal.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Binary.ctdoctor)
        process.arguments = ["watch", "--netns", namespace, "--format", "ndjson", "--duration", duration] + extra
        process.standardOutput = try FileHandle(forWritingTo: journal)
        try process.run()
        // Subscribed (and the first full read done) before the caller makes its leaks.
        usleep(1_500_000)
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
        for _ in 0..<50 where try born() == nil { usleep(100_000) }
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
        for _ in 0..<50 where try ended() == nil { usleep(100_000) }
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
        for _ in 0..<50 where try event("collision-recovered") == nil && attempt.connected { usleep(100_000) }
        let seen = try events()
        let born = try #require(try event("leak-born"), "\(seen)")
        let collision = try #require(try event("collision"), "no collision seen for port \(attempt.port): \(seen)")
        #expect(collision["cookie"] as? Int == born["cookie"] as? Int && (collision["time"] as? Double ?? 0) >= (born["time"] as? Double ?? 0))
        if attempt.connected {
            let recovered = try #require(try event("collision-recovered"), "\(seen)")
            #expect((recovered["after_seconds"] as? Double ?? -1) >= 0 && (recovered["after_seconds"] as? Double ?? 99) < Double(attempt.seconds) + 1)
        }
        #expect(watch.stop())
    }
}

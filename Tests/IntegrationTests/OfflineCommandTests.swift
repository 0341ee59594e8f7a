import Foundation
import Lab
import TestSupport
import Testing

/// Offline analysis as a support engineer does it: a snapshot taken where ctdoctor runs,
/// or tables pasted from where it cannot, diagnosed elsewhere.
@Suite("snapshots and copied tables of the lab", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class OfflineLabTests {
    let lab: HalfCloseLab
    let directory: URL

    init() throws {
        lab = try HalfCloseLab(name: TestNamespace.uniqueName("offline"), closeWaitSeconds: 2, say: { _ in })
        try lab.build()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-offline-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        lab.tearDown()
        try? FileManager.default.removeItem(at: directory)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// What must agree between a live diagnosis and an offline one.
    func summary(_ json: String) throws -> [String] {
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let leaks = (document["leaks"] as? [[String: Any]] ?? []).map { leak in
            "\(leak["class"] ?? "") \(((leak["socket"] as? [String: Any])?["peer"] as? [String: Any])?["port"] ?? "")"
        }
        let findings = (document["findings"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        return leaks.sorted() + findings.sorted()
    }

    @Test func aSnapshotDiagnosesLikeTheLiveNamespace() throws {
        for file in ["pod.snapshot.json", "pod.snapshot.json.gz"] {
            let taken = try Shell.run([Binary.ctdoctor, "snapshot", "--netns", lab.lab.name, "--output", path(file)])
            #expect(taken.status == 0, "\(taken.standardError)")
            let live = try Shell.run([Binary.ctdoctor, "diagnose", "--netns", lab.lab.name, "--format", "json", "--fail-on", "never"])
            let offline = try Shell.run([Binary.ctdoctor, "diagnose", "--from", path(file), "--format", "json", "--fail-on", "never"])
            #expect(offline.status == 0, "\(offline.standardError)")
            #expect(try summary(offline.standardOutput) == summary(live.standardOutput))
            #expect(try summary(offline.standardOutput).contains { $0.hasPrefix("leaked ") })
        }
        let header = try Data(contentsOf: URL(fileURLWithPath: path("pod.snapshot.json.gz"))).prefix(2)
        #expect(Array(header) == [0x1F, 0x8B], "an output ending in .gz is gzip")
        let exported = try Shell.run([Binary.ctdoctor, "export", "--from", path("pod.snapshot.json")])
        let parsed = try ParsedExposition(Array(exported.standardOutput.utf8))
        #expect(parsed.value("ctdoctor_half_closed_sockets", ["netns": path("pod.snapshot.json"), "class": "leaked"]) == 1)
    }

    @Test(arguments: [["ss", "-tanpoei"], ["ss", "-tanpo"], ["cat", "/proc/net/tcp"]])
    func copiedTablesFindTheSameLeaks(socketCommand: [String]) throws {
        let conntrack = try Shell.check(["ip", "netns", "exec", lab.lab.name, "conntrack", "-L", "-o", "xml"])
        let sockets = try Shell.check(["ip", "netns", "exec", lab.lab.name] + socketCommand)
        try Data(conntrack.utf8).write(to: URL(fileURLWithPath: path("ct.xml")))
        try Data(sockets.utf8).write(to: URL(fileURLWithPath: path("sockets.txt")))
        let live = try Shell.run([Binary.ctdoctor, "leaks", "--netns", lab.lab.name, "--format", "json", "--fail-on", "never"])
        let copied = try Shell.run([
            Binary.ctdoctor, "leaks", "--conntrack-file", path("ct.xml"), "--sockets-file", path("sockets.txt"), "--format", "json",
            "--fail-on", "never",
        ])
        #expect(copied.status == 0, "\(copied.standardError)")
        let leakLines = { (json: String) in try self.summary(json).filter { $0.hasPrefix("leaked ") || $0.hasPrefix("at-risk ") || $0.hasPrefix("healthy ") } }
        #expect(try leakLines(copied.standardOutput) == leakLines(live.standardOutput), "\(socketCommand)")
    }
}

@Suite("offline input errors")
struct OfflineErrorTests {
    @Test func aDamagedSnapshotIsOneLineAndExitTwo() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-damaged-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(#"{"schema": "ctdoctor.snapshot.v1", "ctdoctor_version": "0.1.0", "captured_at": 1, "namespace": "x", "ker"#.utf8).write(to: file)
        let result = try Shell.run([Binary.ctdoctor, "diagnose", "--from", file.path])
        #expect(result.status == 2)
        #expect(result.standardError == "ctdoctor: error: \(file.path): not valid JSON: it ends too early (truncated?)\n")
    }

    @Test(arguments: [
        (["diagnose", "--sockets-file", "/dev/null"], "--sockets-file needs --conntrack-file"),
        (["diagnose", "--from", "a", "--conntrack-file", "b", "--sockets-file", "c"], "give one or the other"),
        (["leaks", "--from", "a", "--netns", "b"], "--netns reads a live namespace"),
        (["diagnose", "--from", "/nonexistent/snapshot.json"], "/nonexistent/snapshot.json"),
    ])
    func misusedInputOptionsAreRefused(arguments: [String], message: String) throws {
        let result = try Shell.run([Binary.ctdoctor] + arguments)
        #expect(result.status == 2)
        #expect(result.standardError.contains(message), "\(result.standardError)")
    }
}

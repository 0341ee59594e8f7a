import Foundation
import Lab
import TestSupport
import Testing

/// `ctdoctor export` as a cron job runs it: the file a textfile collector reads.
@Suite("export command")
struct ExportCommandTests {
    func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func aFailedRunStillWritesTheFileSayingSoAndExitsTwo() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("ctdoctor.prom").path
        let result = try Shell.run([Binary.ctdoctor, "export", "--netns", "ctd-no-such-namespace", "--output", target])
        #expect(result.status == 2)
        #expect(result.standardError.contains("ctd-no-such-namespace"))
        let parsed = try ParsedExposition(file: target)
        #expect(parsed.value("ctdoctor_run_success") == 0)
        #expect(parsed.value("ctdoctor_namespace_diagnosed", ["netns": "ctd-no-such-namespace"]) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["ctdoctor.prom"], "no temporary file left")
    }

    /// A run killed mid-write (SIGKILL, an OOM kill) leaves its temporary file; the next
    /// run removes those old enough to be certainly orphaned, and no other file.
    @Test func theNextRunRemovesTemporaryFilesThatKilledRunsLeft() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("ctdoctor.prom").path
        let orphan = directory.appendingPathComponent(".ctdoctor.prom.1.k3x9.tmp").path
        let writing = directory.appendingPathComponent(".ctdoctor.prom.7.q2w4.tmp").path
        let unrelated = directory.appendingPathComponent(".other.prom.1.k3x9.tmp").path
        for file in [orphan, writing, unrelated] { try Data("half".utf8).write(to: URL(fileURLWithPath: file)) }
        try Shell.check(["touch", "-d", "2 hours ago", orphan, unrelated])
        let result = try Shell.run([Binary.ctdoctor, "export", "--netns", "ctd-no-such-namespace", "--output", target])
        #expect(result.status == 2)
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
        #expect(left == ["ctdoctor.prom", ".ctdoctor.prom.7.q2w4.tmp", ".other.prom.1.k3x9.tmp"], "\(left)")
    }

    @Test func refusesToWriteThroughASymbolicLinkOrOverADirectory() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let victim = directory.appendingPathComponent("victim")
        try Data("precious\n".utf8).write(to: victim)
        let link = directory.appendingPathComponent("ctdoctor.prom")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: victim)
        let result = try Shell.run([Binary.ctdoctor, "export", "--output", link.path])
        #expect(result.status == 2)
        #expect(result.standardError.contains("symbolic link") && result.standardError.split(separator: "\n").count == 1)
        #expect(try String(contentsOf: victim, encoding: .utf8) == "precious\n")
        let onDirectory = try Shell.run([Binary.ctdoctor, "export", "--output", directory.path])
        #expect(onDirectory.status == 2 && onDirectory.standardError.contains("directory"))
    }

    @Test func jsonCarriesTheDiagnosisDocument() throws {
        let result = try Shell.run([Binary.ctdoctor, "export", "--format", "json"])
        #expect(result.status == 0, "\(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(document["schema"] as? String == "ctdoctor.export.v1" && document["success"] as? Bool == true)
        let namespace = try #require((document["namespaces"] as? [[String: Any]])?.first)
        #expect(namespace["netns"] as? String == "current")
        #expect((namespace["diagnosis"] as? [String: Any])?["schema"] as? String == "ctdoctor.diagnosis.v1")
    }
}

@Suite("export of the half-close lab", .enabled(if: Privileges.shouldRunPrivilegedTests))
struct ExportLabTests {
    @Test func theTextfileShowsTheLeakAndFindingsDoNotFailTheRun() throws {
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("export"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        try lab.build()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("ctdoctor.prom").path
        // Twice: the second run replaces the first file.
        for _ in 0..<2 {
            let result = try Shell.run([Binary.ctdoctor, "export", "--netns", lab.lab.name, "--output", target])
            #expect(result.status == 0, "\(result.standardError)")
        }
        let parsed = try ParsedExposition(file: target)
        let namespace = ["netns": lab.lab.name]
        #expect(parsed.value("ctdoctor_run_success") == 1)
        #expect(parsed.value("ctdoctor_half_closed_sockets", namespace.merging(["class": "leaked"]) { $1 }) == 1)
        #expect(parsed.value("ctdoctor_half_closed_sockets", namespace.merging(["class": "at_risk"]) { $1 }) == 1)
        #expect(parsed.value("ctdoctor_half_closed_sockets", namespace.merging(["class": "healthy"]) { $1 }) == 1)
        #expect(parsed.value("ctdoctor_sidecar_info", namespace.merging(["mesh": "istio"]) { $1 }) == 1)
        #expect(parsed.value("ctdoctor_close_wait_timeout_seconds", namespace) == 2)
        #expect((parsed.value("ctdoctor_findings", namespace.merging(["severity": "error"]) { $1 }) ?? 0) >= 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["ctdoctor.prom"])
    }
}

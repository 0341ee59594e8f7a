import Foundation
import TestSupport
import Testing

/// `ctdoctor lint` as CI jobs and pre-commit hooks run it. Needs no privilege.
@Suite("lint command")
struct LintCommandTests {
    static let manifests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("CTDoctorTests/Fixtures/manifests").path

    func path(_ name: String) -> String { "\(Self.manifests)/\(name)" }

    @Test func aDeadlockedPortFailsWithCompilerStyleLines() throws {
        let result = try Shell.run([Binary.ctdoctor, "lint", path("istio-mysql.yaml")])
        #expect(result.status == 1, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n").filter { $0.contains(": error CTD101") }
        #expect(!lines.isEmpty, "\(result.standardOutput)")
        #expect(lines.allSatisfy { $0.hasPrefix(self.path("istio-mysql.yaml") + ":") })
    }

    @Test func clientFirstProtocolsPassAndInformationDoesNotFail() throws {
        let clean = try Shell.run([Binary.ctdoctor, "lint", path("client-first.yaml")])
        #expect(clean.status == 0, "\(clean.standardOutput)")
        let informational = try Shell.run([Binary.ctdoctor, "lint", path("peerauthentication.yaml")])
        #expect(informational.status == 0, "only info findings: \(informational.standardOutput)")
        #expect(informational.standardOutput.contains(": info CTD104"))
        let strict = try Shell.run([Binary.ctdoctor, "lint", "--fail-on", "info", path("peerauthentication.yaml")])
        #expect(strict.status == 1)
    }

    @Test func readsStandardInputAndDirectories() throws {
        let piped = try Shell.run(["sh", "-c", "cat \"$1\" | \"$2\" lint --format json -", "sh", path("istio-smtp.yaml"), Binary.ctdoctor])
        #expect(piped.status == 1)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(piped.standardOutput.utf8)) as? [String: Any])
        #expect(document["schema"] as? String == "ctdoctor.lint.v1")
        let whole = try Shell.run([Binary.ctdoctor, "lint", "--format", "sarif", "--fail-on", "never", Self.manifests])
        // The corpus holds broken files on purpose: they are reported, one line each.
        #expect(whole.status == 2, "\(whole.standardError)")
        #expect(whole.standardError.contains("bad-indentation.yaml:"))
    }

    @Test func badYAMLIsOneLineNamingTheFileAndLine() throws {
        let result = try Shell.run([Binary.ctdoctor, "lint", path("bad-indentation.yaml")])
        #expect(result.status == 2)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1, "\(result.standardError)")
        #expect(lines.first?.contains("bad-indentation.yaml:") == true)
        let missing = try Shell.run([Binary.ctdoctor, "lint", "/nonexistent/manifests.yaml"])
        #expect(missing.status == 2 && missing.standardError.contains("/nonexistent/manifests.yaml"))
    }
}

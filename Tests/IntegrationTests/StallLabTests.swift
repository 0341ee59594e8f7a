import Diagnosis
import Foundation
import Lab
import Live
import NetCore
import TestSupport
import Testing

/// Stall detection against the server-first lab: a real proxy holding a real accepted
/// connection while an SMTP-like server waits to greet.
@Suite("server-first stalls in the lab", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class StallLabTests {
    let lab: ServerFirstLab

    init() throws {
        lab = try ServerFirstLab(name: TestNamespace.uniqueName("stall"), mesh: .istio, say: { _ in })
        try lab.build(stallAfterSeconds: 1)
    }

    deinit { lab.tearDown() }

    var stalledAppPort: UInt16 { lab.flows.first(where: \.expectStalled)!.appPort }

    @Test func findsTheStalledSMTPConnectionAndNothingElse() throws {
        var options = DiagnosisOptions()
        options.stallAfterSeconds = 1
        let input = try LiveCollector(namespace: lab.lab.namespace).collect(profile: nil, stallAfterSeconds: 1)
        let report = Diagnosis.diagnose(input, options: options)
        #expect(lab.check(report).isEmpty, "\(lab.check(report))")
        #expect(report.sidecar?.profile == .istio)
        let connection = try #require(report.stalls.first?.connections.first)
        #expect(connection.socket.remote.port == stalledAppPort)
        #expect(connection.originalDestination == Endpoint(ServerFirstLab.smtpServer, ServerFirstLab.stalledPort))
        #expect(connection.silentMilliseconds >= 1000)
        #expect(report.findings.first?.id == "stalled-server-first" && report.findings.first?.severity == .error)
    }

    @Test func diagnoseReportsTheStallInJSONAndHonoursTheThreshold() throws {
        let result = try Shell.run([Binary.ctdoctor, "diagnose", "--netns", lab.lab.name, "--stall-after", "1s", "--format", "json"])
        #expect(result.status == 1, "\(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let stalls = try #require(document["stalls"] as? [[String: Any]])
        #expect(stalls.count == 1)
        #expect(stalls.first?["port"] as? Int == 25 && stalls.first?["protocol"] as? String == "SMTP")
        #expect(stalls.first?["server_first"] as? Bool == true)
        let peer = ((stalls.first?["connections"] as? [[String: Any]])?.first?["peer"] as? [String: Any])?["port"] as? Int
        #expect(peer == Int(stalledAppPort))

        let patient = try Shell.run([Binary.ctdoctor, "diagnose", "--netns", lab.lab.name, "--stall-after", "10m", "--format", "ndjson"])
        #expect(patient.status == 0, "nothing has been silent for 10 minutes: \(patient.standardOutput)")
        #expect(!patient.standardOutput.contains("\"kind\":\"stall\""))
    }
}

@Suite("lab server-first command", .enabled(if: Privileges.shouldRunPrivilegedTests))
struct ServerFirstLabCommandTests {
    @Test func linkerdStyleDetectionDelaysTheGreetingByTenSeconds() throws {
        let result = try Shell.run([Binary.ctdoctor, "lab", "server-first", "--mesh", "linkerd", "--format", "json"])
        #expect(result.status == 0, "\(result.standardError)\(result.standardOutput)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(document["matches"] as? Bool == true, "\(document["problems"] ?? "")")
        let flows = try #require(document["flows"] as? [[String: Any]])
        let greeting = { (port: Int) in flows.first { $0["service_port"] as? Int == port }?["first_bytes_after_seconds"] as? Double }
        #expect(greeting(25).map { $0 >= 9.5 && $0 < 13 } == true, "Linkerd's 10 s detection timeout")
        #expect(greeting(2525).map { $0 < 3 } == true, "a port declared opaque is not sniffed")
        let finding = ((document["diagnosis"] as? [String: Any])?["findings"] as? [[String: Any]])?.first
        #expect(finding?["id"] as? String == "stalled-server-first" && finding?["severity"] as? String == "warning")
        let name = try #require(document["namespace"] as? String)
        #expect(!(try Shell.check(["ip", "netns", "list"])).contains(name), "the lab removed its namespace")
    }
}

import Foundation
import TestSupport
import Testing

/// The examples run against a real namespace, so they cannot drift from the CLI.
@Suite("Examples", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class ExampleTests {
    let scenario: RedirectScenario
    init() throws { scenario = try RedirectScenario(tag: "example") }
    deinit { scenario.tearDown() }

    /// The repository root, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func halfClosedFlowsShowsTheFlowAndTheProxySocket() throws {
        let script = Self.root.appendingPathComponent("examples/half-closed-flows.sh").path
        let binaryDirectory = URL(fileURLWithPath: Binary.ctdoctor).deletingLastPathComponent().path
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = binaryDirectory + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        let result = try Shell.run([script, scenario.lab.name], environment: environment)
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("tcp") && $0.contains("CLOSE_WAIT") && $0.contains(":\(scenario.halfClosedPort)") })
        #expect(lines.contains { $0.hasPrefix("FIN_WAIT2") && $0.contains("127.0.0.1:15001") && $0.contains(":\(scenario.halfClosedPort)") })
    }
}

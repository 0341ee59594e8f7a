import Foundation
import Lab
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

/// examples/library, a program on CTDoctorKit by path, built against the library as it
/// stands and run on the half-close lab: the library's entry point cannot drift from what
/// its article and example show.
@Suite("Library example", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
struct LibraryExampleTests {
    /// The Swift toolchain running these tests, from PATH.
    static func swift() throws -> String {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") + ["/opt/swift/usr/bin"]
        let found = directories.map { "\($0)/swift" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        return try #require(found, "no swift on PATH")
    }

    @Test func theExampleBuildsAgainstTheLibraryAndFindsTheLabsLeak() throws {
        let package = ExampleTests.root.appendingPathComponent("examples/library").path
        // One retry, from a clean build directory: once in many runs a first build beside
        // the suite's other work failed without a compiler error, and a build directory
        // made before a source file of the library moved fails on the file it remembers
        // ("missing inputs"). Both outputs are kept if it fails twice.
        var build = try Shell.run([try Self.swift(), "build", "--package-path", package])
        var failures = ""
        if build.status != 0 {
            failures = "first attempt: \(build.standardOutput.suffix(2000))\(build.standardError.suffix(2000))\n"
            try? FileManager.default.removeItem(atPath: "\(package)/.build")
            build = try Shell.run([try Self.swift(), "build", "--package-path", package])
        }
        try #require(build.status == 0, "\(failures)\(build.standardOutput.suffix(2000))\(build.standardError.suffix(2000))")
        // 5 s of close_wait: the lab's fresh half-close must still be at risk, not leaked,
        // when the example reads the table, however busy the machine is.
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("library"), closeWaitSeconds: 5, say: { _ in })
        defer { lab.tearDown() }
        try lab.build()
        let result = try Shell.run(["\(package)/.build/debug/leak-report", lab.lab.name])
        #expect(result.status == 0, "\(result.standardError)")
        let leaked = lab.flows.first { $0.expected == .leaked }!.appPort
        #expect(result.standardOutput.hasPrefix("\(lab.lab.name): 1 leaked sidecar sockets"), "\(result.standardOutput.prefix(300))")
        #expect(result.standardOutput.contains(":\(leaked)") && result.standardOutput.contains("\"schema\":\"ctdoctor.diagnosis.v1\""))
    }
}

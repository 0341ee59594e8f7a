import Foundation
import Lab
import TestSupport
import Testing
import Yams

/// The deployment examples — DaemonSet, CronJob, cron entry, the image recipe, the node
/// debugging script — run as written, with only the host paths moved into a temporary
/// directory, so they cannot drift from the CLI.
@Suite("deployment examples", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class DeploymentExampleTests {
    static let examples = ExampleTests.root.appendingPathComponent("examples")
    let textfile: URL

    init() throws {
        textfile = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-textfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: textfile, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: textfile) }

    var version: String {
        get throws { try Shell.check([Binary.ctdoctor, "--version"]).trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    /// The ctdoctor container of a pod template, wherever the kind nests it.
    func container(in file: String, podSpecPath: [String], named name: String = "ctdoctor") throws -> (pod: [String: Any], container: [String: Any]) {
        let text = try String(contentsOf: Self.examples.appendingPathComponent(file), encoding: .utf8)
        var node: Any? = try Yams.load(yaml: text)
        for key in podSpecPath { node = (node as? [String: Any])?[key] }
        let pod = try #require(node as? [String: Any], "\(file): no pod spec at \(podSpecPath)")
        let container = try #require((pod["containers"] as? [[String: Any]])?.first { $0["name"] as? String == name }, "\(file): no container \(name)")
        return (pod, container)
    }

    /// What the examples promise about privileges: host PID and network, root without
    /// DAC overrides, exactly the three capabilities, nothing writable but the textfile
    /// directory, the image of this version.
    func checkPrivileges(_ pod: [String: Any], _ container: [String: Any], file: String) throws {
        #expect(pod["hostPID"] as? Bool == true && pod["hostNetwork"] as? Bool == true, "\(file)")
        let security = try #require(container["securityContext"] as? [String: Any])
        #expect(security["readOnlyRootFilesystem"] as? Bool == true && security["allowPrivilegeEscalation"] as? Bool == false)
        let capabilities = try #require(security["capabilities"] as? [String: Any])
        #expect(capabilities["drop"] as? [String] == ["ALL"])
        #expect(Set(capabilities["add"] as? [String] ?? []) == ["NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE"], "\(file)")
        #expect((container["image"] as? String)?.hasSuffix(":\(try version)") == true, "\(file): the image tag follows the version")
        let mounts = container["volumeMounts"] as? [[String: Any]] ?? []
        #expect(mounts.filter { $0["readOnly"] as? Bool != true }.compactMap { $0["mountPath"] as? String } == ["/textfile"])
    }

    /// The container's arguments with the textfile mount moved here.
    func localArguments(_ container: [String: Any]) throws -> [String] {
        try #require(container["args"] as? [String]).map { $0.replacing("/textfile/", with: textfile.path + "/") }
    }

    /// ctdoctor with a container's arguments, in the background, its output dropped.
    func start(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binary.ctdoctor)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test func theManifestsParseAndPassLint() throws {
        let result = try Shell.run([Binary.ctdoctor, "lint", "--format", "json", Self.examples.appendingPathComponent("kubernetes").path])
        #expect(result.status == 0, "\(result.standardOutput)\(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(document["objects"] as? Int == 2 && (document["findings"] as? [Any])?.isEmpty == true)
    }

    @Test func theDaemonSetExportsEveryIntervalAndStopsOnSIGTERM() throws {
        let (pod, container) = try container(in: "kubernetes/daemonset.yaml", podSpecPath: ["spec", "template", "spec"])
        try checkPrivileges(pod, container, file: "daemonset.yaml")
        let arguments = try localArguments(container)
        #expect(arguments.contains("--every"))
        let process = try start(arguments)
        let written = textfile.appendingPathComponent("ctdoctor.prom").path
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: written) { usleep(100_000) }
        let stopAsked = Date()
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "SIGTERM ends the loop cleanly")
        #expect(Date().timeIntervalSince(stopAsked) < 10, "it stops after the run in progress, not after the interval")
        let parsed = try ParsedExposition(file: written)
        #expect(parsed.value("ctdoctor_run_success") == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: textfile.path) == ["ctdoctor.prom"], "no temporary file left")
    }

    @Test func theDaemonSetWatchesEveryNamespaceIntoTheTextfileAndStopsOnSIGTERM() throws {
        let (pod, container) = try container(in: "kubernetes/daemonset.yaml", podSpecPath: ["spec", "template", "spec"], named: "ctdoctor-watch")
        try checkPrivileges(pod, container, file: "daemonset.yaml (watch)")
        let arguments = try localArguments(container)
        #expect(arguments.starts(with: ["watch", "--all-netns"]))
        let process = try start(arguments)
        let written = textfile.appendingPathComponent("ctdoctor-watch.prom").path
        for _ in 0..<300 where !FileManager.default.fileExists(atPath: written) { usleep(100_000) }
        // Its first full read of every namespace done, the gauge says how many it watches.
        var watched = 0.0
        for _ in 0..<100 {
            watched = (try? ParsedExposition(file: written).value("ctdoctor_watch_namespaces")) ?? 0
            if watched >= 1 { break }
            usleep(100_000)
        }
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "SIGTERM ends the watch cleanly")
        #expect(watched >= 1, "the node's own namespace at least is watched")
        #expect(try FileManager.default.contentsOfDirectory(atPath: textfile.path).filter { $0.hasPrefix("ctdoctor-watch") } == ["ctdoctor-watch.prom"])
    }

    @Test func theCronJobRunsOnceAndWritesTheFile() throws {
        let (pod, container) = try container(in: "kubernetes/cronjob.yaml", podSpecPath: ["spec", "jobTemplate", "spec", "template", "spec"])
        try checkPrivileges(pod, container, file: "cronjob.yaml")
        let result = try Shell.run([Binary.ctdoctor] + (try localArguments(container)))
        #expect(result.status == 0, "\(result.standardError)")
        #expect(try ParsedExposition(file: textfile.appendingPathComponent("ctdoctor.prom").path).value("ctdoctor_run_success") == 1)
    }

    @Test func theCronEntryIsWellFormedAndItsCommandWorks() throws {
        let text = try String(contentsOf: Self.examples.appendingPathComponent("ctdoctor.cron"), encoding: .utf8)
        let entries = text.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.allSatisfy(\.isWhitespace) }
        #expect(entries.count == 1)
        let fields = try #require(entries.first).split(separator: " ", maxSplits: 6).map(String.init)
        #expect(fields.count == 7 && fields[5] == "root", "five time fields, the user, the command (/etc/cron.d format)")
        #expect(fields[0] == "*/5" && fields[1...4].allSatisfy { $0 == "*" })
        let command = fields[6]
            .replacing("/usr/local/bin/ctdoctor", with: Binary.ctdoctor)
            .replacing("/var/lib/node_exporter/textfile/", with: textfile.path + "/")
            .replacing("| logger -t ctdoctor", with: "")
        #expect(command.hasPrefix(Binary.ctdoctor + " export "), "it runs the binary scripts/install puts in /usr/local/bin")
        let result = try Shell.run(["sh", "-c", command])
        #expect(result.status == 0, "\(result.standardOutput)")
        #expect(try ParsedExposition(file: textfile.appendingPathComponent("ctdoctor.prom").path).value("ctdoctor_run_success") == 1)
    }

    @Test func theContainerfileAddsTheTarballThatScriptsReleaseNames() throws {
        let recipe = try String(contentsOf: Self.examples.appendingPathComponent("Containerfile"), encoding: .utf8)
        #expect(recipe.contains("ARG VERSION=\(try version)\n"))
        #expect(recipe.contains("ADD ctdoctor-${VERSION}-linux-x86_64.tar.gz /opt/"))
        let release = try String(contentsOf: ExampleTests.root.appendingPathComponent("scripts/release"), encoding: .utf8)
        #expect(release.contains("name=\"ctdoctor-$version-linux-$arch\""))
        #expect(recipe.contains("FROM gcr.io/distroless/base-debian12"), "glibc 2.36, what the tarball needs")
    }

    @Test func theNodeScriptListsTheLabsLeakAndItsFixAndExitsOne() throws {
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("nodescript"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        try lab.build()
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = URL(fileURLWithPath: Binary.ctdoctor).deletingLastPathComponent().path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        let result = try Shell.run([Self.examples.appendingPathComponent("leaking-pods.sh").path], environment: environment)
        #expect(result.status == 1, "\(result.standardError)")
        let leakedPort = try #require(lab.flows.first { $0.expected == .leaked }).appPort
        let rows = result.standardOutput.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
        #expect(rows.first == ["pod", "proxy socket", "app port (poisoned)", "idle s", "reaped in s"])
        #expect(rows.contains { $0.count == 5 && $0[0] == lab.lab.name && $0[1] == "127.0.0.1:15001" && $0[2] == "10.66.0.5:\(leakedPort)" })
        #expect(result.standardOutput.contains("fix for \(lab.lab.name): ") && result.standardOutput.contains("nf_conntrack_tcp_timeout_close_wait"))
    }

    @Test func theNodeScriptSaysWhenCtdoctorCannotRun() throws {
        let bin = textfile.appendingPathComponent("bin")
        try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
        // A ctdoctor that fails as a missing privilege would: exit 2, one line.
        let stub = bin.appendingPathComponent("ctdoctor")
        try Data("#!/bin/sh\necho 'ctdoctor: error: no CAP_SYS_ADMIN' >&2\nexit 2\n".utf8).write(to: stub)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: stub.path)
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = bin.path + ":/usr/bin:/bin"
        let result = try Shell.run([Self.examples.appendingPathComponent("leaking-pods.sh").path], environment: environment)
        #expect(result.status == 2 && result.standardOutput.isEmpty)
        #expect(result.standardError.contains("ctdoctor diagnose failed with exit status 2"))
    }
}

import Foundation
import TestSupport
import Testing

/// A hostile pod on the node, beside healthy ones: its proxy-like process listens on the
/// capture ports with an absurd ISTIO_META_IDLE_TIMEOUT, has escape sequences and a
/// newline in its name, lives in a root whose /etc/hostname is a symlink to a root-only
/// node file, and holds a socket of its own bound to a capture port in FIN_WAIT2. None
/// of it may change anything but its own row.
@Suite("hostile pod", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class HostilePodTests {
    let hostile: TestNamespace
    let healthy: TestNamespace
    let healthyHolder: Process
    let tenant: Process
    let directory: URL
    let secret = "node-secret-\(UUID().uuidString.prefix(8))"
    static let comm = "\u{1b}]0;x\u{07}\u{1b}[2J\nFAKE"

    /// The tenant: listeners on 15001/15006, a client bound to 127.0.0.2:15001 left in
    /// FIN_WAIT2 (it shut down its side; its server never closes), then chroot.
    static let tenantScript = """
        import os, socket, sys, time
        with open('/proc/self/comm', 'w') as f: f.write(sys.argv[2])
        listeners = []
        for port in (15001, 15006):
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(('127.0.0.1', port)); s.listen(16); listeners.append(s)
        server = socket.socket(); server.bind(('127.0.0.1', 7000)); server.listen(1)
        client = socket.socket(); client.bind(('127.0.0.2', 15001)); client.connect(('127.0.0.1', 7000))
        accepted, _ = server.accept()
        client.shutdown(socket.SHUT_WR)
        time.sleep(0.2)
        os.chroot(sys.argv[1]); os.chdir('/')
        print('ready', flush=True)
        time.sleep(600)
        """

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-hostilepod-\(UUID().uuidString)")
        let root = directory.appendingPathComponent("root")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("etc"), withIntermediateDirectories: true)
        let secretFile = directory.appendingPathComponent("node-only").path
        try Data("\(secret) more\n".utf8).write(to: URL(fileURLWithPath: secretFile))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: secretFile)
        try FileManager.default.createSymbolicLink(atPath: root.appendingPathComponent("etc/hostname").path, withDestinationPath: secretFile)
        let script = directory.appendingPathComponent("tenant.py")
        try Data(Self.tenantScript.utf8).write(to: script)

        hostile = try TestNamespace(tag: "hostile")
        healthy = try TestNamespace(tag: "hostile-ok")
        tenant = Process()
        tenant.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        tenant.arguments = [
            "netns", "exec", hostile.name, "env", "-i", "ISTIO_META_IDLE_TIMEOUT=99999999999999999h", "/usr/bin/python3", script.path,
            root.path, Self.comm,
        ]
        let output = Pipe()
        tenant.standardOutput = output
        try tenant.run()
        let ready = output.fileHandleForReading.availableData
        healthyHolder = Process()
        healthyHolder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        healthyHolder.arguments = ["ip", "netns", "exec", healthy.name, "env", "HOSTNAME=healthy-\(getpid())", "sleep", "300"]
        try healthyHolder.run()
        usleep(300_000)
        guard String(decoding: ready, as: UTF8.self).hasPrefix("ready") else { throw TenantDidNotStart() }
    }

    deinit {
        // SIGKILL: the test runner's threads block SIGTERM, and children inherit the mask.
        for process in [tenant, healthyHolder] where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        hostile.destroy()
        healthy.destroy()
        try? FileManager.default.removeItem(at: directory)
    }

    struct TenantDidNotStart: Error {}

    func rows(_ document: [String: Any]) -> [[String: Any]] { document["namespaces"] as? [[String: Any]] ?? [] }

    func row(named name: String, in document: [String: Any]) throws -> [String: Any] {
        try #require(rows(document).first { $0["netns_name"] as? String == name }, "\(rows(document).map { $0["netns_name"] ?? "-" })")
    }

    @Test func theSweepCompletesAndTheHostilePodIsOnlyItsOwnRow() throws {
        let result = try Shell.run([Binary.ctdoctor, "diagnose", "--all-netns", "--format", "json", "--fail-on", "never"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(!result.standardOutput.contains(secret) && !result.standardError.contains(secret), "a node file leaked through the pod's /etc/hostname")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let hostileRow = try row(named: hostile.name, in: document)
        #expect(hostileRow["pod"] is NSNull, "no name could be read inside the tenant's root: \(hostileRow["pod"] ?? "")")
        let diagnosis = try #require(hostileRow["diagnosis"] as? [String: Any], "the hostile namespace is diagnosed, not failed: \(hostileRow["error"] ?? "")")
        let notices = diagnosis["notices"] as? [String] ?? []
        #expect(notices.contains { $0.contains("is not a duration Istio accepts") }, "\(notices)")
        #expect(notices.contains { $0.contains("not the proxy's") }, "the bound client socket is named, not judged: \(notices)")
        #expect((diagnosis["leaks"] as? [[String: Any]] ?? []).isEmpty, "the tenant's own FIN_WAIT2 socket is no leak")
        let healthyRow = try row(named: healthy.name, in: document)
        #expect(healthyRow["pod"] as? String == "healthy-\(getpid())")
        #expect(healthyRow["diagnosis"] is [String: Any])
    }

    @Test func humanOutputEscapesTheTenantsProcessName() throws {
        let result = try Shell.run([Binary.ctdoctor, "diagnose", "--netns", hostile.name, "--fail-on", "never"])
        #expect(result.status == 0, "\(result.standardError)")
        for text in [result.standardOutput, result.standardError] {
            #expect(!text.contains("\u{1b}") && !text.contains("\u{07}"), "raw control characters reached the terminal")
            #expect(!text.split(separator: "\n").contains { $0.hasPrefix("FAKE") }, "a forged line")
        }
        #expect(result.standardOutput.contains("\\x1b") || result.standardError.contains("\\x1b"), "the name is shown, escaped: \(result.standardOutput)")
    }

    @Test func exportWritesEveryNamespaceAndNothingFromTheNode() throws {
        let file = directory.appendingPathComponent("ctdoctor.prom").path
        let result = try Shell.run([Binary.ctdoctor, "export", "--all-netns", "--output", file])
        #expect(result.status == 0, "\(result.standardError)")
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(!text.contains(secret))
        #expect(text.contains("ctdoctor_run_success 1"), "every namespace diagnosed")
        let exposition = try ParsedExposition(Array(text.utf8))
        #expect(exposition.families["ctdoctor_namespace_diagnosed"]?.samples.allSatisfy { $0.value == 1 } == true)
    }

    @Test func reapLeavesTheTenantsSocketAlone() throws {
        let reap = try Shell.run([Binary.ctdoctor, "leaks", "--netns", hostile.name, "--reap", "--yes", "--min-idle", "0"])
        #expect(reap.status == 0, "nothing to reap: \(reap.standardOutput) \(reap.standardError)")
        let left = try hostile.exec(["ss", "-Htan", "state", "fin-wait-2"])
        #expect(left.contains("127.0.0.2:15001"), "the tenant's socket is still there: \(left)")
    }
}

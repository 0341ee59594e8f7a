import Foundation
import KernelIO
import TestSupport
import Testing

/// Files a tenant or a careless operator hands ctdoctor: a FIFO where a file belongs, a
/// device, a symlink out of a container's root. Each is refused at once with what it is,
/// never read through, never waited on.
@Suite("hostile files")
final class HostileFileTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    func fifo(_ name: String) throws -> String {
        let fifo = path(name)
        try Shell.check(["sh", "-c", "mkfifo \"$0\"", fifo])
        return fifo
    }

    /// Runs ctdoctor under a 20 s timeout: before the fix these hung forever.
    func ctdoctor(_ arguments: [String]) throws -> CommandResult {
        try Shell.run(["timeout", "20", Binary.ctdoctor] + arguments)
    }

    func expectRefusal(_ result: CommandResult, naming what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 2, "exit \(result.status) (124: it hung): \(result.standardError)", sourceLocation: sourceLocation)
        #expect(result.standardError.hasPrefix("ctdoctor: error: "), "\(result.standardError)", sourceLocation: sourceLocation)
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)", sourceLocation: sourceLocation)
        #expect(result.standardError.contains(what), "\(result.standardError)", sourceLocation: sourceLocation)
    }

    @Test func aFIFOGivenAsAnyInputIsRefusedNotWaitedOn() throws {
        let fifo = try fifo("input.fifo")
        expectRefusal(try ctdoctor(["diagnose", "--from", fifo]), naming: "a FIFO, not a regular file")
        expectRefusal(try ctdoctor(["diagnose", "--conntrack-file", fifo, "--sockets-file", fifo]), naming: "a FIFO")
        expectRefusal(try ctdoctor(["lint", fifo]), naming: "a FIFO")
    }

    @Test func aDeviceIsRefusedInsteadOfReadForever() throws {
        expectRefusal(try ctdoctor(["diagnose", "--from", "/dev/zero"]), naming: "a character device")
        expectRefusal(try ctdoctor(["diagnose", "--sockets-file", "/dev/urandom", "--conntrack-file", "/dev/null"]), naming: "a character device")
    }

    @Test(.enabled(if: Privileges.shouldRunPrivilegedTests))
    func aFIFOWhereANamespaceFileBelongsIsNotEntered() throws {
        expectRefusal(try ctdoctor(["diagnose", "--netns", try fifo("netns.fifo")]), naming: "is not a network namespace file")
        // Under /var/run/netns, where the node sweep lists every entry.
        let name = "ctd-hostile-fifo-\(getpid())"
        let planted = "/var/run/netns/\(name)"
        try Shell.check(["sh", "-c", "mkdir -p /var/run/netns && mkfifo \"$0\"", planted])
        defer { unlink(planted) }
        expectRefusal(try ctdoctor(["diagnose", "--netns", name]), naming: "is not a network namespace file")
        let sweep = try ctdoctor(["diagnose", "--all-netns", "--format", "json", "--fail-on", "never"])
        #expect(sweep.status == 0, "the sweep completes around it: \(sweep.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(sweep.standardOutput.utf8)) as? [String: Any])
        let rows = document["namespaces"] as? [[String: Any]] ?? []
        #expect(!rows.isEmpty)
    }

    @Test func aSymlinkLoopAndAFIFOInALintedDirectoryEndTheWalk() throws {
        let tree = path("manifests")
        try FileManager.default.createDirectory(atPath: tree + "/nested", withIntermediateDirectories: true)
        try Data("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{name: http, port: 80}]}\n".utf8)
            .write(to: URL(fileURLWithPath: tree + "/nested/svc.yaml"))
        try FileManager.default.createSymbolicLink(atPath: tree + "/nested/loop", withDestinationPath: tree)
        let looped = try ctdoctor(["lint", tree])
        #expect(looped.status == 0, "\(looped.standardError)")
        #expect(looped.standardError.contains("already walked"), "\(looped.standardError)")
        _ = try fifo("manifests/zz.yaml")
        expectRefusal(try ctdoctor(["lint", tree]), naming: "a FIFO")
    }

    /// A container's /etc/hostname as a symlink to an absolute path: read inside the
    /// container's root, it names the container's file (here: none), never the node's.
    @Test func aTenantSymlinkResolvesInsideItsRoot() throws {
        let proc = path("proc")
        let root = proc + "/4242/root"
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        let hostSecret = path("host-secret")
        try Data("node-secret-token\n".utf8).write(to: URL(fileURLWithPath: hostSecret))
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/hostname", withDestinationPath: hostSecret)
        let procfs = ProcFS(root: proc)
        #expect(throws: KernelIOError.self, "the node's file must not be reached") { try procfs.readInRoot(of: 4242, "etc/hostname", limit: 4096) }
        // The same absolute path inside the root is what the tenant gets.
        try FileManager.default.createDirectory(atPath: root + hostSecret.dropLast("host-secret".count), withIntermediateDirectories: true)
        try Data("tenant-pod\n".utf8).write(to: URL(fileURLWithPath: root + hostSecret))
        #expect(String(decoding: try procfs.readInRoot(of: 4242, "etc/hostname", limit: 4096), as: UTF8.self) == "tenant-pod\n")
        // ".." cannot climb out either.
        try FileManager.default.removeItem(atPath: root + "/etc/hostname")
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/hostname", withDestinationPath: "../../../../../../" + hostSecret)
        #expect(String(decoding: try procfs.readInRoot(of: 4242, "etc/hostname", limit: 4096), as: UTF8.self) == "tenant-pod\n")
        // A FIFO there is refused, not waited on; so is a file past the cap.
        try FileManager.default.removeItem(atPath: root + "/etc/hostname")
        try Shell.check(["sh", "-c", "mkfifo \"$0\"", root + "/etc/hostname"])
        #expect(throws: KernelIOError.self) { try procfs.readInRoot(of: 4242, "etc/hostname", limit: 4096) }
        try FileManager.default.removeItem(atPath: root + "/etc/hostname")
        try Data(repeating: 0x61, count: 200_000).write(to: URL(fileURLWithPath: root + "/etc/hostname"))
        #expect(throws: KernelIOError.self) { try procfs.readInRoot(of: 4242, "etc/hostname", limit: 4096) }
    }
}

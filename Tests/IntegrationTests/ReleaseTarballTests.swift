import Foundation
import Lab
import TestSupport
import Testing

/// The release tarball on a machine that has glibc and nothing else: a chroot holding
/// only glibc's loader, libc and libm, in a mount namespace of its own with /proc
/// mounted, inside the half-close lab's network namespace. `scripts/test` builds the
/// tarball with `scripts/release` and names it in CTDOCTOR_TARBALL; in CI it must be
/// there.
struct TarballMissing: Error, CustomStringConvertible {
    var description: String { "CTDOCTOR_TARBALL is not set: run ./scripts/test, which builds the tarball with scripts/release" }
}

@Suite("release tarball", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class ReleaseTarballTests {
    let tarball: String
    let root: URL
    let installed = "/opt/ctdoctor"

    init() throws {
        guard let path = ProcessInfo.processInfo.environment["CTDOCTOR_TARBALL"], !path.isEmpty else {
            throw TarballMissing()
        }
        tarball = path
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-chroot-\(UUID().uuidString)")
        try makeGlibcOnlyRoot()
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// glibc's files only, found where the loader found them for this process.
    func makeGlibcOnlyRoot() throws {
        let fileManager = FileManager.default
        for directory in ["proc", "dev", "tmp", "etc", "lib64", "lib/x86_64-linux-gnu", "opt/ctdoctor"] {
            try fileManager.createDirectory(at: root.appendingPathComponent(directory), withIntermediateDirectories: true)
        }
        for library in ["/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6"] {
            try Shell.check(["cp", "-L", library, root.path + library])
        }
        try Shell.check(["mknod", "-m", "666", root.appendingPathComponent("dev/null").path, "c", "1", "3"])
        try Shell.check(["tar", "-xzf", tarball, "-C", root.appendingPathComponent("opt/ctdoctor").path, "--strip-components=1"])
    }

    /// Runs ctdoctor in the chroot, in a new mount namespace with its own /proc, in
    /// `netns` when given. Paths and arguments here are the test's own.
    func runInRoot(_ arguments: [String], netns: String? = nil, stdin: String? = nil) throws -> CommandResult {
        let quoted = arguments.map { "'\($0)'" }.joined(separator: " ")
        let input = stdin.map { " < '\(root.path)/\($0)'" } ?? ""
        let script = "mount -t proc proc '\(root.path)/proc' && exec chroot '\(root.path)' \(installed)/bin/ctdoctor \(quoted)\(input)"
        let prefix = netns.map { ["ip", "netns", "exec", $0] } ?? []
        return try Shell.run(prefix + ["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    }

    @Test func runsWithOnlyGlibcAndNeedsItsBundledLibraries() throws {
        let version = try Shell.check([Binary.ctdoctor, "--version"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let result = try runInRoot(["--version"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == version)
        #expect(tarball.contains("ctdoctor-\(version)-linux-"), "the tarball is named by the version it holds")

        // The control: without lib/, the same chroot cannot start it, so nothing outside
        // the tarball supplied those libraries.
        let lib = root.appendingPathComponent("opt/ctdoctor/lib")
        let moved = root.appendingPathComponent("opt/ctdoctor/lib.away")
        try FileManager.default.moveItem(at: lib, to: moved)
        defer { try? FileManager.default.moveItem(at: moved, to: lib) }
        let without = try runInRoot(["--version"])
        #expect(without.status != 0 && without.standardError.contains("error while loading shared libraries"))
    }

    @Test func diagnosesTheLabFromInsideTheChroot() throws {
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("tarball"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        try lab.build()
        let result = try runInRoot(["diagnose", "--format", "json"], netns: lab.lab.name)
        #expect(result.status == 1, "the leak is a finding: \(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let leakedPort = try #require(lab.flows.first { $0.expected == .leaked }).appPort
        #expect(DiagnosisJSON.peerPorts(in: document).contains(Int(leakedPort)))
        #expect((document["sources"] as? [String: Any])?["conntrack"] as? String != "proc", "netlink, through the bundled libraries")
        // No nft in the chroot, as in a distroless image: the lab's rules (iptables-nft's
        // REDIRECTs) are read over netlink all the same.
        let kernel = document["kernel"] as? [String: Any]
        #expect((kernel?["rules_source"] as? String)?.hasPrefix("nf_tables over netlink (") == true, "\(kernel?["rules_source"] ?? "nil")")
        #expect(kernel?["invalid_drop_rule"] as? Bool == false)
        let count = try runInRoot(["conntrack", "--count"], netns: lab.lab.name)
        #expect(count.status == 0 && Int(count.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)).map { $0 > 0 } == true)
    }

    @Test func lintsAManifestFromStandardInput() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("CTDoctorTests/Fixtures/manifests/istio-mysql.yaml")
        try FileManager.default.copyItem(at: fixture, to: root.appendingPathComponent("tmp/manifest.yaml"))
        let result = try runInRoot(["lint", "-"], stdin: "tmp/manifest.yaml")
        #expect(result.status == 1, "\(result.standardError)")
        #expect(result.standardOutput.contains("CTD101"))
    }

    /// What a debug image pulls on every node: the sizes issue #17 set (the binary and the
    /// tarball were 62 MB and 24 MB when Yams brought Foundation's internationalisation
    /// layer and ICU's data), and the libraries it needs. A dependency that pulls ICU back
    /// in, or a new shared library, fails here before it reaches a pod.
    @Test func fitsADebugImage() throws {
        func bytes(_ path: String) throws -> Int {
            try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber).intValue
        }
        let tarballBytes = try bytes(tarball)
        #expect(tarballBytes <= 8_000_000, "the tarball is \(tarballBytes) bytes")
        // The xz one beside it, for copying into a pod: a quarter of the 24 MB it was, and
        // the same files.
        let xzTarball = String(tarball.dropLast(".gz".count)) + ".xz"
        let xzBytes = try bytes(xzTarball)
        #expect(xzBytes <= 6_000_000, "the .tar.xz is \(xzBytes) bytes")
        try Shell.check(["xz", "-t", xzTarball])
        #expect(try Shell.check(["tar", "-tJf", xzTarball]) == (try Shell.check(["tar", "-tzf", tarball])), "both tarballs hold the same files")
        let binary = root.appendingPathComponent("opt/ctdoctor/bin/ctdoctor").path
        let binaryBytes = try #require(try FileManager.default.attributesOfItem(atPath: binary)[.size] as? NSNumber).intValue
        #expect(binaryBytes <= 20_000_000, "the stripped binary is \(binaryBytes) bytes")

        let dynamic = try Shell.check(["readelf", "-d", binary])
        let needed = Set(dynamic.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap { line -> String? in
            guard let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        })
        let glibc: Set = ["libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"]
        // libstdc++ is linked in from its archive (scripts/release): needing its shared
        // library again would put 750 KB back in the tarball.
        let bundled: Set = ["libmnl.so.0", "libz.so.1", "libyaml-0.so.2", "libgcc_s.so.1"]
        #expect(needed.subtracting(glibc).subtracting(bundled).isEmpty, "needs \(needed.sorted())")
        #expect(needed.contains("libyaml-0.so.2"), "manifests are read by libyaml: \(needed.sorted())")

        // Statically linked, ICU and Foundation's internationalisation layer leave no
        // library name behind: their data and their module's name are what show.
        let contents = try Data(contentsOf: URL(fileURLWithPath: binary))
        for marker in ["icudt", "FoundationInternationalization"] {
            #expect(contents.range(of: Data(marker.utf8)) == nil, "\(marker) is in the binary")
        }
    }
}

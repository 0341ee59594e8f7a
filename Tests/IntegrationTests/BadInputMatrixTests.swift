import Foundation
import Lab
import Live
import TestSupport
import Testing

/// The bad-input matrix, through the command line as users meet it: each row either a
/// one-line error naming the cause with exit status 2, or a result whose degradation is
/// said. (Missing namespaces and exited PIDs: NamespaceTests; conntrack not loaded:
/// ConntrackReaderTests, with the kernel's answers scripted.)
@Suite("bad input matrix")
final class BadInputMatrixTests {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try write("ct.txt", Self.conntrack)
        // World-readable, so the unprivileged rows can reach their files.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// A pod's /proc/net/tcp: the Istio listeners and one proxy socket in FIN_WAIT2
    /// (127.0.0.1:15001 <-> 10.66.0.5:40001, inode 5001).
    static let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
    static let listener = "   0: 00000000:3A99 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1337        0 4001 1 0000000000000000 100 0 0 10 0"
    static let finWait2 = "   1: 0100007F:3A99 0500420A:9C41 05 00000000:00000000 00:00000000 00000000  1337        0 5001 1 0000000000000000 20 4 30 10 -1"
    static let conntrack = "tcp      6 431999 ESTABLISHED src=10.66.0.5 dst=10.96.0.10 sport=40002 dport=80 src=127.0.0.1 dst=10.66.0.5 sport=15001 dport=40002 [ASSURED] mark=0 use=1\n"

    func write(_ name: String, _ text: String) throws { try Data(text.utf8).write(to: directory.appendingPathComponent(name)) }
    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// diagnose on a copied socket table and the conntrack copy.
    func diagnose(sockets: String, conntrack: String = "ct.txt", json: Bool = false) throws -> CommandResult {
        try Shell.run([Binary.ctdoctor, "diagnose", "--sockets-file", path(sockets), "--conntrack-file", path(conntrack)] + (json ? ["--format", "json"] : []))
    }

    func expectOneLineError(_ result: CommandResult, _ phrase: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 2, "\(result.standardOutput)", sourceLocation: sourceLocation)
        #expect(result.standardOutput.isEmpty, sourceLocation: sourceLocation)
        #expect(result.standardError.hasPrefix("ctdoctor: error: ") && result.standardError.split(separator: "\n").count == 1, "\(result.standardError)", sourceLocation: sourceLocation)
        #expect(result.standardError.contains(phrase), "\(result.standardError)", sourceLocation: sourceLocation)
        #expect(result.standardError.count < 400, "one readable line, not a dump of the input", sourceLocation: sourceLocation)
    }

    static let socketRows: [(name: String, content: String, phrase: String)] = [
        ("empty", "", "empty: no socket listing"),
        ("truncated line", header + "\n" + String(finWait2.prefix(60)) + "\n", ":2: "),
        ("wrong column count", header + "\n" + finWait2.split(separator: " ").dropLast(12).joined(separator: " ") + "\n", ":2: "),
        ("non-hex address", header + "\n" + finWait2.replacing("0100007F:3A99", with: "01ZZ007F:3A99") + "\n", "local_address"),
        ("port over 65535", header + "\n" + finWait2.replacing("0100007F:3A99", with: "0100007F:13A99") + "\n", "port"),
        ("one 10 MB line", String(repeating: "A", count: 10 << 20) + "\n", ":1: "),
        ("lines that all start with blanks", "   hello world\n   State of the node\n\t42 sockets\n", "not a socket listing"),
        ("binary garbage", String(decoding: (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }, as: UTF8.self), ":1: "),
    ]

    @Test(arguments: socketRows.indices)
    func aBrokenSocketCopyIsAOneLineErrorNamingWhere(row: Int) throws {
        let (name, content, phrase) = Self.socketRows[row]
        let file = "sockets-\(row)"
        try write(file, content)
        let result = try diagnose(sockets: file)
        expectOneLineError(result, phrase)
        #expect(result.standardError.contains(path(file)), "\(name): names the file")
    }

    @Test func aDirectoryInsteadOfAFileIsAnError() throws {
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("adir"), withIntermediateDirectories: true)
        expectOneLineError(try diagnose(sockets: "adir"), "Is a directory")
        expectOneLineError(try Shell.run([Binary.ctdoctor, "diagnose", "--from", path("adir")]), "Is a directory")
        expectOneLineError(try Shell.run([Binary.ctdoctor, "lint", path("adir/missing.yaml")]), "missing.yaml")
    }

    @Test func crlfLinesGiveTheSameDiagnosisAsLF() throws {
        let lines = [Self.header, Self.listener, Self.finWait2]
        try write("lf", lines.joined(separator: "\n") + "\n")
        try write("crlf", lines.joined(separator: "\r\n") + "\r\n")
        let lf = try diagnose(sockets: "lf", json: true)
        let crlf = try diagnose(sockets: "crlf", json: true)
        #expect(lf.status == 1 && crlf.status == 1, "the leak is found either way: \(crlf.standardError)")
        func leaks(_ text: String) throws -> [String] {
            let document = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            return (document["leaks"] as? [[String: Any]] ?? []).map { "\($0["class"] ?? "") \(($0["socket"] as? [String: Any])?["inode"] ?? "")" }
        }
        #expect(try leaks(crlf.standardOutput) == ["leaked 5001"])
        #expect(try leaks(crlf.standardOutput) == leaks(lf.standardOutput))
    }

    @Test func ipv6LinesInAnIPv4CopyAreReadAsIPv6() throws {
        // `cat /proc/net/tcp /proc/net/tcp6 > copy` is how people copy both: each line's
        // address length says its family, and the second header is skipped and counted.
        let v6 = "   0: 00000000000000000000000001000000:3A99 0000000000000000FFFF00000500420A:9C42 05 00000000:00000000 00:00000000 00000000  1337        0 5002 1 0000000000000000 20 4 30 10 -1"
        try write("mixed", [Self.header, Self.listener, Self.finWait2, Self.header, v6].joined(separator: "\n") + "\n")
        let result = try diagnose(sockets: "mixed", json: true)
        #expect(result.status == 1, "\(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let peers = (document["leaks"] as? [[String: Any]] ?? []).compactMap { (($0["socket"] as? [String: Any])?["peer"] as? [String: Any])?["address"] as? String }
        #expect(Set(peers) == ["10.66.0.5", "::ffff:10.66.0.5"])
        #expect((document["notices"] as? [String] ?? []).contains("skipped 0 non-entry lines in \(path("ct.txt")) and 2 in \(path("mixed")) (headers, summaries, other protocols)"))
    }

    @Test func anEmptyConntrackCopyIsSaidToMakeEverySocketLookLeaked() throws {
        try write("sockets", [Self.header, Self.listener, Self.finWait2].joined(separator: "\n") + "\n")
        try write("empty-ct", "")
        let result = try diagnose(sockets: "sockets", conntrack: "empty-ct", json: true)
        #expect(result.status == 1)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect((document["notices"] as? [String] ?? []).contains { $0.contains("holds no conntrack entry: an empty table, or a failed copy") })
        let table = try diagnose(sockets: "sockets", conntrack: "empty-ct")
        #expect(table.standardError.contains("ctdoctor: warning: \(path("empty-ct")) holds no conntrack entry"), "and on standard error")
    }

    @Test func aSnapshotFromANewerVersionSaysSo() throws {
        try write("newer.json", #"{"schema": "ctdoctor.snapshot.v2", "captured_at": 0}"#)
        expectOneLineError(try Shell.run([Binary.ctdoctor, "diagnose", "--from", path("newer.json")]), "ctdoctor.snapshot.v2 is a snapshot format this ctdoctor does not read")
        try write("other.json", #"{"schema": "something.else"}"#)
        expectOneLineError(try Shell.run([Binary.ctdoctor, "leaks", "--from", path("other.json")]), "not a ctdoctor snapshot")
    }

    /// A billion-laughs document: nine levels of aliases, each nine times the last,
    /// inside a Deployment where the linter looks (annotations, ports, env).
    @Test func aYAMLAliasBombIsNotExpanded() throws {
        var yaml = "x0: &l0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        for level in 1...9 { yaml += "x\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 9).joined(separator: ",") + "]\n" }
        yaml += """
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: bomb, namespace: x, annotations: {sidecar.istio.io/inject: "true"}}
            spec:
              template:
                metadata: {labels: {app: bomb}}
                spec:
                  containers:
                    - name: bomb
                      image: mysql:8.0
                      env: [{name: A, value: "1"}]
                      ports: [{containerPort: 3306, name: mysql}]

            """
        try write("bomb.yaml", yaml)
        let result = try Shell.run(["/usr/bin/time", "-f", "rss %M", "timeout", "60", Binary.ctdoctor, "lint", path("bomb.yaml")])
        #expect(result.status != 124, "it finished")
        #expect(result.status == 0 || result.status == 1 || result.status == 2, "\(result.standardError)")
        let rss = result.standardError.split(separator: "\n").last { $0.hasPrefix("rss ") }.flatMap { Int($0.dropFirst(4)) }
        #expect((rss ?? .max) < 256 * 1024, "peak memory stays small: \(rss ?? -1) KiB")
    }

    /// Aliases where the linter walks: a List whose items are Lists of nine aliases each,
    /// six levels deep (531,441 Deployments from 700 bytes). Refused by the expansion cap
    /// at once, instead of parsed into objects and matched pairwise.
    @Test func aListOfAliasedListsIsRefusedByTheExpansionCap() throws {
        var yaml = "apiVersion: v1\nkind: List\nitems:\n"
        yaml += "  - &d0 {apiVersion: apps/v1, kind: Deployment, metadata: {name: x}, spec: {template: {spec: {containers: [{name: c, image: mysql, ports: [{containerPort: 3306}]}]}}}}\n"
        for level in 1...6 {
            yaml += "  - &d\(level) {apiVersion: v1, kind: List, items: [" + Array(repeating: "*d\(level - 1)", count: 9).joined(separator: ",") + "]}\n"
        }
        try write("nested-bomb.yaml", yaml)
        let result = try Shell.run(["timeout", "60", Binary.ctdoctor, "lint", path("nested-bomb.yaml")])
        expectOneLineError(result, "aliases expand to more than")
    }

    @Test(.enabled(if: Privileges.shouldRunPrivilegedTests))
    func anUnreadableFileNamesTheFileAndThePermission() throws {
        try write("secret", [Self.header, Self.finWait2].joined(separator: "\n") + "\n")
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path("secret"))
        let result = try Shell.run(Self.unprivileged + [Binary.ctdoctor, "diagnose", "--sockets-file", path("secret"), "--conntrack-file", path("ct.txt")])
        expectOneLineError(result, "Permission denied")
        #expect(result.standardError.contains(path("secret")))
    }

    /// As nobody, with no capabilities at all.
    static let unprivileged = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]

    @Test(.enabled(if: Privileges.shouldRunPrivilegedTests))
    func withoutCapNetAdminTheConntrackListingSaysWhatItNeeds() throws {
        let result = try Shell.run(Self.unprivileged + [Binary.ctdoctor, "conntrack", "--count"])
        expectOneLineError(result, "needs CAP_NET_ADMIN")
        let lab = try Shell.run(Self.unprivileged + [Binary.ctdoctor, "diagnose", "--netns", "/proc/1/ns/net"])
        // Another user's namespace: not even visible without CAP_SYS_PTRACE.
        expectOneLineError(lab, "cannot look at /proc/1/ns/net: permission denied")
        // Its own: visible, but entering any namespace file needs CAP_SYS_ADMIN.
        expectOneLineError(try Shell.run(Self.unprivileged + [Binary.ctdoctor, "leaks", "--netns", "/proc/self/ns/net"]), "needs CAP_SYS_ADMIN")
    }
}

/// Root without CAP_NET_ADMIN, diagnosing the lab: the lookups are refused, so the
/// whole table is read through /proc, and the result says so — with the same leak.
@Suite("diagnose without CAP_NET_ADMIN", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class WithoutNetAdminTests {
    let lab: HalfCloseLab

    init() throws {
        lab = try HalfCloseLab(name: TestNamespace.uniqueName("nocap"), closeWaitSeconds: 2, say: { _ in })
        try lab.build()
    }

    deinit { lab.tearDown() }

    @Test func theLeakIsStillFoundAndTheFallbackIsLabelled() throws {
        let result = try Shell.run(["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", Binary.ctdoctor, "diagnose", "--netns", lab.lab.name, "--format", "json"])
        #expect(result.status == 1, "\(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect((document["sources"] as? [String: Any])?["conntrack"] as? String == "/proc/net/nf_conntrack")
        #expect((document["notices"] as? [String] ?? []).contains { $0.contains("CAP_NET_ADMIN") })
        let leakedPort = Int(try #require(lab.flows.first { $0.expected == .leaked }).appPort)
        #expect(DiagnosisJSON.peerPorts(in: document).contains(leakedPort))
        let reap = try Shell.run(["setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin", Binary.ctdoctor, "leaks", "--netns", lab.lab.name, "--reap", "--yes", "--min-idle", "0"])
        #expect(reap.status == 2, "no socket is destroyed without CAP_NET_ADMIN: \(reap.standardOutput)")
        #expect(reap.standardError.contains("CAP_NET_ADMIN"), "\(reap.standardError)")
    }
}

/// A plain pod: `kubectl exec -c istio-proxy` runs as UID 1337 with no capability, so
/// conntrack is unreadable (netlink needs CAP_NET_ADMIN, /proc/net/nf_conntrack root).
/// sock_diag with tcp_info and the sysctls still answer: a half-closed socket idle past
/// the close_wait timeout (+ margin) is leaked by inference, a younger one unknown.
@Suite("diagnose in a plain pod", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class PlainPodTests {
    let lab: HalfCloseLab

    init() throws {
        lab = try HalfCloseLab(name: TestNamespace.uniqueName("plainpod"), closeWaitSeconds: 2, say: { _ in })
        try lab.build()
        // The late-closed flow's proxy socket has been idle ~3.9 s; wait until it is past
        // close_wait (2 s) + the 5 s margin (a stall only adds to that), while the fresh
        // one (idle ~0.3 s) stays under it with 2.7 s to spare.
        usleep(4_000_000)
    }

    deinit { lab.tearDown() }

    @Test func leaksAreInferredFromIdleTimeAsAnUnprivilegedUser() throws {
        let result = try Shell.run([
            "ip", "netns", "exec", lab.lab.name, "setpriv", "--reuid=1337", "--regid=1337", "--clear-groups", "--inh-caps=-all",
            "--bounding-set=-all", Binary.ctdoctor, "diagnose", "--format", "json",
        ])
        #expect(result.status == 1, "a leak is a finding, not an error: \(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect((document["sources"] as? [String: Any])?["conntrack"] as? String == "unreadable (no CAP_NET_ADMIN, not root)")
        #expect((document["notices"] as? [String] ?? []).contains { $0.contains("conntrack is unreadable here") })
        let leaks = document["leaks"] as? [[String: Any]] ?? []
        func record(_ port: UInt16) -> [String: Any]? {
            leaks.first { (($0["socket"] as? [String: Any])?["peer"] as? [String: Any])?["port"] as? Int == Int(port) }
        }
        let late = try #require(lab.flows.first { $0.expected == .leaked })
        let fresh = try #require(lab.flows.first { $0.expected == .atRisk })
        #expect(record(late.appPort)?["class"] as? String == "leaked", "\(leaks)")
        #expect(record(late.appPort)?["basis"] as? String == "idle-time")
        #expect((record(late.appPort)?["reason"] as? String)?.contains("inferred from idle time") == true)
        #expect(record(fresh.appPort)?["class"] as? String == "unknown", "too young to tell: \(leaks)")
        #expect((document["verdict"] as? String)?.contains("inferred from idle times") == true, "\(document["verdict"] ?? "")")
    }
}

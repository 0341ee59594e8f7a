import Foundation
import Lab
import TestSupport
import Testing

/// What ctdoctor does to the machine, watched with strace: the programs it runs (only
/// the rule listers, with fixed arguments, never through a shell, never with what the
/// user typed), the files it writes (only --output, through a temporary file beside
/// it), and the capabilities each command gets by with.
@Suite("least privilege", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class LeastPrivilegeTests {
    let lab: HalfCloseLab
    let directory: URL

    init() throws {
        lab = try HalfCloseLab(name: TestNamespace.uniqueName("leastpriv"), closeWaitSeconds: 2, say: { _ in })
        try lab.build()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-lp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        lab.tearDown()
        try? FileManager.default.removeItem(at: directory)
    }

    struct Trace {
        var executed: [String]
        var written: [String]
        var status: Int32
    }

    /// Runs ctdoctor under strace and returns every program it executed (after itself)
    /// and every path it opened for writing, created, renamed or removed.
    func traced(_ arguments: [String]) throws -> Trace {
        let log = directory.appendingPathComponent("strace-\(UUID().uuidString)").path
        let result = try Shell.run(["strace", "-f", "-qq", "-s", "512", "-o", log, "-e", "trace=execve,openat,open,creat,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat", Binary.ctdoctor] + arguments)
        defer { try? FileManager.default.removeItem(atPath: log) }
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        func firstPath(_ line: Substring) -> String? {
            guard let open = line.firstIndex(of: "\""), let close = line[line.index(after: open)...].firstIndex(of: "\"") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        let executed = lines.filter { $0.contains("execve(") && !$0.contains("= -1") }.dropFirst().map { String($0.drop { $0 != "[" }.prefix { $0 != "]" }) + "]" }
        let written = lines.compactMap { line -> String? in
            let writes = line.contains("O_WRONLY") || line.contains("O_RDWR") || line.contains("O_CREAT")
                || line.contains("rename") || line.contains("unlink") || line.contains("mkdir")
            guard writes, !line.contains("= -1"), !line.contains("execve(") else { return nil }
            // renameat(AT_FDCWD, "from", AT_FDCWD, "to"): both paths count.
            let quoted = line.split(separator: "\"").enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) }
            return quoted.isEmpty ? firstPath(line) : quoted.joined(separator: " -> ")
        }
        return Trace(executed: executed, written: written, status: result.status)
    }

    @Test func diagnoseRunsOnlyTheRuleListersAndWritesNothing() throws {
        let trace = try traced(["diagnose", "--netns", lab.lab.name, "--format", "json"])
        #expect(trace.status == 1)
        let allowed = ["[\"/usr/sbin/nft\", \"--json\", \"list\", \"ruleset\"]", "[\"/usr/sbin/nft\", \"list\", \"ruleset\"]",
                       "[\"/usr/sbin/iptables-save\"]", "[\"/usr/sbin/iptables-legacy-save\"]", "[\"/usr/sbin/iptables-nft-save\"]",
                       "[\"/usr/sbin/ip6tables-save\"]", "[\"/usr/sbin/ip6tables-legacy-save\"]"]
        #expect(!trace.executed.contains { $0.contains("/nft\"") }, "nf_tables is read over netlink, not by running nft: \(trace.executed)")
        for program in trace.executed {
            #expect(allowed.contains(program) || program.hasPrefix("[\"/usr/sbin/") && !program.contains(lab.lab.name), "ran \(program)")
            #expect(!program.contains("/bin/sh"), "no shell")
        }
        #expect(trace.written.allSatisfy { $0 == "/dev/null" }, "wrote \(trace.written)")
    }

    @Test func userTextNeverReachesAProgramItRuns() throws {
        // A namespace path full of shell syntax: refused as a path, and run nowhere.
        let hostile = directory.appendingPathComponent("x;touch $(echo pwned)`id`").path
        let trace = try traced(["diagnose", "--netns", hostile])
        #expect(trace.status == 2)
        #expect(trace.executed.isEmpty, "\(trace.executed)")
        #expect(!FileManager.default.fileExists(atPath: "pwned"))
    }

    @Test func exportAndSnapshotWriteOnlyTheirOutputThroughATemporaryFileBesideIt() throws {
        for (command, name) in [("export", "ctdoctor.prom"), ("snapshot", "pod.json")] {
            let target = directory.appendingPathComponent(name).path
            let trace = try traced([command, "--netns", lab.lab.name, "--output", target])
            #expect(trace.status == 0, "\(command)")
            let outside = trace.written.filter { $0 != "/dev/null" && !$0.split(separator: " ").allSatisfy { $0 == "->" || $0.hasPrefix(directory.path + "/.\(name).") || $0 == target } }
            #expect(outside.isEmpty, "\(command) wrote \(outside)")
            #expect(trace.written.contains { $0.hasSuffix("-> \(target)") }, "\(command) renamed its temporary file over \(target): \(trace.written)")
        }
    }

    /// Each command with only the capabilities README says it needs.
    @Test func eachCommandWorksWithTheCapabilitiesItDocuments() throws {
        func with(_ capabilities: [String], _ arguments: [String]) throws -> CommandResult {
            let keep = capabilities.map { "+" + $0 }.joined(separator: ",")
            let drop = capabilities.isEmpty ? ["--inh-caps=-all", "--bounding-set=-all"] : ["--inh-caps=-all,\(keep)", "--ambient-caps=-all,\(keep)", "--bounding-set=-all,\(keep)"]
            return try Shell.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + drop + [Binary.ctdoctor] + arguments)
        }
        // sockets: nothing at all.
        let sockets = try with([], ["sockets", "--count"])
        #expect(sockets.status == 0 && Int(sockets.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) != nil, "\(sockets.standardError)")
        // lint: nothing.
        let manifests = ExampleTests.root.appendingPathComponent("examples/kubernetes").path
        #expect(try with([], ["lint", manifests]).status == 0)
        // conntrack: CAP_NET_ADMIN.
        let conntrack = try with(["net_admin"], ["conntrack", "--count"])
        #expect(conntrack.status == 0, "\(conntrack.standardError)")
        // pressure: CAP_NET_ADMIN for the table and the counters over ctnetlink; without
        // it, the counters from /proc/net/stat (this kernel has it) and no table, said.
        let pressure = try with(["net_admin"], ["pressure", "--interval", "0", "--format", "json", "--fail-on", "never"])
        #expect(pressure.status == 0, "\(pressure.standardError)")
        let full = try #require(try JSONSerialization.jsonObject(with: Data(pressure.standardOutput.utf8)) as? [String: Any])
        #expect((full["statistics"] as? [String: Any])?["source"] as? String == "netlink" && full["table"] is [String: Any])
        let bare = try with([], ["pressure", "--interval", "0", "--format", "json", "--fail-on", "never"])
        #expect(bare.status == 0, "\(bare.standardError)")
        let partial = try #require(try JSONSerialization.jsonObject(with: Data(bare.standardOutput.utf8)) as? [String: Any])
        #expect((partial["statistics"] as? [String: Any])?["source"] as? String == "proc" && partial["table"] is NSNull)
        #expect((partial["notices"] as? [String])?.contains { $0.contains("CAP_NET_ADMIN") } == true)
        // diagnose in another namespace: CAP_SYS_ADMIN to enter it, CAP_NET_ADMIN for the
        // lookups; CAP_SYS_PTRACE only to name the proxy (without it: said, not fatal).
        let diagnose = try with(["sys_admin", "net_admin"], ["diagnose", "--netns", lab.lab.name, "--format", "json"])
        #expect(diagnose.status == 1, "the leak is found: \(diagnose.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(diagnose.standardOutput.utf8)) as? [String: Any])
        #expect((document["sources"] as? [String: Any])?["conntrack"] as? String != "/proc/net/nf_conntrack", "netlink lookups, not the fallback")
        #expect((document["leaks"] as? [[String: Any]] ?? []).contains { $0["class"] as? String == "leaked" })
    }
}

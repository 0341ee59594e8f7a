import Conntrack
import Foundation
import Live
import TestSupport
import Testing

/// `ctdoctor pressure` on real tables: the kernel's counters against `conntrack -S` and
/// `-C`, the lab's filled namespace named entry for entry, and stale entries deleted
/// without touching live ones. Needs root; with CI=true these never skip.
@Suite("pressure on real tables", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
struct PressureCommandTests {
    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    /// `count` UDP entries from 10.9.0.1 to the DNS Service, DNATed to `target` (the reply
    /// tuple says so, as `conntrack -L` shows a DNAT), each with a long timeout.
    static func insert(_ lab: TestNamespace, count: Int, firstPort: Int, target: String, proto: String = "udp") throws {
        for index in 0..<count {
            let port = String(firstPort + index)
            var command = [
                "conntrack", "-I", "-p", proto, "-s", "10.9.0.1", "-d", "10.96.0.53", "--sport", port, "--dport", "53",
                "--reply-src", target, "--reply-dst", "10.9.0.1", "--reply-port-src", "53", "--reply-port-dst", port, "-t", "600",
            ]
            if proto == "tcp" { command += ["--state", "ESTABLISHED", "-u", "SEEN_REPLY,ASSURED"] }
            try lab.exec(command)
        }
    }

    @Test func countersAgreeWithConntrackSAndC() throws {
        let lab = try TestNamespace(tag: "pstat")
        try Self.insert(lab, count: 7, firstPort: 41000, target: "10.244.1.5")
        let ours = try ConntrackStatisticsReader(namespace: lab.namespace).read()
        let theirs = try ConntrackStatisticsText.parse(Array(try lab.exec(["conntrack", "-S"]).utf8), source: "conntrack -S")
        #expect(ours.source == .netlink && ours.perCPU.map(\.cpu) == theirs.perCPU.map(\.cpu))
        for (mine, tool) in zip(ours.perCPU, theirs.perCPU) {
            for counter in ConntrackCounter.allCases {
                #expect(mine.counters[counter] == tool.counters[counter], "cpu \(mine.cpu) \(counter.rawValue)")
            }
        }
        #expect(ours.totals[.insert] == 7, "conntrack -I inserts through ctnetlink, which counts them")
        let count = try lab.exec(["conntrack", "-C"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(ours.entries == Int(count) && ours.entries == 7)
        let maximum = try lab.exec(["sysctl", "-n", "net.netfilter.nf_conntrack_max"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(ours.maximum == Int(maximum))
    }

    @Test func theLabsTableIsNamedAsItWasBuiltAndItsLostRacesCounted() throws {
        let result = try Shell.run([Binary.ctdoctor, "lab", "pressure", "--format", "json"])
        #expect(result.status == 0, "\(result.standardOutput) \(result.standardError)")
        let document = try Self.json(result.standardOutput)
        #expect(document["matches"] as? Bool == true, "\(document["problems"] ?? "")")
        let pressure = try #require(document["pressure"] as? [String: Any])
        let table = try #require(pressure["table"] as? [String: Any])
        let best = try #require(table["best_saving"] as? [String: Any])
        #expect(best["sysctl"] as? String == "net.netfilter.nf_conntrack_tcp_timeout_close_wait")
        #expect(best["current"] as? Int == 3600 && best["lowered_to"] as? Int == 60 && best["freed"] as? Int == document["half_closed"] as? Int)
        #expect((table["stale"] as? [String: Any])?["entries"] as? Int == 1)
        // Each SYN the kernel dropped came back to its sender as EPERM: counted by the lab
        // on its own, so the kernel's insert_failed must have grown at least that much.
        let lost = try #require(document["races_lost"] as? Int)
        let growth = try #require((pressure["interval"] as? [String: Any])?["growth"] as? [String: Any])
        #expect(lost > 0, "two threads sending the same SYNs together lost no insert race")
        #expect((growth["insert_failed"] as? Int ?? 0) >= lost && (growth["drop"] as? Int ?? 0) >= lost)
        let ids = (pressure["findings"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        #expect(Set(ids).isSuperset(of: ["conntrack-insert-failures", "conntrack-long-timeouts", "conntrack-stale-entries", "conntrack-unreplied-entries"]))
    }

    @Test func theNodeSweepReportsEachNamespaceAndNamesPodsByTheirAddresses() throws {
        let lab = try TestNamespace(tag: "psweep")
        let peer = try TestNamespace(tag: "psweep")
        // The peer holds 10.244.1.5, the DNAT target of the lab's entries: a pod of the node.
        try peer.exec(["ip", "addr", "add", "10.244.1.5/32", "dev", "lo"])
        try Self.insert(lab, count: 9, firstPort: 45000, target: "10.244.1.5")
        let result = try Shell.run([Binary.ctdoctor, "pressure", "--all-netns", "--interval", "0", "--format", "json", "--fail-on", "never"])
        #expect(result.status == 0, "\(result.standardError)")
        let namespaces = try #require(try Self.json(result.standardOutput)["namespaces"] as? [[String: Any]])
        let mine = try #require(namespaces.first { $0["namespace"] as? String == lab.name }, "the sweep lists \(lab.name)")
        let table = try #require(mine["table"] as? [String: Any])
        #expect(table["entries"] as? Int == 9)
        let destinations = try #require(table["pods_as_destination"] as? [[String: Any]])
        #expect(destinations.first { $0["pod"] as? String == peer.name }?["entries"] as? Int == 9, "\(destinations)")
        let counts = namespaces.compactMap { $0["count"] as? Int }
        #expect(counts == counts.sorted(by: >), "the fullest first")

        let one = try Shell.run([Binary.ctdoctor, "pressure", "--pod", lab.name, "--interval", "0", "--format", "json", "--fail-on", "never"])
        let single = try Self.json(one.standardOutput)
        #expect(one.status == 0 && single["namespace"] as? String == lab.name, "\(one.standardError)")
    }

    @Test func staleEntriesAreReapedAndLiveOnesKept() throws {
        let lab = try TestNamespace(tag: "preap")
        try Self.insert(lab, count: 12, firstPort: 42000, target: "10.244.1.5")
        try Self.insert(lab, count: 5, firstPort: 43000, target: "10.244.9.9")
        try Self.insert(lab, count: 3, firstPort: 44000, target: "10.244.9.9", proto: "tcp")
        let endpoints = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-slices-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: endpoints) }
        try Data(#"{"kind":"List","items":[{"kind":"EndpointSlice","addressType":"IPv4","endpoints":[{"addresses":["10.244.1.5"]}]}]}"#.utf8)
            .write(to: endpoints)
        let base = [Binary.ctdoctor, "pressure", "--netns", lab.name, "--interval", "0", "--endpoints", endpoints.path]

        let report = try Shell.run(base + ["--format", "json"])
        #expect(report.status == 1, "stale entries are an error finding")
        let table = try #require(try Self.json(report.standardOutput)["table"] as? [String: Any])
        #expect((table["stale"] as? [String: Any])?["entries"] as? Int == 8)

        let dryRun = try Shell.run(base + ["--reap"])
        #expect(dryRun.status == 1, "a dry run leaves them: \(dryRun.standardError)")
        #expect(dryRun.standardError.components(separatedBy: "reap: would-delete").count - 1 == 8)
        #expect(dryRun.standardOutput.contains("Reap (dry run: --yes deletes)"))
        let dryDocument = try Self.json(try Shell.run(base + ["--reap", "--format", "json"]).standardOutput)
        let planned = try #require(dryDocument["reap"] as? [String: Any])
        #expect(planned["dry_run"] as? Bool == true && planned["would_delete"] as? Int == 8 && planned["deleted"] as? Int == 0)
        #expect((planned["actions"] as? [[String: Any]])?.allSatisfy { ($0["entry"] as? [String: Any])?["dnat_target"] as? String == "10.244.9.9:53" } == true)
        #expect(try lab.exec(["conntrack", "-C"]).trimmingCharacters(in: .whitespacesAndNewlines) == "20")

        let reaped = try Shell.run(base + ["--reap", "--yes"])
        #expect(reaped.status == 0, "\(reaped.standardError)")
        #expect(reaped.standardError.components(separatedBy: "reap: deleted").count - 1 == 8)
        let left = try ConntrackTextParser.parse(Array(try lab.exec(["conntrack", "-L"]).utf8), source: "conntrack -L").entries
        #expect(left.count == 12 && left.allSatisfy { $0.reply.source.description == "10.244.1.5" })
    }
}

/// `pressure` on copied tables: no privilege needed.
@Suite("pressure on copied tables")
struct PressureOfflineTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("CTDoctorTests/Fixtures")

    func fixture(_ path: String) -> String { Self.fixtures.appendingPathComponent(path).path }

    @Test func aCopiedTableWithItsStatisticsReads() throws {
        let result = try Shell.run([
            Binary.ctdoctor, "pressure", "--conntrack-file", fixture("captured/conntrack-L.txt"),
            "--stats-file", fixture("handmade/conntrack-S.txt"), "--format", "json", "--fail-on", "never",
        ])
        #expect(result.status == 0, "\(result.standardError)")
        let document = try PressureCommandTests.json(result.standardOutput)
        let entries = try ConntrackTextParser.parse(Array(try String(contentsOfFile: fixture("captured/conntrack-L.txt"), encoding: .utf8).utf8), source: "x").entries
        #expect((document["table"] as? [String: Any])?["entries"] as? Int == entries.count)
        #expect(((document["statistics"] as? [String: Any])?["totals"] as? [String: Any])?["invalid"] as? Int == 15)
        #expect((document["notices"] as? [String])?.contains { $0.contains("kernel's defaults") } == true)
    }

    @Test(arguments: [
        (["--conntrack-file", "captured/conntrack-L.txt", "--stats-file", "captured/conntrack-L.txt"], "neither a `conntrack -S` line"),
        (["--conntrack-file", "handmade/conntrack-S.txt"], "this is `conntrack -S` statistics"),
        (["--stats-file", "handmade/conntrack-S.txt"], "give --conntrack-file too"),
        (["--reap"], "give --endpoints"),
        (["--interval", "2h"], "--interval takes a duration from 0 to 1h"),
    ])
    func badInputExitsTwoOnOneLine(arguments: [String], message: String) throws {
        let resolved = arguments.map { $0.contains("/") ? fixture($0) : $0 }
        let result = try Shell.run([Binary.ctdoctor, "pressure"] + resolved)
        #expect(result.status == 2 && result.standardOutput.isEmpty)
        #expect(result.standardError.contains(message) && result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
    }
}

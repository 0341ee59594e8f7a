import Conntrack
@testable import Diagnosis
import Formats
import JSON
@testable import MeshLint
import NetCore
import Offline
import Pressure
import Sockets
import Testing

/// Every `ctdoctor.*.v1` record: what the writer puts out, the reader (or, for documents
/// ctdoctor only writes, the JSON reader and README's key lists) takes back. A field added
/// to a writer and not to its reader, or to README, fails here.
@Suite("formats: every record read back")
struct FormatRoundTripTests {
    /// The bytes a listing streams, collected.
    final class Collected {
        var bytes: [UInt8] = []
    }

    func stream(_ layout: RecordStream.Layout, _ body: (inout RecordStream) throws -> Void, tail: (inout [UInt8]) -> Void) throws -> [UInt8] {
        let collected = Collected()
        // A small threshold, so that records cross flushes.
        var stream = RecordStream(layout, to: OutputBuffer(threshold: 512) { collected.bytes += $0 })
        try body(&stream)
        try stream.finish(tail: tail)
        return collected.bytes
    }

    /// Entries with every field the decoders fill: netlink (ids, counters, labels, zones),
    /// GRE keys and zones from text, ICMP from conntrack -L.
    func everyKindOfEntry() throws -> [ConntrackEntry] {
        try ConntrackMessageDecoder.decodeDump(try Fixture.bytes("captured/conntrack-dump.bin"))
            + ConntrackTextParser.parse(try Fixture.bytes("handmade/conntrack-zones-gre.txt"), source: "gre").entries
            + ConntrackTextParser.parse(try Fixture.bytes("handmade/conntrack-every-state.txt"), source: "states").entries
    }

    @Test(arguments: [RecordStream.Layout.lines, .array(head: ConntrackRecord.documentHead)])
    func conntrackEntriesReadBackAsWritten(layout: RecordStream.Layout) throws {
        var entries = try everyKindOfEntry()
        entries[0].labels = [0, 63, 127]
        entries[0].ageSeconds = 12
        let report = ConntrackReadReport(source: .netlink, matched: entries.count, passes: 1, consistent: true)
        let bytes = try stream(layout, { stream in
            for entry in entries { try stream.append(bound: ConntrackRecord.entryBound) { ConntrackRecord.writeJSON(entry, to: &$0) } }
        }, tail: { ConntrackRecord.appendJSONTrailer(namespace: "ns", report: report, notices: ["n"], to: &$0) })
        let read = try PastedInput.conntrack(bytes, source: "listing")
        #expect(read.format == .ctdoctorJSON)
        #expect(read.entries.count == entries.count)
        for (original, copy) in zip(entries, read.entries) { #expect(copy == original) }
        if case .array = layout {
            let document = JSONField(node: try JSONReader.parse(bytes))
            #expect(try document["count"].integer() == entries.count)
            #expect(try document["schema"].string() == ConntrackRecord.schema)
            #expect(try document["source"].string() == "netlink" && document["consistent"].bool() == true)
        }
    }

    @Test(arguments: [RecordStream.Layout.lines, .array(head: SocketRecord.documentHead)])
    func socketsReadBackAsWritten(layout: RecordStream.Layout) throws {
        let listing = try PastedInput.sockets(try Fixture.bytes("captured/ss-tanpoei.txt"), source: "ss")
        var sockets = try SockDiagCodec.decodeDump(try Fixture.bytes("captured/sockdiag-dump.bin")) + listing.sockets
        sockets[0].boundDevice = BoundDevice(index: 7, name: "eth\u{1B}0\"")
        sockets[0].v6Only = false
        let owners = listing.owners
        let bytes = try stream(layout, { stream in
            for socket in sockets {
                let held = socket.inode == 0 ? nil : owners[socket.inode]
                try stream.append(bound: SocketRecord.bound(socket, owners: held)) { SocketRecord.writeJSON(socket, owners: held, to: &$0) }
            }
        }, tail: {
            SocketRecord.appendMetadata(count: sockets.count, namespace: "ns", source: .sockDiag, notices: [], prefix: "],\"count\":", to: &$0)
        })
        let read = try PastedInput.sockets(bytes, source: "listing")
        #expect(read.format == .ctdoctorJSON)
        #expect(read.sockets == sockets)
        #expect(read.owners == owners.filter { inode, _ in sockets.contains { $0.inode == inode } })
    }

    static let socketSources: [SocketSource] = [.sockDiag, .procFile(reason: "sock_diag: EPERM")]
        + SocketFileFormat.allCases.map { .file(format: $0, path: "copy \"1\".txt", hasTCPInfo: $0 == .ssOutput) }
    static let conntrackSources: [ConntrackProvenance] = [
        .lookups(count: 0), .lookups(count: 3), .dump(.netlink), .dump(.procFile(reason: "netlink: EPERM")), .unreadable,
    ] + ConntrackFileFormat.allCases.map { .file(format: $0, path: "ct.txt") }

    @Test func snapshotsKeepWhereEachTableCameFrom() throws {
        for (sockets, conntrack) in zip(Self.socketSources + Self.socketSources.prefix(4), Self.conntrackSources) {
            let input = DiagnosisInput(namespace: "n", sockets: [], socketSource: sockets, conntrack: [], conntrackSource: conntrack)
            let copy = try SnapshotFormat.decode(SnapshotFormat.encode(Snapshot(input: input, capturedAt: 1, version: "v")), source: "s").input
            #expect(copy.socketSource == sockets)
            #expect(copy.conntrackSource == conntrack)
            #expect(copy.conntrackReadable == (conntrack != .unreadable))
        }
    }

    @Test func snapshotsWrittenBeforeSourcesWereValuesStillRead() throws {
        let input = DiagnosisInput(
            namespace: "n", sockets: [], socketSource: .procFile(reason: "sock_diag: EPERM"), conntrack: [], conntrackSource: .dump(.netlink))
        let text = String(decoding: SnapshotFormat.encode(Snapshot(input: input, capturedAt: 1, version: "v")), as: UTF8.self)
        // The old writer's sentences, in place of the values.
        let old = text.replacing("\"source\":\"proc\",\"reason\":\"sock_diag: EPERM\"", with: "\"source\":\"proc: sock_diag: EPERM\"")
            .replacing("\"source\":\"netlink\"", with: "\"source\":\"netlink dump\"")
        #expect(old != text)
        let copy = try SnapshotFormat.decode(Array(old.utf8), source: "s").input
        #expect(copy.socketSource == .procFile(reason: "sock_diag: EPERM"))
        #expect(copy.conntrackSource == .dump(.netlink))
    }

    @Test func snapshotsKeepTheKernelsCountersAndOlderOnesReadWithout() throws {
        var input = DiagnosisInput(namespace: "n", sockets: [], socketSource: .sockDiag, conntrack: [], conntrackSource: .dump(.netlink))
        input.kernel.conntrackCounters = ConntrackCounterValues([(.insertFailed, 7), (.drop, 9), (.clashResolve, UInt64(UInt32.max) + 5)])
        let bytes = SnapshotFormat.encode(Snapshot(input: input, capturedAt: 1, version: "v"))
        let copy = try SnapshotFormat.decode(bytes, source: "s").input
        #expect(copy.kernel.conntrackCounters == input.kernel.conntrackCounters)
        #expect(copy.kernel.conntrackCounters?[.found] == nil, "a counter not read stays unknown")
        let older = String(decoding: bytes, as: UTF8.self).replacing(#","conntrack_statistics":{"#, with: #","unused":{"#)
        #expect(try SnapshotFormat.decode(Array(older.utf8), source: "s").input.kernel.conntrackCounters == nil)
        let negative = String(decoding: bytes, as: UTF8.self).replacing(#""insert_failed":7"#, with: #""insert_failed":-7"#)
        #expect(throws: (any Error).self) { try SnapshotFormat.decode(Array(negative.utf8), source: "s") }
    }

    @Test func pressureDocumentsCarryTheirDocumentedMembers() throws {
        var accumulator = TablePressureAccumulator(context: PressureContext(liveEndpoints: []))
        accumulator.add(ConntrackEntry(
            family: .ipv4, protocolNumber: IPProtocolName.udp,
            original: ConntrackTuple(source: .v4(1), destination: .v4(2), sourcePort: 5, destinationPort: 53),
            reply: ConntrackTuple(source: .v4(3), destination: .v4(1), sourcePort: 53, destinationPort: 5),
            status: .destinationNAT, timeout: 20))
        let statistics = ConntrackStatistics(
            perCPU: [ConntrackCPUStatistics(cpu: 0, counters: ConntrackCounterValues([(.drop, 2)]))], entries: 1, maximum: 4, source: .netlink)
        let report = PressureReport(
            table: accumulator.summary(), statistics: statistics, delta: StatisticsDelta(from: statistics, to: statistics, seconds: 1),
            count: nil, maximum: nil, buckets: 16, rules: RulesFacts(), notices: ["n"])
        let document = PressureDocument.json(report, namespace: "ns", pod: "shop/web")
        #expect(try keys(document) == [
            "schema", "namespace", "pod", "count", "max", "buckets", "fill", "statistics", "interval", "table", "invalid_drop_rule",
            "reap", "findings", "notices",
        ])
        let field = JSONField(node: try JSONReader.parse(Array(document.text.utf8)))
        #expect(try field["count"].integer(Int.self) == 1 && field["max"].integer(Int.self) == 4, "the kernel's count and limit")
        #expect(try keys(JSONValue.object(try field["table"].object().map { ($0.key, JSONValue.null) })).sorted() == [
            "best_saving", "by_family", "by_state", "destinations", "dnat_targets", "entries", "pods_as_destination", "pods_as_source",
            "savings", "sidecar_redirected", "sources", "stale", "timeouts", "unreplied",
        ])
        #expect(try field["table"]["stale"]["listed"].array().count == 1)
        #expect(try ConntrackStatisticsRecord.read(field["statistics"]["totals"]) == statistics.totals)
        let ids = try field["findings"].array().map { try $0["id"].string() }
        #expect(ids.contains("conntrack-stale-entries") && !ids.contains("conntrack-table-full"), "1 of 4 entries is 25 % full")
    }

    @Test func aSnapshotSourceOfAnotherKindIsRefusedByName() throws {
        let input = DiagnosisInput(namespace: "n", sockets: [], socketSource: .sockDiag, conntrack: [], conntrackSource: .dump(.netlink))
        let text = String(decoding: SnapshotFormat.encode(Snapshot(input: input, capturedAt: 1, version: "v")), as: UTF8.self)
        let edited = text.replacing("\"source\":\"netlink\"", with: "\"source\":\"netlink lookups\"")
        #expect(edited != text)
        #expect(throws: SnapshotError.self) { try SnapshotFormat.decode(Array(edited.utf8), source: "s") }
        do {
            _ = try SnapshotFormat.decode(Array(edited.utf8), source: "s")
        } catch {
            #expect(error.description == "s: conntrack.source: netlink lookups is not lookups, netlink, proc, unreadable or file")
        }
    }

    // MARK: Documents ctdoctor only writes: their keys are README's.

    func keys(_ value: JSONValue) throws -> [String] {
        // Valid JSON as the reader sees it, and its members in the written order.
        _ = try JSONReader.parse(Array(value.text.utf8))
        guard case .object(let members) = value else { return [] }
        return members.map(\.0)
    }

    func troubledPod() -> DiagnosisReport {
        var pod = Pod()
        pod.halfClosed(appPort: 40000, state: nil)
        pod.halfClosed(appPort: 40002, secondsLeft: 20)
        pod.accepted(appPort: 40003, service: Endpoint(IPAddress("10.96.0.25")!, 25), age: 9000)
        return pod.diagnose()
    }

    @Test func diagnosisDocumentsCarryTheirDocumentedMembers() throws {
        let report = troubledPod()
        #expect(try keys(DiagnosisDocument.json(report, failOn: .warning)) == [
            "schema", "namespace", "verdict", "worst_severity", "fail_on", "sidecar", "proxy_idle_timeout", "findings", "leaks",
            "stall_after_seconds", "stalls", "collisions", "kernel", "orphaned_fin_wait2", "sources", "notices",
        ])
        #expect(try keys(DiagnosisDocument.json(report, failOn: nil, parts: [.findings, .leaks])) == [
            "schema", "namespace", "verdict", "worst_severity", "fail_on", "sidecar", "proxy_idle_timeout", "findings", "leaks",
            "orphaned_fin_wait2", "sources", "notices",
        ])
        #expect(try keys(DiagnosisDocument.json(report, failOn: nil, parts: [.findings, .collisions, .kernel])) == [
            "schema", "namespace", "verdict", "worst_severity", "fail_on", "sidecar", "proxy_idle_timeout", "findings",
            "collisions", "kernel", "sources", "notices",
        ])
        let full = JSONField(node: try JSONReader.parse(Array(DiagnosisDocument.json(report, failOn: .warning).text.utf8)))
        #expect(try full["leaks"].array().count == report.leaks.count)
        #expect(try full["sources"]["conntrack"].string() == report.input.conntrackSource.description)
        let kinds = try DiagnosisDocument.ndjson(report, failOn: nil).map { record in
            try JSONField(node: try JSONReader.parse(Array(record.text.utf8)))["kind"].string()
        }
        #expect(kinds == Array(repeating: "finding", count: report.findings.count) + Array(repeating: "leak", count: report.leaks.count)
            + Array(repeating: "stall", count: report.stalls.count) + ["summary"])
    }

    @Test func sweepAndExportDocumentsCountWhatTheirNamespacesHold() throws {
        let report = troubledPod()
        let place = NodePlace(netnsName: nil, podName: "shop/cart", podUID: "u-1", podSource: "config.json", pid: 7, processCount: 2, isHost: false)
        let results: [NamespaceResult] = [
            .diagnosed(NamespaceIdentity(netns: "net:[1]", pod: "shop/cart", place: place), report),
            .diagnosed(NamespaceIdentity(netns: "net:[2]"), report),
            .failed(NamespaceIdentity(netns: "net:[3]"), "gone", reason: .namespaceGone),
        ]
        let sweep = SweepDocument.json(results, failOn: .error, parts: .all, notices: [])
        #expect(try keys(sweep) == ["schema", "fail_on", "namespaces", "summary", "notices"])
        let document = JSONField(node: try JSONReader.parse(Array(sweep.text.utf8)))
        let counts = SweepCounts(report)
        #expect(try document["summary"]["leaked"].integer() == 2 * counts.leaked)
        #expect(try document["summary"]["failed"].integer() == 1)
        let first = try document["namespaces"].array()[0]
        #expect(try first["pod_uid"].string() == "u-1" && first["pid"].integer() == 7 && first["processes"].integer() == 2)
        #expect(try document["namespaces"].array()[2]["error"].string() == "gone")
        let lines = SweepDocument.ndjson(results, failOn: nil, parts: .all, notices: ["x"])
        #expect(lines.count == results.count + 1)
        #expect(try keys(lines[0]) == [
            "kind", "netns", "netns_name", "pod", "pod_uid", "pod_source", "pid", "processes", "host", "error", "sidecar", "verdict",
            "worst_severity", "leaked", "at_risk", "stalled",
        ])
        let export = ExportDocument.json(ExportRun(startedAt: 1, durationSeconds: 2, results: results), failOn: nil)
        #expect(try keys(export) == ["schema", "success", "started_at", "duration_seconds", "namespaces"])
    }

    @Test func reapAndLintDocumentsCarryTheirDocumentedMembers() throws {
        let report = troubledPod()
        let outcomes = report.leaks.map {
            ReapOutcome(decision: ReapDecision(leak: $0, action: .skip, reason: "test"), result: .skipped, detail: "test")
        }
        let reap = ReapDocument.json(outcomes, namespace: "n", dryRun: true, minimumIdleSeconds: 60, notices: [])
        #expect(try keys(reap) == [
            "schema", "namespace", "dry_run", "min_idle_seconds", "candidates", "destroyed", "would_destroy", "skipped", "failed",
            "actions", "notices",
        ])
        let lint = LintReport(findings: [], notices: [], objectCount: 0, files: ["a.yaml"])
        #expect(try keys(LintDocument.json(lint, failOn: .warning)) == [
            "schema", "files", "objects", "worst_severity", "fail_on", "findings", "notices",
        ])
    }

    @Test func leaksAndCollisionsDocumentsNameTheirOwnSchemaAndOnlyTheirMembers() throws {
        let report = troubledPod()
        let leaks = JSONField(node: try JSONReader.parse(Array(DiagnosisDocument.json(report, failOn: nil, parts: [.findings, .leaks]).text.utf8)))
        #expect(try leaks["schema"].string() == DiagnosisDocument.leaksSchema)
        #expect(try leaks["leaks"].array().count == report.leaks.count)
        let collisions = DiagnosisDocument.json(report, failOn: nil, parts: [.findings, .collisions, .kernel])
        #expect(try JSONField(node: try JSONReader.parse(Array(collisions.text.utf8)))["schema"].string() == DiagnosisDocument.collisionsSchema)
        #expect(try !keys(collisions).contains("leaks"))
    }

    @Test func countAnswersCarryTheirDocumentedMembers() throws {
        var conntrack: [UInt8] = []
        ConntrackRecord.appendCountJSON(
            namespace: "pod-a", report: ConntrackReadReport(source: .netlink, matched: 42, passes: 1, consistent: true), notices: ["n"],
            to: &conntrack)
        let counted = try JSONReader.parse(conntrack)
        #expect(try JSONField(node: counted)["count"].integer() == 42)
        guard case .object(let members) = counted else { Issue.record("not an object"); return }
        #expect(Set(members.map(\.0)) == ["schema", "count", "namespace", "source", "consistent", "notices"])
        #expect(String(decoding: conntrack, as: UTF8.self).hasPrefix("{\"schema\":\"\(ConntrackRecord.countSchema)\",\"count\":42,"))
        var sockets: [UInt8] = []
        SocketRecord.appendCountJSON(count: 7, namespace: "pod-a", source: .sockDiag, notices: [], to: &sockets)
        let socketCount = try JSONReader.parse(sockets)
        #expect(try JSONField(node: socketCount)["schema"].string() == SocketRecord.countSchema)
        guard case .object(let socketMembers) = socketCount else { Issue.record("not an object"); return }
        #expect(Set(socketMembers.map(\.0)) == ["schema", "count", "namespace", "source", "notices"])
    }

    @Test func watchRecordsCarryTheirDocumentedMembersAndEveryEventKind() throws {
        let event = WatchEvent(
            kind: .leakEnded, time: 1_700_000_000.25, proxy: Endpoint(IPAddress("127.0.0.1")!, 15001),
            app: Endpoint(IPAddress("10.66.0.5")!, 41422), originalDestination: Endpoint(IPAddress("10.96.0.10")!, 80), cookie: 77,
            lifetimeSeconds: 3492, detail: "gone \u{1B}[31m")
        let record = WatchRecord.json(event, namespace: "shop/cart")
        #expect(try keys(record) == [
            "schema", "event", "time", "namespace", "pod", "proxy", "app", "original_destination", "cookie", "lifetime_seconds", "overruns",
            "after_seconds", "protocol", "server_first", "counter_steps", "detail",
        ])
        let read = JSONField(node: try JSONReader.parse(Array(record.text.utf8)))
        #expect(try read["event"].string() == "leak-ended" && read["cookie"].integer() == 77 && read["app"].string() == "10.66.0.5:41422")
        #expect(try read["detail"].string() == "gone \u{1B}[31m")
        // README's list of events is the Kind's.
        let readme = String(decoding: try Fixture.repositoryFile("README.md"), as: UTF8.self)
        let section = try #require(readme.range(of: "### `ctdoctor.watch.v1`")).upperBound
        let text = String(readme[section...].prefix(2500))
        for kind in WatchEvent.Kind.allCases { #expect(text.contains("`\(kind.rawValue)`"), "README's watch schema misses \(kind.rawValue)") }
    }

    @Test func labDocumentsWrapTheDiagnosisOfWhatTheLabBuilt() throws {
        let report = troubledPod()
        let lab = LabDocument.json(
            scenario: "half-close", namespace: "ctd-lab", members: [("close_wait_seconds", .integer(60))], flows: [.object([("name", .string("x"))])],
            diagnosis: report, failOn: nil, problems: ["p"])
        #expect(try keys(lab) == ["schema", "scenario", "namespace", "close_wait_seconds", "flows", "diagnosis", "matches", "problems"])
        let read = JSONField(node: try JSONReader.parse(Array(lab.text.utf8)))
        #expect(try read["diagnosis"]["schema"].string() == DiagnosisDocument.schema && read["matches"].bool() == false)
    }
}

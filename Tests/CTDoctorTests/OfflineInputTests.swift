import Conntrack
import Diagnosis
import Formats
import Foundation
import JSON
import KernelIO
import NetCore
import Offline
import Rendering
import Sockets
import TestSupport
import Testing

@Suite("conntrack -o xml")
struct ConntrackXMLTests {
    @Test func readsTheSameTableAsTheTextCapturedBesideIt() throws {
        let xml = try ConntrackXMLParser.parse(try Fixture.bytes("captured/conntrack-L-xml.xml"), source: "xml")
        let text = try ConntrackTextParser.parse(try Fixture.bytes("captured/conntrack-L-extended.txt"), source: "text").entries
        #expect(!xml.isEmpty)
        // Timeouts tick between the two captures; everything else must agree.
        func key(_ entry: ConntrackEntry) -> String {
            var entry = entry
            entry.timeout = nil
            entry.id = nil
            entry.use = nil
            // conntrack's XML leaves ICMP's type, code and id out.
            entry.original.icmp = nil
            entry.reply.icmp = nil
            return FlowKey(entry).text + " \(entry.counters.map { "\($0)" } ?? "-") \(entry.status.names)"
        }
        #expect(Set(xml.map(key)) == Set(text.map(key)))
        #expect(xml.contains { $0.protocolNumber == 1 }, "the ICMP flow is read, without the type, code and id XML does not carry")
        #expect(xml.contains { $0.zone == 7 && $0.mark == 7 })
    }

    @Test func refusesEventsAndTruncationWithTheLine() throws {
        #expect {
            try ConntrackXMLParser.parse(try Fixture.bytes("handmade/conntrack-E-xml.xml"), source: "events.xml")
        } throws: { error in
            "\(error)".contains("conntrack -E") && "\(error)".hasPrefix("events.xml:3:")
        }
        let whole = try Fixture.bytes("captured/conntrack-L-xml.xml")
        #expect(throws: ParseError.self) { try ConntrackXMLParser.parse(Array(whole.prefix(whole.count / 2)), source: "cut") }
        let bad = Array(#"<conntrack><flow><meta direction="original"><layer3 protonum="2"><src>10.0.0.300</src>"#.utf8)
        #expect { try ConntrackXMLParser.parse(bad, source: "bad") } throws: { "\($0)".contains("10.0.0.300") }
    }
}

@Suite("copied tables")
struct PastedInputTests {
    @Test(arguments: [
        ("captured/conntrack-L.txt", "conntrack -L"), ("captured/conntrack-L-id.txt", "conntrack -L"),
        ("captured/conntrack-L-extended.txt", "/proc/net/nf_conntrack or conntrack -o extended"),
        ("captured/proc-nf_conntrack.txt", "/proc/net/nf_conntrack or conntrack -o extended"),
        ("captured/conntrack-L-xml.xml", "conntrack -o xml"),
    ])
    func recognisesEveryConntrackForm(fixture: String, format: String) throws {
        let table = try PastedInput.conntrack(try Fixture.bytes(fixture), source: fixture)
        #expect(table.format.rawValue == format)
        #expect(table.entries.contains { $0.reply.sourcePort == 15001 && $0.tcpState == .closeWait })
    }

    @Test(arguments: [
        ("captured/proc-net-tcp.txt", "/proc/net/tcp"), ("captured/proc-net-tcp6.txt", "/proc/net/tcp"),
        ("captured/ss-tan.txt", "ss output"), ("captured/ss-tanpo.txt", "ss output"), ("captured/ss-naoep.txt", "ss output"),
        ("captured/ss-tanpoei.txt", "ss output"), ("handmade/ss-legacy-users.txt", "ss output"),
    ])
    func recognisesEverySocketForm(fixture: String, format: String) throws {
        let table = try PastedInput.sockets(try Fixture.bytes(fixture), source: fixture)
        #expect(table.format.rawValue == format)
        #expect(table.sockets.contains { $0.state == .finWait2 || $0.state == .listen })
    }

    @Test func aProcCopyWithoutItsHeaderIsStillRecognised() throws {
        let text = try Fixture.text("captured/proc-net-tcp.txt")
        let headless = Array(text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().joined(separator: "\n").utf8)
        let table = try PastedInput.sockets(headless, source: "headless")
        #expect(table.format == .procNetTCP)
        #expect(table.sockets.count == (try ProcNetTCPParser.parse(try Fixture.bytes("captured/proc-net-tcp.txt"), family: nil, source: "x")).count)
    }

    @Test(arguments: [
        ("handmade/conntrack-S.txt", true, "conntrack -S"), ("handmade/proc-net-stat-nf_conntrack.txt", true, "statistics"),
        ("handmade/conntrack-E-xml.xml", true, "conntrack -E"), ("handmade/netstat-tan.txt", false, "netstat"),
        // netstat as the conntrack table, and filtered with grep (no header) either way:
        // its first column reads like conntrack's, so it must be named before that.
        ("handmade/netstat-tan.txt", true, "this is netstat output"), ("handmade/netstat-tan-grep.txt", false, "this is netstat output"),
        ("handmade/netstat-tan-grep.txt", true, "this is netstat output"),
        ("captured/ss-tan.txt", true, "--sockets-file"), ("captured/conntrack-L.txt", false, "--conntrack-file"),
        ("captured/proc-net-tcp.txt", true, "--sockets-file"), ("captured/proc-nf_conntrack.txt", false, "--conntrack-file"),
    ])
    func refusesWhatIsNotTheTableSayingWhatItIs(fixture: String, asConntrack: Bool, message: String) throws {
        let bytes = try Fixture.bytes(fixture)
        #expect {
            if asConntrack { _ = try PastedInput.conntrack(bytes, source: fixture) } else { _ = try PastedInput.sockets(bytes, source: fixture) }
        } throws: { error in
            "\(error)".contains(message) && "\(error)".hasPrefix(fixture) && !"\(error)".contains("\n")
        }
    }

    @Test func readsTCPInfoFromSSIAndSkipsOtherProtocolsWithTheirDetails() throws {
        let table = try PastedInput.sockets(try Fixture.bytes("handmade/ss-naoepi-mixed.txt"), source: "mixed")
        #expect(table.sockets.count == 3 && table.skippedLines == 3, "header, the unix socket and its skmem line")
        let halfClosed = try #require(table.sockets.first { $0.state == .finWait2 })
        #expect(halfClosed.info == TCPInfo(
            lastDataSentMilliseconds: 65000, lastDataReceivedMilliseconds: 64000, lastAckReceivedMilliseconds: 64000,
            roundTripMicroseconds: 500, totalRetransmits: 2, bytesAcked: 121, bytesReceived: 300, bytesSent: 120))
        let silent = try #require(table.sockets.first { $0.state == .established })
        #expect(silent.info?.bytesReceived == 0 && silent.info?.lastDataReceivedMilliseconds == 0, "ss leaves zero fields out")
        #expect(table.owners[5001]?.first?.command == "envoy" && table.ownership == nil)
        #expect(table.sockets.first { $0.state == .listen }?.info == nil, "a socket without an -i line has no tcp_info")
    }

    @Test func tellsHeldSocketsFromOrphansByWhatSSPrinted() throws {
        // -tanpo: users: says who holds a socket; the orphaned FIN_WAIT2 has none.
        let withUsers = try PastedInput.sockets(try Fixture.bytes("captured/ss-tanpo.txt"), source: "tanpo")
        let heldFinWait2 = withUsers.sockets.filter { $0.state == .finWait2 && $0.inode != 0 }
        #expect(!heldFinWait2.isEmpty && heldFinWait2.allSatisfy { $0.inode >= PastedInput.standInInodes })
        #expect(heldFinWait2.allSatisfy { withUsers.owners[$0.inode] != nil })
        #expect(withUsers.ownership?.contains("stand-in") == true)
        // -tan: nothing to go by; every socket counts as held, and the notice says so.
        let plain = try PastedInput.sockets(try Fixture.bytes("captured/ss-tan.txt"), source: "tan")
        #expect(plain.sockets.filter { $0.state != .timeWait }.allSatisfy { $0.inode != 0 })
        #expect(plain.ownership?.contains("cannot be told") == true)
    }

    @Test func copiedTablesDiagnoseLikeTheKernelDumps() throws {
        let conntrack = try PastedInput.conntrack(try Fixture.bytes("captured/conntrack-L-xml.xml"), source: "ct.xml")
        let sockets = try PastedInput.sockets(try Fixture.bytes("captured/ss-tanpoei.txt"), source: "ss.txt")
        let input = PastedInput.input(conntrack: conntrack, conntrackPath: "ct.xml", sockets: sockets, socketsPath: "ss.txt")
        let report = Diagnosis.diagnose(input, options: DiagnosisOptions(sidecar: .istio))
        // The capture holds one half-closed REDIRECTed flow whose entry is alive.
        #expect(report.leaks.count == 1 && report.leaks.first?.classification != .leaked)
        #expect(report.leaks.first?.idleMilliseconds != nil, "ss -i carried tcp_info")
        #expect(report.kernel.outcome == .uncertain)
        #expect(report.notices.contains { $0.contains("unknown") })
    }

    @Test func aCopyWithoutTCPInfoSaysWhichListingLacksIt() throws {
        let conntrack = try PastedInput.conntrack(try Fixture.bytes("captured/conntrack-L-xml.xml"), source: "ct.xml")
        let sockets = try PastedInput.sockets(try Fixture.bytes("captured/ss-tan.txt"), source: "ss.txt")
        let input = PastedInput.input(conntrack: conntrack, conntrackPath: "ct.xml", sockets: sockets, socketsPath: "ss-tan.txt")
        let report = Diagnosis.diagnose(input, options: DiagnosisOptions(sidecar: .istio))
        let finding = try #require(report.findings.first { $0.kind == .noTCPInfo }, "ss -tan carries no idle times")
        #expect(finding.summary == "Socket idle times are unknown: the listing (ss output in ss-tan.txt, without tcp_info) carries no tcp_info")
    }
}

@Suite("snapshots")
struct SnapshotTests {
    func input() throws -> DiagnosisInput {
        let sockets = try PastedInput.sockets(try Fixture.bytes("captured/ss-tanpoei.txt"), source: "ss")
        let conntrack = try ConntrackTextParser.parse(try Fixture.bytes("captured/conntrack-L-id.txt"), source: "ct").entries
        return DiagnosisInput(
            namespace: "pod \"a\"", sockets: sockets.sockets, socketSource: .sockDiag, conntrack: conntrack,
            conntrackSource: .dump(.netlink), owners: sockets.owners,
            sidecarProcess: SidecarProcessFacts(pid: 42, command: "envoy", uptimeSeconds: 12.5, idleTimeoutSetting: "90s"),
            kernel: KernelFacts(
                release: "6.1.0-18-amd64", closeWaitTimeout: 60, ignoreInvalidRST: nil, beLiberal: 0, conntrackCount: 9,
                conntrackMax: 262_144, portRange: 32768...60999, reservedPorts: [40000, 40001]),
            counters: ["TcpActiveOpens": 12, "TcpExtTCPChallengeACK": UInt64.max],
            rules: RulesFacts(invalidDrop: true, source: "nft list ruleset", matchingRule: "ct state invalid drop"),
            notices: ["a notice"])
    }

    @Test func roundTripsEveryFact() throws {
        let original = try input()
        let bytes = SnapshotFormat.encode(Snapshot(input: original, capturedAt: 1_795_400_000.5, version: "0.1.0"))
        for form in [bytes, try gzipCompress(bytes)] {
            let read = try SnapshotFormat.decode(isGzip(form) ? try gzipDecompress(form) : form, source: "s")
            #expect(read.capturedAt == 1_795_400_000.5 && read.version == "0.1.0")
            let copy = read.input
            #expect(copy.namespace == original.namespace)
            #expect(copy.sockets == original.sockets)
            #expect(copy.conntrack == original.conntrack)
            #expect(copy.owners == original.owners.filter { key, _ in original.sockets.contains { $0.inode == key } })
            #expect(copy.kernel == original.kernel && copy.rules == original.rules && copy.counters == original.counters)
            #expect(copy.sidecarProcess == original.sidecarProcess && copy.notices == original.notices)
            #expect(copy.socketSource == original.socketSource && copy.conntrackSource == original.conntrackSource)
        }
    }

    @Test func diagnosisOfTheCopyIsTheDiagnosisOfTheOriginal() throws {
        let original = try input()
        let copy = try SnapshotFormat.decode(SnapshotFormat.encode(Snapshot(input: original, capturedAt: 0, version: "x")), source: "s").input
        for options in [DiagnosisOptions(sidecar: .istio), DiagnosisOptions(stallAfterSeconds: 0.001)] {
            let a = Diagnosis.diagnose(original, options: options)
            let b = Diagnosis.diagnose(copy, options: options)
            #expect(a.findings == b.findings && a.verdict == b.verdict)
            #expect(a.leaks.map(\.classification) == b.leaks.map(\.classification))
        }
    }

    @Test func badSnapshotsAreOneLineNamingTheProblem() throws {
        let bytes = SnapshotFormat.encode(Snapshot(input: try input(), capturedAt: 0, version: "x"))
        func failure(_ data: [UInt8]) -> String {
            do {
                _ = try SnapshotFormat.decode(data, source: "f.json")
                return "accepted"
            } catch { return error.description }
        }
        #expect(failure(Array(bytes.prefix(bytes.count / 2))) == "f.json: not valid JSON: it ends too early (truncated?)")
        #expect(failure(Array(#"{"schema": "ctdoctor.diagnosis.v1"}"#.utf8)).contains("not a ctdoctor snapshot"))
        #expect(failure(Array("garbage".utf8)).hasPrefix("f.json: not valid JSON at line 1: unexpected character"))
        #expect(failure(Array(String(repeating: "[", count: 10_000).utf8)).contains("nested deeper than 64"))
        #expect(failure(Array("{\"schema\": \"ctdoctor.snapshot.v1\",\n\"x\" 1}".utf8)).hasPrefix("f.json: not valid JSON at line 2: expected ':'"))
        let badAddress = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\"127.0.0.1\"", with: "\"127.0.0.999\"")
        #expect(failure(Array(badAddress.utf8)).contains("127.0.0.999"))
        let missing = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\"notices\":", with: "\"remarks\":")
        #expect(failure(Array(missing.utf8)) == "f.json: notices: missing")
        let huge = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\"mark\":0", with: "\"mark\":99999999999")
        #expect(failure(Array(huge.utf8)).contains("99999999999 is not an integer in 0...4294967295"))
        for message in [failure(Array(bytes.prefix(bytes.count / 2))), failure(Array(badAddress.utf8))] {
            #expect(!message.contains("\n"))
        }
        let gzip = try gzipCompress(bytes)
        #expect(throws: (any Error).self) { try gzipDecompress(Array(gzip.prefix(gzip.count - 20))) }
    }
}

/// Tables as people paste them: each fixture wraps a captured table the way a capture
/// does (watch, a prompt with its command, cat -n, comments, notes, CRLF), and must read
/// as the same table, with what was taken out counted.
@Suite("pastes as people capture them")
struct PastedCaptureTests {
    @Test(arguments: [
        ("pasted/busybox-cat-n-proc-tcp.txt", "captured/proc-net-tcp.txt", "1 shell prompt, 17 line-number prefixes"),
        ("pasted/kubectl-ss-notes.txt", "captured/ss-tanpo.txt", "1 shell prompt, 1 comment, 1 note after a row"),
    ])
    func aWrappedSocketTableReadsAsTheTableItWraps(pasted: String, original: String, removed: String) throws {
        let wrapped = try PastedInput.sockets(try Fixture.bytes(pasted), source: pasted)
        let plain = try PastedInput.sockets(try Fixture.bytes(original), source: original)
        #expect(wrapped.sockets == plain.sockets)
        #expect(wrapped.format == plain.format)
        #expect(wrapped.removed.description == removed, "\(wrapped.removed.description)")
        #expect(plain.removed.total == 0, "a plain capture loses nothing")
    }

    @Test func aPromptedCRLFConntrackCopyWithItsSummaryReadsWhole() throws {
        let wrapped = try PastedInput.conntrack(try Fixture.bytes("pasted/prompt-conntrack-crlf.txt"), source: "pasted")
        let plain = try PastedInput.conntrack(try Fixture.bytes("captured/conntrack-L.txt"), source: "plain")
        #expect(wrapped.entries == plain.entries && wrapped.entries.count == 11)
        #expect(wrapped.removed.description == "1 shell prompt, 1 conntrack summary line")
    }

    /// `watch 'ss -tanpo | grep 15001'`: no header, no LISTEN row. The sidecar is
    /// inferred from the sockets on 15001 and envoy's name; never "nothing to diagnose".
    @Test func aGrepFilteredCopyWithoutListenersStillFindsTheSidecar() throws {
        let sockets = try PastedInput.sockets(try Fixture.bytes("pasted/watch-ss-grep.txt"), source: "watch.txt")
        #expect(sockets.removed.description == "1 watch header")
        #expect(!sockets.sockets.contains { $0.state == .listen } && sockets.sockets.contains { $0.state == .finWait2 })
        let conntrack = try PastedInput.conntrack(try Fixture.bytes("captured/conntrack-L.txt"), source: "ct.txt")
        let input = PastedInput.input(conntrack: conntrack, conntrackPath: "ct.txt", sockets: sockets, socketsPath: "watch.txt")
        let report = Diagnosis.diagnose(input)
        let sidecar = try #require(report.sidecar, "\(report.verdict)")
        #expect(sidecar.profile == .istio)
        #expect(sidecar.evidence.contains("no LISTEN row") && sidecar.evidence.contains("envoy") && sidecar.evidence.contains("--sidecar istio|ambient|linkerd"))
        #expect(!report.leaks.isEmpty && report.leaks.allSatisfy { $0.provenance == .listenerNotSeen })
        #expect(input.notices.contains("took out of watch.txt what its capture added: 1 watch header"))
    }

    /// A copy cannot tell the kernel: the kernel section and every finding say
    /// "unknown" alike, never "absent" in one place and "unreadable" in another.
    @Test func aCopyTellsOneStoryAboutWhatItCannotKnow() throws {
        let sockets = try PastedInput.sockets(try Fixture.bytes("captured/ss-tanpoei.txt"), source: "s.txt")
        let conntrack = try PastedInput.conntrack(try Fixture.bytes("captured/conntrack-L.txt"), source: "ct.txt")
        let report = Diagnosis.diagnose(
            PastedInput.input(conntrack: conntrack, conntrackPath: "ct.txt", sockets: sockets, socketsPath: "s.txt"),
            options: DiagnosisOptions(sidecar: .istio))
        let text = DiagnosisRendering.human(report, color: false)
        #expect(text.contains("nf_conntrack_tcp_ignore_invalid_rst unknown"), "\(text)")
        #expect(text.contains("nf_conntrack_tcp_ignore_invalid_rst=unknown"))
        #expect(!text.contains("invalid_rst absent") && !text.contains("unreadable"))
    }

    @Test(arguments: [
        ("Every 2.0s: ss -tan      host: Tue Dec  1 10:00:00 2026", true),
        ("Every 0.5s: conntrack -L", true),
        ("Every day: a note", false),
    ])
    func recognisesWatchHeaders(line: String, expected: Bool) {
        #expect(PasteCleaner.isWatchHeader(Substring(line)) == expected)
    }

    @Test(arguments: [
        ("root@node-1:~# ss -tanpo", true), ("$ conntrack -L", true), ("bash-5.1# cat /proc/net/tcp", true),
        ("/ # ss -tan", true), ("user@host:~$ sudo conntrack -L -p tcp", true), ("PS C:\\> kubectl exec pod -- ss", true),
        ("ESTAB 0 0 127.0.0.1:15001 10.1.0.5:44514", false), ("tcp 6 431999 ESTABLISHED src=1.2.3.4", false),
        ("# a note about the pod", false),
    ])
    func recognisesPromptsByTheCommandTyped(line: String, expected: Bool) {
        #expect(PasteCleaner.isPrompt(line) == expected)
    }
}

@Suite("streamed JSON arrays")
struct StreamedJSONTests {
    let text = #"{"a": {"items": [{"n": 1}, {"n": 2}, 3], "other": [4]}, "b": {"items": [5]}, "c": [6]}"#

    @Test func streamedArraysArriveInOrderAndTheRestIsKept() throws {
        var seen: [(String, JSONNode?)] = []
        let node = try JSONReader.parse(Array(text.utf8), streaming: ["a.items", "c"]) { seen.append(($0.path.text, $0.node)) }
        #expect(seen.map(\.0) == ["a.items[0]", "a.items[1]", "a.items[2]", "c[0]"])
        #expect(seen[1].1 == .object(["n": .number("2")]) && seen[3].1 == .number("6"))
        let document = JSONField(node: node)
        #expect(try document["a"]["items"].array().isEmpty && document["a"]["other"].array().count == 1)
        // Only the paths asked for stream: b.items stays in the tree.
        #expect(try document["b"]["items"].array().count == 1 && document["c"].array().isEmpty)
        // Without streaming the same text parses to the full tree.
        let full = JSONField(node: try JSONReader.parse(Array(text.utf8)))
        #expect(try full["a"]["items"].array().count == 3)
    }

    @Test func aStreamedTableGivenTwiceIsRefused() {
        let twice = Array(#"{"sockets": {"items": [1]}, "sockets": {"items": [2]}}"#.utf8)
        #expect(throws: JSONError.self) { _ = try JSONReader.parse(twice, streaming: ["sockets.items"]) { _ in } }
        // A key holding a dot is not the path it spells.
        var seen = 0
        _ = try? JSONReader.parse(Array(#"{"sockets.items": [1, 2]}"#.utf8), streaming: ["sockets.items"]) { _ in seen += 1 }
        #expect(seen == 0)
    }

    @Test func aBrokenStreamedRecordNamesItsPlaceAfterTheSchemaCheck() throws {
        let notSnapshot = Array(#"{"schema": "other.v1", "sockets": {"items": [{"state": 1}]}}"#.utf8)
        #expect { try SnapshotFormat.decode(notSnapshot, source: "x") } throws: { error in
            "\(error)".contains("not a ctdoctor snapshot")
        }
    }
}

import Conntrack
import Foundation
import KernelIO
import Live
import NetCore
import Sockets
import TestSupport
import Testing

/// ctdoctor's listings against conntrack-tools and ss, run in the same namespace on
/// real connections. Needs root; with CI=true these never skip.
@Suite("Agreement with conntrack -L and ss", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class AgreementTests {
    let scenario: RedirectScenario

    init() throws {
        scenario = try RedirectScenario(tag: "agree", accounting: true)
    }

    deinit { scenario.tearDown() }

    var lab: TestNamespace { scenario.lab }

    func conntrackTool() throws -> [ConntrackEntry] {
        let text = try lab.exec(["conntrack", "-L", "-o", "id"])
        return try ConntrackTextParser.parse(Array(text.utf8), source: "conntrack -L").entries
    }

    func ssTool() throws -> [SocketKey] {
        let text = try lab.exec(["ss", "-tan"])
        return try SSOutputParser.parse(Array(text.utf8), source: "ss -tan").lines.map { SocketKey($0.socket) }.sorted()
    }

    @Test func conntrackListingAgreesEntryForEntry() throws {
        let clock = ContinuousClock()
        let readStart = clock.now
        let (ours, report) = try ConntrackReader(namespace: lab.namespace).entries()
        let theirs = try conntrackTool()
        // Timeouts tick in whole seconds between the two reads; a busy machine spreads them.
        let spread = Int((clock.now - readStart).components.seconds) + 2
        #expect(report.source == .netlink && report.consistent)
        #expect(ours.count == theirs.count && ours.count == 3)
        let byID = Dictionary(uniqueKeysWithValues: ours.map { ($0.id!, $0) })
        for entry in theirs {
            let id = try #require(entry.id)
            let mine = try #require(byID[id])
            #expect(FlowKey(mine) == FlowKey(entry))
            #expect(mine.counters == entry.counters)
            #expect(abs(Int(mine.timeout ?? 0) - Int(entry.timeout ?? 0)) <= spread)
        }
        // The states the scenario put there, each on the right flow.
        func entry(appPort: UInt16) -> ConntrackEntry? { ours.first { $0.original.sourcePort == appPort } }
        #expect(entry(appPort: scenario.establishedPort)?.tcpState == .established)
        #expect(entry(appPort: scenario.establishedPort)?.status.contains(.destinationNAT) == true)
        #expect(entry(appPort: scenario.establishedPort)?.reply.sourcePort == 15001)
        #expect(entry(appPort: scenario.halfClosedPort)?.tcpState == .closeWait)
        #expect(entry(appPort: scenario.timeWaitPort)?.tcpState == .timeWait)
        #expect(entry(appPort: scenario.timeWaitPort)?.status.contains(.destinationNAT) == false)
    }

    @Test func socketListingAgreesWithSS() throws {
        let reader = SocketReader(namespace: lab.namespace)
        let (diag, source) = try reader.sockets()
        #expect(source == .sockDiag)
        #expect(diag.map(SocketKey.init).sorted() == (try ssTool()))
        // The /proc path gives the same answer.
        let proc = try reader.procSockets(states: .all)
        #expect(proc.map(SocketKey.init).sorted() == diag.map(SocketKey.init).sorted())

        let states = Dictionary(grouping: diag, by: \.state)
        #expect(states[.finWait2]?.first?.local.port == 15001, "the proxy side of the half-close")
        #expect(states[.closeWait]?.first?.local.port == scenario.halfClosedPort)
        #expect(states[.timeWait]?.first?.local.port == scenario.timeWaitPort)
        #expect(states[.listen]?.count == 2)
        let established = try #require(diag.first { $0.state == .established && $0.local.port == 15001 })
        #expect(established.info?.bytesReceived == 4 && established.info?.bytesAcked == 5)
    }

    @Test func cliJSONAgreesWithTheTools() throws {
        let conntrack = try lab.run([Binary.ctdoctor, "conntrack", "--format", "json"])
        #expect(conntrack.status == 0, "\(conntrack.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(conntrack.standardOutput.utf8)) as? [String: Any])
        #expect(document["schema"] as? String == "ctdoctor.conntrack.v1")
        #expect(document["source"] as? String == "netlink")
        let entries = try #require(document["entries"] as? [[String: Any]])
        let ids = Set(entries.compactMap { $0["id"] as? Int })
        #expect(ids == Set(try conntrackTool().compactMap { $0.id.map(Int.init) }))
        #expect(document["count"] as? Int == entries.count)

        let sockets = try lab.run([Binary.ctdoctor, "sockets", "--format", "ndjson"])
        #expect(sockets.status == 0)
        let keys = try sockets.standardOutput.split(separator: "\n").map { line -> String in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let local = try #require(object["local"] as? [String: Any])
            let peer = try #require(object["peer"] as? [String: Any])
            return "\(object["state"]!) \(local["address"]!):\(local["port"]!) \(peer["address"]!):\(peer["port"]!)"
        }.sorted()
        let expected = try ssTool().map { "\($0.state.name) \($0.local.address):\($0.local.port) \($0.remote.address):\($0.remote.port)" }.sorted()
        #expect(keys == expected)
    }

    @Test func filtersSelectTheSidecarFlows() throws {
        let captured = try lab.run([Binary.ctdoctor, "conntrack", "--reply-src-port", "15001", "--count"])
        #expect(captured.standardOutput == "2\n")
        let halfClosed = try lab.run([Binary.ctdoctor, "conntrack", "--state", "CLOSE_WAIT", "--dnat-only", "--format", "ndjson"])
        #expect(halfClosed.standardOutput.split(separator: "\n").count == 1)
        let finWait = try lab.run([Binary.ctdoctor, "sockets", "--state", "fin-wait-2", "--port", "15001", "--processes"])
        #expect(finWait.status == 0)
        let lines = finWait.standardOutput.split(separator: "\n")
        #expect(lines.count == 2 && lines[1].hasPrefix("FIN_WAIT2"))
        #expect(lines[1].contains("users:((\"ctdoctorPackage"), "the test process holds the socket: \(lines[1])")
    }

    @Test func netnsAcceptsANameAPathAndAPID() throws {
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        holder.arguments = ["netns", "exec", lab.name, "sleep", "30"]
        try holder.run()
        defer { holder.terminate() }
        try waitUntil { (try? String(contentsOfFile: "/proc/\(holder.processIdentifier)/comm", encoding: .utf8)) == "sleep\n" }
        let byName = try Shell.check([Binary.ctdoctor, "conntrack", "--netns", lab.name, "--count"])
        let byPath = try Shell.check([Binary.ctdoctor, "conntrack", "--netns", "/var/run/netns/\(lab.name)", "--count"])
        let byPID = try Shell.check([Binary.ctdoctor, "conntrack", "--netns", "\(holder.processIdentifier)", "--count"])
        #expect(byName == "3\n" && byPath == byName && byPID == byName)
        let own = try Shell.check([Binary.ctdoctor, "sockets", "--netns", "\(holder.processIdentifier)", "--state", "LISTEN", "--count"])
        #expect(own == "2\n")
    }
}

import Foundation
import Lab
import TestSupport
import Testing

/// `leaks --reap` on the half-close lab: only the leaked proxy socket goes, the others
/// stay and keep passing data.
@Suite("leaks --reap", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class ReapTests {
    let lab: HalfCloseLab

    init() throws {
        lab = try HalfCloseLab(name: TestNamespace.uniqueName("reap"), closeWaitSeconds: 2, say: { _ in })
        try lab.build()
    }

    deinit { lab.tearDown() }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    var leakedPort: Int { Int(lab.flows.first { $0.expected == .leaked }!.appPort) }

    /// The proxy's FIN_WAIT2 sockets by peer port, as ss sees them.
    func finWait2PeerPorts() throws -> Set<Int> {
        let listing = try Shell.check(["ip", "netns", "exec", lab.lab.name, "ss", "-Htn", "state", "fin-wait-2", "sport", "= :15001"])
        return Set(listing.split(separator: "\n").compactMap { line in
            line.split(separator: " ", omittingEmptySubsequences: true).last.flatMap { Int($0.split(separator: ":").last ?? "") }
        })
    }

    @Test func aDryRunDestroysNothingAndSaysWhatItWould() throws {
        let result = try Shell.run([Binary.ctdoctor, "leaks", "--netns", lab.lab.name, "--reap", "--min-idle", "1s", "--format", "json"])
        #expect(result.status == 1, "a leak remains: \(result.standardError)")
        let document = try json(result.standardOutput)
        #expect(document["schema"] as? String == "ctdoctor.reap.v1" && document["dry_run"] as? Bool == true)
        let actions = try #require(document["actions"] as? [[String: Any]])
        let would = actions.filter { $0["result"] as? String == "would-destroy" }
        #expect(DiagnosisJSON.peerPort(ofLeak: would.first?["leak"]) == leakedPort)
        #expect(result.standardError.contains("reap: would-destroy 127.0.0.1:15001 <-> 10.66.0.5:\(leakedPort)"), "every action is logged")
        #expect(try finWait2PeerPorts().contains(leakedPort), "still there")
    }

    @Test func theLeakIsReapedAndTheHealthyConnectionsKeepPassingData() throws {
        let before = try finWait2PeerPorts()
        #expect(before.contains(leakedPort))
        let result = try Shell.run([Binary.ctdoctor, "leaks", "--netns", lab.lab.name, "--reap", "--yes", "--min-idle", "1s", "--format", "json"])
        let document = try json(result.standardOutput)
        let actions = try #require(document["actions"] as? [[String: Any]])
        let destroyed = actions.filter { $0["result"] as? String == "destroyed" }.compactMap { DiagnosisJSON.peerPort(ofLeak: $0["leak"]) }
        #expect(destroyed.contains(leakedPort), "\(result.standardError)")
        #expect(result.standardError.contains("reap: destroyed 127.0.0.1:15001 <-> 10.66.0.5:\(leakedPort)"))
        let after = try finWait2PeerPorts()
        #expect(!after.contains(leakedPort), "the leaked socket is gone")
        // Only what it destroyed is gone: the healthy half-close (entry extended) and
        // the fresh one (at risk, not leaked) remain.
        #expect(before.subtracting(after) == Set(destroyed))
        let healthyPort = Int(try #require(lab.flows.first { $0.expected == .healthy }).appPort)
        #expect(after.contains(healthyPort))
        let freshPort = Int(try #require(lab.flows.first { $0.expected == .atRisk }).appPort)
        #expect(after.contains(freshPort) && destroyed == [leakedPort], "only the leak is destroyed: \(destroyed)")
        #expect(try lab.establishedConnectionsPassData(), "ESTABLISHED connections through the proxy still echo")
        if destroyed.count == actions.count { #expect(result.status == 0) }
    }

    @Test func socketsUnderTheMinimumIdleAreSkippedAndOthersRefused() throws {
        let result = try Shell.run([Binary.ctdoctor, "leaks", "--netns", lab.lab.name, "--reap", "--yes", "--min-idle", "1h", "--format", "json"])
        #expect(result.status == 1)
        let actions = try #require(try json(result.standardOutput)["actions"] as? [[String: Any]])
        #expect(!actions.isEmpty && actions.allSatisfy { $0["result"] as? String == "skipped" && ($0["detail"] as? String)?.contains("under the minimum") == true })
        #expect(try finWait2PeerPorts().contains(leakedPort))
        let candidates = actions.compactMap { ($0["leak"] as? [String: Any])?["class"] as? String }
        #expect(candidates.allSatisfy { $0 == "leaked" }, "only leaked sockets are ever candidates")
    }

    @Test func reapRefusesSweepsOfflineInputAndAYesWithoutIt() throws {
        let sweep = try Shell.run([Binary.ctdoctor, "leaks", "--all-netns", "--reap"])
        #expect(sweep.status == 2 && sweep.standardError.contains("one namespace at a time"))
        let yes = try Shell.run([Binary.ctdoctor, "leaks", "--yes"])
        #expect(yes.status == 2 && yes.standardError.contains("--yes confirms --reap"))
    }
}

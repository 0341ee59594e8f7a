import Diagnosis
import Foundation
import KernelIO
import Lab
import Live
import TestSupport
import Testing

/// diagnose against the lab: real proxy sockets, real conntrack entries expiring.
@Suite("diagnose on the half-close lab", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class DiagnoseLabTests {
    let lab: HalfCloseLab

    init() throws {
        lab = try HalfCloseLab(name: TestNamespace.uniqueName("diaglab"), closeWaitSeconds: 2, say: { _ in })
        try lab.build()
    }

    deinit { lab.tearDown() }

    var leakedPort: UInt16 { lab.flows.first { $0.expected == .leaked }!.appPort }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func findsExactlyTheLeakedSocketsAndNothingElse() throws {
        let report = try LiveCollector.collectAndDiagnose(lab.lab.namespace, options: DiagnosisOptions())
        #expect(lab.check(report).isEmpty, "\(lab.check(report))")
        #expect(report.sidecar?.profile == .istio)
        #expect(report.leaks.filter { $0.classification == .leaked }.map(\.heldPort.port) == [leakedPort])
        #expect(report.collisions.sources.first?.poisoned.map(\.port) == [leakedPort])
        #expect(report.kernel.outcome == .recovers, "this machine runs 6.18")
        #expect(report.input.conntrackSource.name == "lookups")
        let leaked = try #require(report.leaks.first { $0.classification == .leaked })
        #expect(leaked.owner?.pid == getpid() && leaked.ownerInferred, "the capture listener's owner: the lab's proxy")
        #expect(leaked.idleMilliseconds.map { $0 >= 2000 } == true)
    }

    @Test func diagnoseJSONListsTheLeakItsPoisonedPortAndTheVerdictAndExitsOne() throws {
        let result = try Shell.run([Binary.ctdoctor, "diagnose", "--netns", lab.lab.name, "--format", "json"])
        #expect(result.status == 1, "\(result.standardError)")
        let document = try json(result.standardOutput)
        #expect(document["schema"] as? String == "ctdoctor.diagnosis.v1")
        let leaks = try #require(document["leaks"] as? [[String: Any]])
        let leaked = leaks.filter { $0["class"] as? String == "leaked" }
        #expect(leaked.count == 1)
        let peer = (leaked.first?["socket"] as? [String: Any])?["peer"] as? [String: Any]
        #expect(peer?["port"] as? Int == Int(leakedPort) && peer?["address"] as? String == "10.66.0.5")
        let sources = try #require((document["collisions"] as? [String: Any])?["sources"] as? [[String: Any]])
        let poisoned = (sources.first?["poisoned_ports"] as? [[String: Any]])?.compactMap { $0["port"] as? Int }
        #expect(poisoned == [Int(leakedPort)])
        let kernel = try #require(document["kernel"] as? [String: Any])
        #expect(kernel["collision_outcome"] as? String == "recovers" && kernel["challenge_ack_fix"] as? String == "present")
        #expect((kernel["sysctls"] as? [String: Any])?["nf_conntrack_tcp_timeout_close_wait"] as? Int == 2)
        let findings = try #require(document["findings"] as? [[String: Any]])
        #expect(findings.first?["id"] as? String == "leaked-sockets" && findings.first?["severity"] as? String == "error")
    }

    @Test func exitStatusFollowsFailOn() throws {
        let never = try Shell.run([Binary.ctdoctor, "diagnose", "--netns", lab.lab.name, "--fail-on", "never"])
        #expect(never.status == 0 && never.standardOutput.hasPrefix("VERDICT"))
        let errors = try Shell.run([Binary.ctdoctor, "collisions", "--netns", lab.lab.name, "--fail-on", "error", "--format", "json"])
        #expect(errors.status == 0, "collision findings here are warnings at most")
        #expect(try json(errors.standardOutput)["schema"] as? String == "ctdoctor.collisions.v1")
        let leaks = try Shell.run([Binary.ctdoctor, "leaks", "--netns", lab.lab.name, "--format", "ndjson"])
        #expect(leaks.status == 1)
        let kinds = try leaks.standardOutput.split(separator: "\n").map { try json(String($0))["kind"] as? String }
        #expect(kinds.filter { $0 == "leak" }.count == 3 && kinds.last == "summary")
    }
}

@Suite("collisions in the lab", .enabled(if: Privileges.shouldRunPrivilegedTests))
struct CollisionLabTests {
    @Test func onAnOldKernelTheCollisionIsSeenLiveAndTheConnectTimesOut() throws {
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("collide-old"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        let namespace = lab.lab.namespace
        let attempt = try lab.collide(emulateOldKernel: true, timeoutSeconds: 3) {
            try LiveCollector.collectAndDiagnose(namespace, options: DiagnosisOptions())
        }
        #expect(!attempt.connected && attempt.seconds >= 2.9)
        let during = try #require(attempt.duringAttempt)
        #expect(during.collisions.liveCollisions.map(\.heldPort.port) == [attempt.port])
        #expect(during.findings.first?.id == "live-collision" || during.findings.contains { $0.id == "live-collision" })
        #expect((attempt.counterDeltas["TcpExtTCPChallengeACK"] ?? 0) >= 1)
        #expect((attempt.counterDeltas["TcpExtTCPSynRetrans"] ?? 0) >= 1)
    }

    @Test func onThisKernelTheCollisionRecoversAndEndsTheLeak() throws {
        let lab = try HalfCloseLab(name: TestNamespace.uniqueName("collide-new"), closeWaitSeconds: 2, say: { _ in })
        defer { lab.tearDown() }
        let namespace = lab.lab.namespace
        let attempt = try lab.collide(emulateOldKernel: false, timeoutSeconds: 5) {
            try LiveCollector.collectAndDiagnose(namespace, options: DiagnosisOptions())
        }
        // Through on the first SYN retransmit (1 s), not the second (3 s).
        #expect(attempt.connected && attempt.seconds < 3)
        #expect((attempt.counterDeltas["TcpExtTCPChallengeACK"] ?? 0) >= 1)
        let after = try LiveCollector.collectAndDiagnose(namespace, options: DiagnosisOptions())
        #expect(after.leaks.isEmpty, "the app's RST reset the leaked socket")
    }
}

@Suite("lab and diagnose commands", .enabled(if: Privileges.shouldRunPrivilegedTests))
struct LabCommandTests {
    @Test func theLabChecksItselfAndReadsTheIdleTimeoutFromTheProxysEnvironment() throws {
        var environment = ProcessInfo.processInfo.environment
        environment["ISTIO_META_IDLE_TIMEOUT"] = "90s"
        let result = try Shell.run([Binary.ctdoctor, "lab", "half-close", "--close-wait", "2", "--format", "json"], environment: environment)
        #expect(result.status == 0, "\(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(document["matches"] as? Bool == true)
        // README's ctdoctor.lab.v1 members, and the half-close scenario's own.
        #expect(Set(document.keys) == [
            "schema", "scenario", "namespace", "close_wait_seconds", "collision", "flows", "diagnosis", "matches", "problems",
        ])
        #expect(document["schema"] as? String == "ctdoctor.lab.v1" && document["close_wait_seconds"] as? Int == 2)
        let diagnosis = try #require(document["diagnosis"] as? [String: Any])
        let idle = try #require(diagnosis["proxy_idle_timeout"] as? [String: Any])
        #expect(idle["seconds"] as? Double == 90 || idle["seconds"] as? Int == 90)
        #expect((idle["source"] as? String)?.contains("ISTIO_META_IDLE_TIMEOUT=90s") == true)
        let name = try #require(document["namespace"] as? String)
        #expect(!(try Shell.check(["ip", "netns", "list"])).contains(name), "the lab removed its namespace")
    }

    /// Ambient's shape: the lab's own process (outside the namespace, as ztunnel is)
    /// holds 15001, 15006 and 15008; the lab checks the mesh and the foreign namespace.
    @Test func theAmbientLabIsDiagnosedAsAmbient() throws {
        let result = try Shell.run([Binary.ctdoctor, "lab", "ambient", "--close-wait", "2", "--format", "json"])
        #expect(result.status == 0, "\(result.standardError)\n\(result.standardOutput.prefix(2000))")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(document["matches"] as? Bool == true, "\(document["problems"] ?? "")")
        let diagnosis = try #require(document["diagnosis"] as? [String: Any])
        let sidecar = try #require(diagnosis["sidecar"] as? [String: Any])
        #expect(sidecar["mesh"] as? String == "ambient")
        #expect((sidecar["evidence"] as? String)?.contains("from another network namespace (net:[") == true)
        #expect(DiagnosisJSON.peerPorts(in: diagnosis).count == 1, "the one late close leaked")
    }

    /// Inbound, for real: a leak on 15006, a clash NAT resolves, and a connect the funnel
    /// sends onto the leaked socket, seen while in flight; with the old kernel emulated
    /// the connect times out, on this one it recovers.
    @Test(arguments: [false, true])
    func theInboundCollisionLabSeesTheCollisionAndTheClash(emulateOldKernel: Bool) throws {
        let result = try Shell.run(
            [Binary.ctdoctor, "lab", "inbound-collision", "--close-wait", "2", "--connect-timeout", "3", "--format", "json"]
                + (emulateOldKernel ? ["--emulate-old-kernel"] : []))
        #expect(result.status == 0, "\(result.standardError)\n\(result.standardOutput.prefix(1500))")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(document["matches"] as? Bool == true, "\(document["problems"] ?? "")")
        #expect((document["moved_port"] as? Int).map { $0 != 40010 } == true)
        let collision = try #require(document["collision"] as? [String: Any])
        #expect(collision["connected"] as? Bool == !emulateOldKernel, "\(collision["error"] ?? "")")
        let name = try #require(document["namespace"] as? String)
        let pid = try #require(name.split(separator: "-").last)
        let left = try Shell.check(["ip", "netns", "list"])
        #expect(!left.contains(name) && !left.contains("ctd-lab-inbound-client-\(pid)"), "both namespaces removed")
    }

    /// A stale lab's PID is read whichever scenario name is a prefix of another's.
    @Test func labNamesGiveTheirOwnersPID() {
        let scenarios = ["half-close", "collision", "collision-rate", "inbound-collision", "inbound-client"]
        #expect(LabNamespace.ownerPID(ofLabNamed: "ctd-lab-collision-rate-42", scenarios: scenarios) == 42)
        #expect(LabNamespace.ownerPID(ofLabNamed: "ctd-lab-inbound-client-7", scenarios: scenarios) == 7)
        #expect(LabNamespace.ownerPID(ofLabNamed: "ctd-lab-collision-x", scenarios: scenarios) == nil)
    }

    /// A lab killed with SIGKILL never tears down: the next lab removes namespaces whose
    /// ctdoctor is gone (a PID that no longer exists, or that another program holds now),
    /// and leaves every other namespace alone.
    @Test func aLabRemovesTheNamespacesOfLabsThatWereKilled() throws {
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/usr/bin/sleep")
        sleeper.arguments = ["60"]
        try sleeper.run()
        defer { kill(sleeper.processIdentifier, SIGKILL); sleeper.waitUntilExit() }
        // Lab-like names that are not a lab's: a test namespace, a PID that is not a number.
        let other = try TestNamespace(tag: "lab-neighbour")
        defer { other.destroy() }
        let nearMiss = "ctd-lab-half-close-1x"
        try Shell.check(["ip", "netns", "add", nearMiss])
        defer { _ = try? Shell.run(["ip", "netns", "del", nearMiss]) }
        // Another test's lab, started meanwhile, removes stale labs too and may take ours
        // before this lab does (then says so itself): each attempt plants the stale
        // namespaces anew (the half-close one under a fresh name, the collision one under
        // the sleeper's pid again), and
        // one attempt that names every removal proves the notice.
        var notedEveryRemoval = false
        for attempt in 0..<3 where !notedEveryRemoval {
            let stale = ["ctd-lab-half-close-\(99_999_999 - attempt)", "ctd-lab-collision-\(sleeper.processIdentifier)"]
            for name in stale { try Shell.check(["ip", "netns", "add", name]) }
            defer { for name in stale { _ = try? Shell.run(["ip", "netns", "del", name]) } }
            let result = try Shell.run([Binary.ctdoctor, "lab", "server-first", "--format", "json"])
            #expect(result.status == 0, "\(result.standardError)")
            let listed = try Shell.check(["ip", "netns", "list"])
            for name in stale { #expect(!listed.contains(name), "\(name) removed") }
            notedEveryRemoval = stale.allSatisfy { result.standardError.contains("removed the stale lab namespace \($0)") }
        }
        #expect(notedEveryRemoval, "the lab names each stale namespace it removes")
        let listed = try Shell.check(["ip", "netns", "list"])
        #expect(listed.contains(other.name) && listed.contains(nearMiss), "namespaces that are not a lab's stay: \(listed)")
    }

    @Test func aNamespaceWithoutASidecarHasNothingToReport() throws {
        let bare = try TestNamespace(tag: "nosidecar")
        defer { bare.destroy() }
        let result = try Shell.run([Binary.ctdoctor, "diagnose", "--netns", bare.name])
        #expect(result.status == 0)
        #expect(result.standardOutput.contains("No sidecar capture listener"))
    }

    @Test func theLabNeedsRootAndSaysSo() throws {
        let result = try Shell.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", Binary.ctdoctor, "lab", "half-close"])
        #expect(result.status == 2 && result.standardError.contains("run it as root"))
    }
}

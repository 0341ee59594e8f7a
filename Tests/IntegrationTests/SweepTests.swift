import Foundation
import Lab
import TestSupport
import Testing

/// `--all-netns` and `--pod` on this machine: the lab's namespace (no process inside,
/// found through /var/run/netns; its proxy is this process, on a thread) and a "pod"
/// whose process carries HOSTNAME and listens on the sidecar's ports.
@Suite("node sweep", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class SweepTests {
    let lab: HalfCloseLab
    let pod: TestNamespace
    /// The pod's process; each test requires that it said it listens, so a holder that
    /// never starts fails them by name instead of looking like a pod without a sidecar.
    let holder: SocketHolder
    let podName = "shop-cart-\(getpid())"

    init() throws {
        lab = try HalfCloseLab(name: TestNamespace.uniqueName("sweep"), closeWaitSeconds: 2, say: { _ in })
        try lab.build()
        pod = try TestNamespace(tag: "sweep-pod")
        // A process inside the pod's namespace, named by HOSTNAME as Kubernetes does, that
        // holds Istio's capture listeners as its sidecar would. Until it listens, the pod
        // has no sidecar to find: wait for its word, not a guess.
        let listen = "import socket,time\nfor p in (15001,15006):\n s=socket.socket();s.bind(('127.0.0.1',p));s.listen();globals()['l%d'%p]=s\nprint('listening',flush=True)\ntime.sleep(300)"
        holder = try SocketHolder(inNamespace: pod.name, environment: ["HOSTNAME=\(podName)"], script: listen, saying: "listening")
    }

    deinit {
        holder.stop()
        pod.destroy()
        lab.tearDown()
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func everyNamespaceIsDiagnosedAndNamed() throws {
        try #require(holder.isReady, "the pod's listener never said it was listening")
        let result = try Shell.run([Binary.ctdoctor, "diagnose", "--all-netns", "--parallel", "3", "--format", "json"])
        #expect(result.status == 1, "the lab's leak is a finding: \(result.standardError)")
        let document = try json(result.standardOutput)
        #expect(document["schema"] as? String == "ctdoctor.sweep.v1")
        let namespaces = try #require(document["namespaces"] as? [[String: Any]])
        let labEntry = try #require(namespaces.first { $0["netns_name"] as? String == lab.lab.name })
        // The lab's unanswered half-close may have aged into a leak too by now: only the
        // late answer is certain.
        let leakedPort = try #require(lab.flows.first { $0.expected == .leaked }).appPort
        #expect(DiagnosisJSON.peerPorts(in: labEntry["diagnosis"]).contains(Int(leakedPort)))
        let podEntry = try #require(namespaces.first { $0["pod"] as? String == podName })
        #expect((podEntry["pod_source"] as? String)?.contains("HOSTNAME") == true)
        // The sidecar's process: found among the processes the node's listing put inside
        // the pod, and, for the lab (no process inside), among the others.
        let podSidecar = (podEntry["diagnosis"] as? [String: Any])?["sidecar"] as? [String: Any]
        #expect((podSidecar?["process"] as? [String: Any])?["pid"] as? Int == Int(holder.pid), "\(podSidecar ?? [:])")
        let labSidecar = (labEntry["diagnosis"] as? [String: Any])?["sidecar"] as? [String: Any]
        #expect((labSidecar?["process"] as? [String: Any])?["pid"] as? Int == Int(getpid()), "\(labSidecar ?? [:])")
        #expect(namespaces.contains { $0["host"] as? Bool == true })
        let summary = try #require(document["summary"] as? [String: Any])
        #expect((summary["leaked"] as? Int ?? 0) >= 1 && (summary["with_sidecar"] as? Int ?? 0) >= 1)
    }

    @Test func aPodIsPickedByName() throws {
        try #require(holder.isReady, "the pod's listener never said it was listening")
        let picked = try Shell.run([Binary.ctdoctor, "diagnose", "--pod", podName, "--format", "json"])
        #expect(picked.status == 0, "\(picked.standardError)")
        #expect(try json(picked.standardOutput)["schema"] as? String == "ctdoctor.diagnosis.v1", "one pod: its own report")
        let byNetns = try Shell.run([Binary.ctdoctor, "leaks", "--pod", lab.lab.name, "--format", "json"])
        #expect(byNetns.status == 1)
        let missing = try Shell.run([Binary.ctdoctor, "diagnose", "--pod", "no-such-pod-\(getpid())"])
        #expect(missing.status == 2 && missing.standardError.contains("no pod named no-such-pod-"))
        #expect(missing.standardError.contains(podName), "names the pods it did find")
    }

    @Test func exportLabelsEachNamespaceWithItsPod() throws {
        try #require(holder.isReady, "the pod's listener never said it was listening")
        let result = try Shell.run([Binary.ctdoctor, "export", "--all-netns"])
        #expect(result.status == 0, "\(result.standardError)")
        let parsed = try ParsedExposition(Array(result.standardOutput.utf8))
        #expect(parsed.value("ctdoctor_namespace_diagnosed", ["pod": podName]) == 1)
        let leaked = parsed.families["ctdoctor_half_closed_sockets"]?.samples.filter { $0.labels["class"] == "leaked" && $0.value == 1 }
        #expect(leaked?.contains { $0.labels["netns"]?.hasPrefix("net:[") == true } == true)
    }

    @Test func sweepOptionsRefuseToMixWithOtherSources() throws {
        let result = try Shell.run([Binary.ctdoctor, "diagnose", "--all-netns", "--netns", lab.lab.name])
        #expect(result.status == 2 && result.standardError.contains("leave out --netns"))
    }
}

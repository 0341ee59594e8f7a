import Foundation
import KernelIO
import Diagnosis
import Live
import NodeSweep
import Testing

@Suite("pod identity")
struct PodIdentityTests {
    @Test(arguments: [
        ("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6f1c2d3e_4a5b_6c7d_8e9f_0a1b2c3d4e5f.slice/cri-containerd-\(String(repeating: "ab", count: 32)).scope\n",
         "6f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f", String(repeating: "ab", count: 32)),
        ("12:memory:/kubepods/burstable/pod6f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f/\(String(repeating: "cd", count: 32))\n",
         "6f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f", String(repeating: "cd", count: 32)),
        ("0::/system.slice/crio-\(String(repeating: "ef", count: 32)).scope\n", nil, String(repeating: "ef", count: 32)),
        ("0::/user.slice/user-0.slice/session-3.scope\n", nil, nil),
    ] as [(String, String?, String?)])
    func readsThePodUIDAndContainerIDFromCgroupPaths(cgroup: String, uid: String?, container: String?) {
        #expect(PodIdentity.podUID(fromCgroup: Array(cgroup.utf8)) == uid)
        #expect(PodIdentity.containerID(fromCgroup: Array(cgroup.utf8)) == container)
    }

    @Test func readsTheRuntimeAnnotationsOfContainerdAndCRIO() {
        let containerd = #"{"ociVersion":"1.1.0","annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.sandbox-name":"cart-7d9","io.kubernetes.cri.sandbox-namespace":"shop"}}"#
        let crio = #"{"annotations":{"io.kubernetes.pod.name":"mysql-0","io.kubernetes.pod.namespace":"db"}}"#
        #expect(PodIdentity.name(fromRuntimeConfig: Array(containerd.utf8)) == "shop/cart-7d9")
        #expect(PodIdentity.name(fromRuntimeConfig: Array(crio.utf8)) == "db/mysql-0")
        #expect(PodIdentity.name(fromRuntimeConfig: Array(#"{"annotations":{}}"#.utf8)) == nil)
        #expect(PodIdentity.name(fromRuntimeConfig: Array("not json".utf8)) == nil)
    }

    @Test func readsHOSTNAMEFromAnEnvironment() {
        #expect(PodIdentity.hostname(fromEnviron: Array("PATH=/bin\0HOSTNAME=cart-7d9\0HOME=/\0".utf8)) == "cart-7d9")
        #expect(PodIdentity.hostname(fromEnviron: Array("PATH=/bin\0".utf8)) == nil)
    }
}

/// The inventory against a /proc tree built in a temporary directory: namespace links
/// are symlinks whose targets read "net:[N]", as the kernel's do.
@Suite("node inventory")
struct NodeInventoryTests {
    @Test func groupsProcessesByNamespaceAndNamesThePods() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-proc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let manager = FileManager.default
        let named = root.appendingPathComponent("netns")
        try manager.createDirectory(at: named, withIntermediateDirectories: true)
        try Data().write(to: named.appendingPathComponent("lab"))
        let labInode = try #require(ProcFS().inode(named.appendingPathComponent("lab").path))
        let container = String(repeating: "ab", count: 32)
        let runtime = root.appendingPathComponent("runtime/\(container)")
        try manager.createDirectory(at: runtime, withIntermediateDirectories: true)
        try Data(#"{"annotations":{"io.kubernetes.cri.sandbox-name":"cart-7d9","io.kubernetes.cri.sandbox-namespace":"shop"}}"#.utf8)
            .write(to: runtime.appendingPathComponent("config.json"))
        func process(_ pid: Int, net: UInt64, cgroup: String = "0::/\n", environ: String = "", hostname: String? = nil) throws {
            let directory = root.appendingPathComponent("proc/\(pid)")
            try manager.createDirectory(at: directory.appendingPathComponent("ns"), withIntermediateDirectories: true)
            try manager.createSymbolicLink(atPath: directory.appendingPathComponent("ns/net").path, withDestinationPath: "net:[\(net)]")
            try Data(cgroup.utf8).write(to: directory.appendingPathComponent("cgroup"))
            try Data(environ.utf8).write(to: directory.appendingPathComponent("environ"))
            if let hostname {
                try manager.createDirectory(at: directory.appendingPathComponent("root/etc"), withIntermediateDirectories: true)
                try Data("\(hostname)\n".utf8).write(to: directory.appendingPathComponent("root/etc/hostname"))
            }
        }
        try process(1, net: 100, hostname: "node-a")
        try process(50, net: 100)
        try process(200, net: 300, cgroup: "0::/kubepods.slice/kubepods-pod6f1c2d3e_4a5b_6c7d_8e9f_0a1b2c3d4e5f.slice/cri-containerd-\(container).scope\n")
        try process(201, net: 300, environ: "HOSTNAME=wrong\0")
        try process(400, net: 500, environ: "HOSTNAME=mysql-0\0")
        try process(600, net: 700, hostname: "legacy-vm")
        try process(800, net: labInode)
        let inventory = NodeInventory(
            procfs: ProcFS(root: root.appendingPathComponent("proc").path), namedDirectory: named.path,
            runtimeConfigs: [root.appendingPathComponent("runtime/{id}/config.json").path])
        let listing = try inventory.namespaces()
        let byInode = Dictionary(uniqueKeysWithValues: listing.namespaces.map { ($0.inode, $0) })
        #expect(listing.namespaces.count == 5)
        #expect(byInode[100]?.isHost == true && byInode[100]?.processCount == 2 && byInode[100]?.pod.name == nil, "the node's hostname is not a pod")
        #expect(byInode[300]?.pod.name == "shop/cart-7d9" && byInode[300]?.pod.uid == "6f1c2d3e-4a5b-6c7d-8e9f-0a1b2c3d4e5f")
        #expect(byInode[500]?.pod.name == "mysql-0" && byInode[500]?.pod.source?.contains("HOSTNAME") == true)
        #expect(byInode[700]?.pod.name == "legacy-vm")
        #expect(byInode[labInode]?.netnsName == "lab" && byInode[labInode]?.namespace.path == named.appendingPathComponent("lab").path)
        #expect(byInode[300]?.namespace.path?.hasSuffix("/proc/200/ns/net") == true, "entered through a process's namespace file")
    }
}

/// Pods come and go while a sweep runs: a namespace whose file no longer holds what the
/// inventory listed went away (its process exited, or `ip netns del` unmounted it and
/// left an empty file for a moment), and is counted as gone, not as the run's failure.
/// A file that never held a namespace stays a failure: it is what the node has.
@Suite("node sweep churn")
struct NodeSweepChurnTests {
    @Test func aNamespaceFileThatNoLongerHoldsWhatWasListedIsChurnNotAFailure() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-churn-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let named = root.appendingPathComponent("netns")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("proc"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: named, withIntermediateDirectories: true)
        try Data().write(to: named.appendingPathComponent("stray"))
        try Data().write(to: named.appendingPathComponent("leaving"))
        let listing = try NodeInventory(procfs: ProcFS(root: root.appendingPathComponent("proc").path), namedDirectory: named.path).namespaces()
        #expect(listing.namespaces.count == 2)
        // What is left once it is unmounted: another file under the same name (made
        // before the old one goes, so that its inode cannot be the old one's).
        try Data().write(to: named.appendingPathComponent("leaving.new"))
        #expect(rename(named.appendingPathComponent("leaving.new").path, named.appendingPathComponent("leaving").path) == 0)

        let (results, vanished) = try NodeDiagnosisSweep.run(listing.namespaces, parallel: 2, options: DiagnosisOptions())
        #expect(vanished == 1)
        #expect(results.map { $0.identity.place?.netnsName } == ["stray"])
        #expect(results.first?.report == nil && results.first?.failure?.contains("not a network namespace") == true, "\(results.first?.failure ?? "")")
    }
}

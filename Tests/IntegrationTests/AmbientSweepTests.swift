import Foundation
import TestSupport
import Testing

/// Ambient as a node sweep sees it: a "ztunnel" process lives in its own pod's namespace
/// (named by HOSTNAME, as Kubernetes sets it) and holds a workload namespace's listeners
/// on 15001, 15006 and 15008, made there through setns(2) the way ztunnel makes them
/// from the namespace file istio-cni hands it. `--pod` must name the mesh ambient and the
/// proxy's pod.
@Suite("ambient in a node sweep", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class AmbientSweepTests {
    let workload: TestNamespace
    let ztunnel: TestNamespace
    let holder = Process()
    let ztunnelPod = "ztunnel-\(getpid())"

    init() throws {
        workload = try TestNamespace(tag: "ambient-pod")
        ztunnel = try TestNamespace(tag: "ambient-zt")
        // Enters the workload's namespace on its own, listens there, returns to its own
        // namespace, says so, and holds the sockets.
        let script = """
            import ctypes, os, socket, sys, time
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            home = os.open("/proc/self/ns/net", os.O_RDONLY)
            target = os.open(sys.argv[1], os.O_RDONLY)
            if libc.setns(target, 0x40000000) != 0: sys.exit("setns: %d" % ctypes.get_errno())
            held = []
            for port in (15001, 15006, 15008):
                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", port)); s.listen(16); held.append(s)
            if libc.setns(home, 0x40000000) != 0: sys.exit("setns back: %d" % ctypes.get_errno())
            print("ready", flush=True)
            time.sleep(300)
            """
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = [
            "ip", "netns", "exec", ztunnel.name, "env", "HOSTNAME=\(ztunnelPod)", "python3", "-c", script, "/var/run/netns/\(workload.name)",
        ]
        let output = Pipe()
        holder.standardOutput = output
        try holder.run()
        let ready = output.fileHandleForReading.availableData
        guard String(decoding: ready, as: UTF8.self).hasPrefix("ready") else {
            kill(holder.processIdentifier, SIGKILL)
            throw HolderFailed(output: String(decoding: ready, as: UTF8.self))
        }
    }

    struct HolderFailed: Error { var output: String }

    deinit {
        // SIGKILL: the test runner's threads block SIGTERM, and children inherit the mask.
        kill(holder.processIdentifier, SIGKILL)
        holder.waitUntilExit()
        workload.destroy()
        ztunnel.destroy()
    }

    @Test func theWorkloadsProxyIsNamedAmbientAndItsPodFound() throws {
        let result = try Shell.run([Binary.ctdoctor, "diagnose", "--pod", workload.name, "--format", "json", "--fail-on", "never"])
        #expect(result.status == 0, "\(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let sidecar = try #require(document["sidecar"] as? [String: Any], "\(result.standardOutput.prefix(600))")
        #expect(sidecar["mesh"] as? String == "ambient", "\(sidecar)")
        #expect((sidecar["proxy_namespace"] as? String)?.hasPrefix("net:[") == true)
        #expect(sidecar["proxy_pod"] as? String == ztunnelPod, "\(sidecar)")
        #expect((sidecar["process"] as? [String: Any])?["command"] as? String == "python3")
        #expect((sidecar["evidence"] as? String)?.hasSuffix("(pod \(ztunnelPod))") == true, "\(sidecar["evidence"] ?? "")")
    }
}

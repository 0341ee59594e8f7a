import Conntrack
import Dispatch
import Foundation
import KernelIO
import Live
import TestSupport
import Testing

/// Entering namespaces must never leak one into another thread.
@Suite("Network namespaces", .enabled(if: Privileges.shouldRunPrivilegedTests))
struct NamespaceTests {
    /// The namespace a path refers to, as the inode stat(2) reports through the link
    /// or bind mount (what `ls -L -i` shows).
    func namespaceInode(_ path: String) throws -> UInt64 {
        var status = stat()
        guard stat(path, &status) == 0 else { throw POSIXError(.ENOENT) }
        return UInt64(status.st_ino)
    }

    @Test func runEntersOnlyItsOwnThread() throws {
        let lab = try TestNamespace(tag: "nsiso")
        defer { lab.destroy() }
        let before = try namespaceInode("/proc/thread-self/ns/net")
        let target = try namespaceInode(lab.namespace.path!)
        let inside = try lab.namespace.run { try namespaceInode("/proc/thread-self/ns/net") }
        #expect(inside == target && inside != before)
        #expect(try namespaceInode("/proc/thread-self/ns/net") == before)

        // Many entries at once, from pool threads: each caller's thread is still in its
        // namespace afterwards. (Scanning every thread of the process would also catch
        // other tests' namespace threads, legitimately inside while they run.)
        let moved = Locked(0)
        DispatchQueue.concurrentPerform(iterations: 32) { _ in
            let mine = try? namespaceInode("/proc/thread-self/ns/net")
            _ = try? lab.namespace.run { try ConntrackReader(namespace: .current).count() }
            if (try? namespaceInode("/proc/thread-self/ns/net")) != mine { moved.update { $0 += 1 } }
        }
        #expect(moved.get() == 0, "\(moved.get()) caller threads were left in another namespace")
    }

    /// With nf_conntrack_timestamp on, the kernel stamps each flow's start: its true
    /// age, which the timeout (reset by every packet) does not tell.
    @Test func aFlowsStartComesFromTheKernelsTimestamp() throws {
        let lab = try TestNamespace(tag: "tstamp")
        defer { lab.destroy() }
        try lab.exec(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_timestamp=1"])
        let before = UInt64(Date().timeIntervalSince1970 * 1e9)
        try lab.exec(["conntrack", "-I", "-p", "tcp", "-s", "10.9.9.9", "-d", "10.8.8.8", "--sport", "1", "--dport", "2",
                      "--state", "ESTABLISHED", "-t", "100"])
        let line = try lab.exec([Binary.ctdoctor, "conntrack", "--format", "ndjson"])
        let record = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let start = try #require((record["start_ns"] as? NSNumber)?.uint64Value, "\(record)")
        #expect(start + 5_000_000_000 >= before && start <= before + 60_000_000_000, "start \(start), test began \(before)")
        #expect(record["labels"] as? [Int] == [])
    }

    @Test func socketsOpenedInsideKeepTheirNamespace() throws {
        let lab = try TestNamespace(tag: "nskeep")
        defer { lab.destroy() }
        try lab.exec(["iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "1", "-j", "ACCEPT"])
        try lab.exec(["conntrack", "-I", "-p", "tcp", "-s", "10.9.9.9", "-d", "10.8.8.8", "--sport", "1", "--dport", "2",
                      "--state", "ESTABLISHED", "-t", "100"])
        // The socket is opened on the namespace thread, then used from this one.
        let report = try ConntrackReader(namespace: lab.namespace).count()
        #expect(report.matched == 1)
    }

    @Test(arguments: [
        ("ctd-no-such-namespace", "no network namespace named ctd-no-such-namespace"),
        ("/nonexistent/ns", "network namespace file /nonexistent/ns does not exist"),
        ("999999999", "no process with PID 999999999"),
        ("/etc/hostname", "/etc/hostname is not a network namespace"),
    ])
    func badNamespacesAreOneLineErrors(spec: String, message: String) throws {
        let result = try Shell.run([Binary.ctdoctor, "conntrack", "--netns", spec])
        #expect(result.status == 2)
        #expect(result.standardOutput.isEmpty)
        #expect(result.standardError.hasPrefix("ctdoctor: error: ") && result.standardError.contains(message), "\(result.standardError)")
        #expect(result.standardError.split(separator: "\n").count == 1)
    }

    @Test func aPIDThatExitedIsAClearError() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/true")
        try process.run()
        process.waitUntilExit()
        let result = try Shell.run([Binary.ctdoctor, "sockets", "--netns", "\(process.processIdentifier)"])
        #expect(result.status == 2 && result.standardError.contains("no process with PID \(process.processIdentifier)"))
    }
}

/// What each listing needs: the conntrack dump needs CAP_NET_ADMIN; without it the
/// /proc file (root-readable) stands in, said aloud; with neither, a one-line error.
@Suite("Privileges", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class PrivilegeTests {
    let scenario: RedirectScenario
    init() throws { scenario = try RedirectScenario(tag: "priv") }
    deinit { scenario.tearDown() }

    @Test func withoutCapNetAdminTheProcFileStandsInAndSaysSo() throws {
        let result = try scenario.lab.run([
            "setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", "--",
            Binary.ctdoctor, "conntrack", "--format", "json",
        ])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardError.contains("warning:") && result.standardError.contains("CAP_NET_ADMIN"))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(document["source"] as? String == "proc")
        #expect((document["notices"] as? [String])?.first?.contains("EPERM") == true)
        #expect((document["entries"] as? [Any])?.count == 3)
    }

    @Test func anUnprivilegedUserGetsAnErrorNamingTheCapability() throws {
        let result = try scenario.lab.run([
            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--",
            Binary.ctdoctor, "conntrack",
        ])
        #expect(result.status == 2)
        #expect(result.standardError.hasPrefix("ctdoctor: error: ") && result.standardError.contains("CAP_NET_ADMIN"))
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
    }

    @Test func diagnoseWithoutCapNetAdminReadsTheProcFileAndSaysSo() throws {
        let result = try scenario.lab.run([
            "setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", "--",
            Binary.ctdoctor, "diagnose", "--format", "json", "--fail-on", "never",
        ])
        #expect(result.status == 0, "\(result.standardError)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect((document["sources"] as? [String: Any])?["conntrack"] as? String == "/proc/net/nf_conntrack")
        let notices = (document["notices"] as? [String]) ?? []
        #expect(notices.contains { $0.contains("CAP_NET_ADMIN") })
        // The half-closed flow is still found and classified from the /proc table.
        let leaks = (document["leaks"] as? [[String: Any]]) ?? []
        #expect(leaks.count == 1 && leaks.first?["class"] as? String == "at-risk")
    }

    @Test func socketsNeedNoPrivilege() throws {
        let result = try scenario.lab.run([
            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--",
            Binary.ctdoctor, "sockets", "--count",
        ])
        #expect(result.status == 0 && result.standardOutput == "7\n", "\(result.standardError)")
    }
}

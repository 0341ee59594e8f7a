import Glibc
import KernelIO
import NetCore

/// A throwaway network namespace shaped like a meshed pod: loopback up, a pod address,
/// a service range answered locally by the lab's upstream, and Istio-style capture:
/// every outbound TCP connection to the service range is REDIRECTed to the proxy's
/// 15001, except the proxy's own, which leave from 127.0.0.6 (as Istio excludes its
/// proxy by uid 1337, and its inbound passthrough by 127.0.0.6).
public final class LabNamespace: @unchecked Sendable {
    public let name: String
    public let namespace: NetworkNamespace
    public static let podAddress = IPAddress.v4(0x0A42_0005)  // 10.66.0.5
    public static let serviceAddress = IPAddress.v4(0x0A60_000A)  // 10.96.0.10
    public static let proxySource = IPAddress.v4(0x7F00_0006)  // 127.0.0.6
    public static let outboundPort: UInt16 = 15001
    /// Where the proxy listens: 15001 (Istio) or 4140 (Linkerd).
    public let proxyPort: UInt16
    private var removed = false

    public struct SetupFailed: Error, CustomStringConvertible {
        public var command: String
        public var output: String
        public var description: String { "lab setup failed at `\(command)`: \(output)" }
    }

    /// Creates the namespace; the close_wait timeout is shortened so a leak forms in
    /// seconds instead of a minute.
    public init(name: String, closeWaitSeconds: Int, proxyPort: UInt16 = outboundPort) throws {
        self.name = name
        self.proxyPort = proxyPort
        try Self.run(["ip", "netns", "add", name])
        namespace = NetworkNamespace(path: "\(NetworkNamespace.namedNamespaceDirectory)/\(name)", name: name)
        do {
            for command in [
                ["ip", "link", "set", "lo", "up"],
                ["ip", "addr", "add", "10.66.0.5/32", "dev", "lo"],
                ["ip", "route", "add", "local", "10.96.0.0/16", "dev", "lo"],
                Self.closeWaitCommand(closeWaitSeconds),
                ["iptables", "-w", "-t", "nat", "-N", "CTD_LAB_OUTPUT"],
                ["iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-j", "CTD_LAB_OUTPUT"],
                ["iptables", "-w", "-t", "nat", "-A", "CTD_LAB_OUTPUT", "-s", "127.0.0.6/32", "-j", "RETURN"],
                ["iptables", "-w", "-t", "nat", "-A", "CTD_LAB_OUTPUT", "-p", "tcp", "-d", "10.96.0.0/16",
                 "-j", "REDIRECT", "--to-ports", "\(proxyPort)"],
            ] {
                try exec(command)
            }
        } catch {
            remove()
            throw error
        }
    }

    /// A namespace with loopback up and nothing else: for labs that shape it themselves.
    public init(bareNamed name: String) throws {
        self.name = name
        proxyPort = Self.outboundPort
        try Self.run(["ip", "netns", "add", name])
        namespace = NetworkNamespace(path: "\(NetworkNamespace.namedNamespaceDirectory)/\(name)", name: name)
        do {
            try exec(["ip", "link", "set", "lo", "up"])
        } catch {
            remove()
            throw error
        }
    }

    deinit { remove() }

    /// The PID in a lab namespace's name (`ctd-lab-SCENARIO-PID`, SCENARIO one of
    /// `scenarios`): the ctdoctor that made it. nil for any other name, however alike.
    public static func ownerPID(ofLabNamed name: String, scenarios: [String]) -> Int32? {
        for scenario in scenarios {
            let prefix = "ctd-lab-\(scenario)-"
            guard name.hasPrefix(prefix) else { continue }
            let digits = name.dropFirst(prefix.count)
            // "collision-" is a prefix of "collision-rate-PID": try the other scenarios.
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let pid = Int32(digits), pid > 0 else { continue }
            return pid
        }
        return nil
    }

    /// Deletes lab namespaces whose ctdoctor is gone (killed with SIGKILL, so its
    /// teardown never ran): its PID no longer exists, or now belongs to another program.
    /// - Returns: the names removed.
    public static func removeStale(
        scenarios: [String], procfs: ProcFS = ProcFS(), directory: String = NetworkNamespace.namedNamespaceDirectory
    ) -> [String] {
        guard let names = try? procfs.list(directory) else { return [] }
        var removed: [String] = []
        for name in names.sorted() {
            guard let pid = ownerPID(ofLabNamed: name, scenarios: scenarios), pid != getpid() else { continue }
            let command = (try? procfs.read("\(procfs.root)/\(pid)/comm", limit: 64)).map { String(decoding: $0, as: UTF8.self) }
            if command?.hasPrefix("ctdoctor") == true { continue }
            if let ip = systemProgram("ip"), (try? runCapturingOutput([ip, "netns", "del", name]))??.exitStatus == 0 { removed.append(name) }
        }
        return removed
    }

    /// Runs a fixed command line inside the namespace.
    public func exec(_ command: [String]) throws {
        try Self.run(["ip", "netns", "exec", name] + command)
    }

    /// The namespace's nf_conntrack_tcp_timeout_close_wait: what an entry's timer is set
    /// to at each packet it sees in CLOSE_WAIT.
    public func setCloseWait(_ seconds: Int) throws {
        try exec(Self.closeWaitCommand(seconds))
    }

    static func closeWaitCommand(_ seconds: Int) -> [String] {
        ["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_timeout_close_wait=\(seconds)"]
    }

    public func remove() {
        guard !removed else { return }
        removed = true
        if let ip = systemProgram("ip") { _ = try? runCapturingOutput([ip, "netns", "del", name]) }
    }

    static func run(_ command: [String]) throws {
        guard let program = systemProgram(command[0]), let result = try runCapturingOutput([program] + command.dropFirst()) else {
            throw SetupFailed(command: command.joined(separator: " "), output: "\(command[0]) is not installed (looked in /usr/sbin, /sbin, /usr/bin, /bin)")
        }
        guard result.exitStatus == 0 else {
            throw SetupFailed(command: command.joined(separator: " "), output: "exit status \(result.exitStatus)")
        }
    }
}

import Foundation
import KernelIO

/// When privileged tests run. They need root to create namespaces; CI runs as root and
/// there they must run, so with CI=true they are never skipped: not being root makes
/// them fail loudly instead.
public enum Privileges {
    public static var isRoot: Bool { getuid() == 0 }
    public static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }
    public static var shouldRunPrivilegedTests: Bool { isRoot || inCI }
}

/// A throwaway network namespace named after the test that owns it
/// (`ctd-<tag>-<pid>-<n>`), with loopback up, deleted when released.
public final class TestNamespace: @unchecked Sendable {
    public let name: String
    public let namespace: NetworkNamespace
    private static let counter = Locked(0)

    /// `ctd-<tag>-<pid>-<n>`, new on every call. Each instance of a suite must own its
    /// namespace's name: Swift Testing may release one test's instance (whose deinit
    /// deletes the namespace by name) after the next test's instance has made its own,
    /// and a shared `ctd-<tag>-<pid>` then names the newer namespace, which the older
    /// teardown deletes — the least-privilege suite failed that way, once in two runs.
    public static func uniqueName(_ tag: String) -> String {
        let number = counter.update { value -> Int in
            value += 1
            return value
        }
        return "ctd-\(tag)-\(getpid())-\(number)"
    }

    public init(tag: String) throws {
        guard Privileges.isRoot else {
            throw CommandFailed(
                command: ["ip", "netns", "add"],
                result: CommandResult(status: 1, standardOutput: "", standardError: "privileged tests must run as root (CI=true forbids skipping them)"))
        }
        name = Self.uniqueName(tag)
        try Shell.check(["ip", "netns", "add", name])
        namespace = NetworkNamespace(path: "/var/run/netns/\(name)", name: name)
        do {
            try exec(["ip", "link", "set", "lo", "up"])
        } catch {
            destroy()
            throw error
        }
    }

    deinit { destroy() }

    private var destroyed = false

    /// Deletes the namespace; the kernel frees it once its last socket closes.
    public func destroy() {
        guard !destroyed else { return }
        destroyed = true
        _ = try? Shell.run(["ip", "netns", "del", name])
    }

    /// Runs a command inside the namespace and throws unless it succeeds.
    @discardableResult
    public func exec(_ arguments: [String]) throws -> String {
        try Shell.check(["ip", "netns", "exec", name] + arguments)
    }

    /// Runs a command inside the namespace and returns however it ended.
    public func run(_ arguments: [String]) throws -> CommandResult {
        try Shell.run(["ip", "netns", "exec", name] + arguments)
    }
}

import SystemPackage

/// A network namespace that ctdoctor reads from: the caller's own, or one named by
/// `--netns NAME|PATH|PID`.
///
/// Entering one must not leak it into other threads: `setns(CLONE_NEWNET)` switches
/// only the calling thread, and a Swift task may resume on any pool thread. So `run`
/// starts a fresh thread, enters the namespace there, runs the body and lets that thread
/// end. Netlink sockets opened inside keep the namespace and can be used anywhere.
public struct NetworkNamespace: Sendable, Hashable, CustomStringConvertible {
    /// The namespace file to enter; nil for the caller's own namespace.
    public let path: String?
    /// How the user named it, for messages.
    public let name: String

    /// The namespace ctdoctor itself runs in.
    public static let current = NetworkNamespace(path: nil, name: "current")

    public init(path: String?, name: String) {
        self.path = path
        self.name = name
    }

    public var description: String { name }

    /// Where named namespaces live: `ip netns add NAME` creates /var/run/netns/NAME.
    public static let namedNamespaceDirectory = "/var/run/netns"

    /// Resolves `--netns`: digits are a PID (/proc/PID/ns/net), text with a '/' is a path
    /// to a namespace file, anything else is a name under /var/run/netns.
    /// - Throws: `NamespaceError` when nothing is there, naming what was looked for.
    public static func resolve(
        _ spec: String,
        procRoot: String = "/proc",
        namedDirectory: String = namedNamespaceDirectory
    ) throws(NamespaceError) -> NetworkNamespace {
        guard !spec.isEmpty else { throw .emptySpec }
        if spec.allSatisfy(\.isASCIIDigit) {
            guard let pid = Int32(spec), pid > 0 else { throw .noSuchProcess(pid: spec) }
            let path = "\(procRoot)/\(pid)/ns/net"
            guard fileExists("\(procRoot)/\(pid)") else { throw .noSuchProcess(pid: spec) }
            if pathIsDenied(path) { throw .lookDenied(path: path) }
            return NetworkNamespace(path: path, name: "pid \(pid)")
        }
        if spec.contains("/") {
            if pathIsDenied(spec) { throw .lookDenied(path: spec) }
            guard fileExists(spec) else { throw .noSuchFile(path: spec) }
            return NetworkNamespace(path: spec, name: spec)
        }
        let path = "\(namedDirectory)/\(spec)"
        guard fileExists(path) else { throw .noSuchName(name: spec, directory: namedDirectory) }
        return NetworkNamespace(path: path, name: spec)
    }

    /// Runs `body` with this namespace as the network namespace of the thread it runs on.
    ///
    /// For the current namespace the body runs on the calling thread. Otherwise it runs
    /// on a new thread that is discarded afterwards; the caller blocks until it is done,
    /// so the body may capture the caller's state. Files under /proc/thread-self/net and
    /// per-namespace sysctls under /proc/sys/net read there describe this namespace.
    public func run<T>(_ body: () throws -> T) throws -> T {
        guard let path else { return try body() }
        return try runOnDedicatedThread(namespacePath: path, namespaceName: name, body)
    }
}

/// Why a namespace could not be found or entered.
public enum NamespaceError: Error, Sendable, Equatable, CustomStringConvertible {
    case emptySpec
    case noSuchProcess(pid: String)
    case noSuchFile(path: String)
    case noSuchName(name: String, directory: String)
    case notANetworkNamespace(path: String)
    case permissionDenied(path: String)
    /// EACCES on the file itself: another user's process.
    case lookDenied(path: String)
    case enterFailed(path: String, errno: Errno)

    public var description: String {
        switch self {
        case .emptySpec:
            "--netns needs a name, a path or a PID"
        case .noSuchProcess(let pid):
            "no process with PID \(pid): cannot use its network namespace (it may have exited)"
        case .noSuchFile(let path):
            "network namespace file \(path) does not exist"
        case .noSuchName(let name, let directory):
            "no network namespace named \(name) (looked for \(directory)/\(name); see `ip netns list`)"
        case .notANetworkNamespace(let path):
            "\(path) is not a network namespace file (a /proc/PID/ns/net or an ip netns bind mount)"
        case .permissionDenied(let path):
            "entering network namespace \(path) needs CAP_SYS_ADMIN (setns answered EPERM); run as root"
        case .lookDenied(let path):
            "cannot look at \(path): permission denied (another user's process: needs CAP_SYS_PTRACE, or root)"
        case .enterFailed(let path, let errno):
            "cannot enter network namespace \(path): \(errno.description) (\(errno.symbol))"
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

import CLinux
import Glibc
import SystemPackage

/// The body of a namespace thread and what it produced; the starting thread waits in
/// pthread_join, so only one thread touches it at a time.
private final class NamespaceJob<T>: @unchecked Sendable {
    let path: String
    let name: String
    let body: () throws -> T
    var outcome: Result<T, any Error>?

    init(path: String, name: String, body: @escaping () throws -> T) {
        self.path = path
        self.name = name
        self.body = body
    }

    func execute() {
        do {
            try enterNetworkNamespace(path: path)
            outcome = .success(try body())
        } catch {
            outcome = .failure(error)
        }
    }
}

/// A type-erased handle so the C thread entry point need not be generic.
private final class ThreadEntry: @unchecked Sendable {
    let work: () -> Void
    init(_ work: @escaping () -> Void) { self.work = work }
}

/// Starts a joinable thread running `work`.
func startThread(named name: String, _ work: @escaping () -> Void) throws -> pthread_t {
    var thread = pthread_t()
    let context = Unmanaged.passRetained(ThreadEntry(work)).toOpaque()
    let created = pthread_create(&thread, nil, { context in
        let entry = Unmanaged<ThreadEntry>.fromOpaque(context!).takeRetainedValue()
        entry.work()
        return nil
    }, context)
    guard created == 0 else {
        Unmanaged<ThreadEntry>.fromOpaque(context).release()
        throw KernelIOError("start a thread", subject: name, errno: Errno(rawValue: created))
    }
    return thread
}

func runOnDedicatedThread<T>(namespacePath: String, namespaceName: String, _ body: () throws -> T) throws -> T {
    try withoutActuallyEscaping(body) { escapable in
        let job = NamespaceJob(path: namespacePath, name: namespaceName, body: escapable)
        let thread = try startThread(named: "network namespace \(namespaceName)") { job.execute() }
        pthread_join(thread, nil)
        return try job.outcome!.get()
    }
}

/// setns(2) for the calling thread only.
private func enterNetworkNamespace(path: String) throws(NamespaceError) {
    let fd: Int32
    do {
        // Non-blocking: a FIFO planted under /var/run/netns must not hang the open.
        fd = try FileDescriptor.open(path, .readOnly, options: [.closeOnExec, .nonBlocking]).rawValue
    } catch {
        let errno = error as? Errno ?? .ioError
        switch errno {
        case .noSuchFileOrDirectory: throw .noSuchFile(path: path)
        case .permissionDenied: throw .permissionDenied(path: path)
        default: throw .enterFailed(path: path, errno: errno)
        }
    }
    defer { close(fd) }
    // Only a namespace file (nsfs) is handed to setns: anything else is refused by name.
    guard ctd_is_nsfs(fd) == 1 else { throw .notANetworkNamespace(path: path) }
    guard setns(fd, ctd_clone_newnet) == 0 else {
        let errno = lastErrno()
        switch errno {
        case .invalidArgument: throw .notANetworkNamespace(path: path)
        case .notPermitted: throw .permissionDenied(path: path)
        default: throw .enterFailed(path: path, errno: errno)
        }
    }
}

/// Whether a path is there, or is there but may not be looked at (another user's
/// /proc/PID/ns/net without CAP_SYS_PTRACE answers EACCES, not ENOENT).
func pathIsDenied(_ path: String) -> Bool {
    access(path, F_OK) != 0 && errno == EACCES
}

func fileExists(_ path: String) -> Bool {
    access(path, F_OK) == 0
}

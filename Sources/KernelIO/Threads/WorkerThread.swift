import Glibc

/// A thread of its own for blocking work (socket walks, lookups, a namespace's whole
/// diagnosis). Dispatch's global pool adds workers only slowly once its workers block,
/// so work queued there from inside other blocked work waited about a second per level;
/// a plain thread starts at once.
public final class WorkerThread: @unchecked Sendable {
    private let thread: pthread_t
    private var joined = false

    /// Starts `body` on a new thread; `name` appears in the error if none can start.
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws {
        thread = try startThread(named: name, body)
    }

    /// Starts `body` on a thread nobody waits for: it ends when the body returns (a
    /// connection served on its own, bounded in time by the body itself).
    public static func detached(name: String, _ body: @escaping @Sendable () -> Void) throws {
        pthread_detach(try startThread(named: name, body))
    }

    /// Waits for the body to return. Call once, from the starting thread.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    deinit { join() }
}

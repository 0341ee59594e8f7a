import Dispatch
import Glibc
import Synchronization

/// Work that must run however the process ends — the lab's namespace removal — on
/// Ctrl-C, SIGTERM and SIGHUP as well as on a normal exit; and stopping a long-running
/// loop between its runs.
enum Cleanup {
    private static let actions = Mutex<[(Int, @Sendable () -> Void)]>([])
    private static let nextToken = Atomic<Int>(0)
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Registers `action`; returns a token to unregister it once done normally.
    static func register(_ action: @escaping @Sendable () -> Void) -> Int {
        let token = nextToken.add(1, ordering: .relaxed).newValue
        actions.withLock { $0.append((token, action)) }
        return token
    }

    static func unregister(_ token: Int) {
        actions.withLock { $0.removeAll { $0.0 == token } }
    }

    /// Runs and forgets every registered action.
    static func runAll() {
        let pending = actions.withLock { list -> [(Int, @Sendable () -> Void)] in
            defer { list.removeAll() }
            return list
        }
        pending.reversed().forEach { $0.1() }
    }

    private static let stopsGracefully = Atomic<Bool>(false)
    private static let stopRequested = Atomic<Bool>(false)

    /// From now on SIGINT and SIGTERM only set `isStopRequested`, for a loop that ends
    /// after the run in progress (export --every).
    static func stopGracefully() { stopsGracefully.store(true, ordering: .relaxed) }

    static var isStopRequested: Bool { stopRequested.load(ordering: .relaxed) }

    /// Installs the handlers. A closed standard output (`ctdoctor … | head`) surfaces
    /// as EPIPE from write instead of killing the process mid-lab.
    static func installSignalHandlers() {
        signal(SIGPIPE, SIG_IGN)
        // Some parents (test runners, init scripts) start children with these blocked,
        // which would make ctdoctor deaf to them; threads started later inherit this mask.
        var handled = sigset_t()
        sigemptyset(&handled)
        for number in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&handled, number) }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                // A loop that asked to stop gracefully gets the first signal; a second
                // one ends the process at once.
                if number != SIGHUP, stopsGracefully.load(ordering: .relaxed), !stopRequested.exchange(true, ordering: .relaxed) {
                    return
                }
                runAll()
                exit(128 + number)
            }
            source.resume()
            sources.append(source)
        }
    }
}

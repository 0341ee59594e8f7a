import Dispatch
import Glibc
import Synchronization

/// Work that must run however the process ends — the lab's namespace removal — on
/// Ctrl-C, SIGTERM and SIGHUP as well as on a normal exit.
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

    /// Installs the handlers. A closed standard output (`ctdoctor … | head`) surfaces
    /// as EPIPE from write instead of killing the process mid-lab.
    static func installSignalHandlers() {
        signal(SIGPIPE, SIG_IGN)
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                runAll()
                exit(128 + number)
            }
            source.resume()
            sources.append(source)
        }
    }
}

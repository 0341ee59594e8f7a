/// What `leaks --reap` did with one socket.
public struct ReapOutcome: Sendable {
    public enum Result: String, Sendable {
        case destroyed
        /// A dry run (no --yes): it qualified.
        case wouldDestroy = "would-destroy"
        case skipped
        /// Qualified, but SOCK_DESTROY failed.
        case failed
    }

    public var decision: ReapDecision
    public var result: Result
    /// The reason for a skip, or the failure; the qualification otherwise.
    public var detail: String
    /// A failure's error, for its errno.
    public var cause: (any Error)?

    public init(decision: ReapDecision, result: Result, detail: String, cause: (any Error)? = nil) {
        self.decision = decision
        self.result = result
        self.detail = detail
        self.cause = cause
    }

    /// The one line logged per action: enough to find the socket again afterwards.
    public var logLine: String {
        let socket = decision.leak.socket
        return "reap: \(result.rawValue) \(socket.local) <-> \(socket.remote) (inode \(socket.inode), cookie \(socket.cookie.map { "0x" + String($0, radix: 16) } ?? "none")): \(detail)"
    }
}

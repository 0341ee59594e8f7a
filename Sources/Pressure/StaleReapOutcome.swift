import Conntrack

/// What `pressure --reap` did with one stale entry.
public struct StaleReapOutcome: Sendable {
    public enum Result: String, Sendable {
        case deleted
        /// A dry run (no --yes): it qualified.
        case wouldDelete = "would-delete"
        /// Gone, or changed, when looked up again: not touched.
        case skipped
        case failed
    }

    public var entry: ConntrackEntry
    public var result: Result
    public var detail: String
    /// A failure's error, for its errno.
    public var cause: (any Error)?

    public init(entry: ConntrackEntry, result: Result, detail: String, cause: (any Error)? = nil) {
        self.entry = entry
        self.result = result
        self.detail = detail
        self.cause = cause
    }

    /// The one line logged per action: enough to find the entry again afterwards.
    public var logLine: String {
        "reap: \(result.rawValue) \(entry.protocolName) \(entry.original.sourceEndpoint) -> \(entry.original.destinationEndpoint) (reply from \(entry.reply.sourceEndpoint)): \(detail)"
    }
}

/// One `pressure --reap`: whether it was a dry run, and each entry's outcome.
public struct StaleReapRun: Sendable {
    public var dryRun: Bool
    public var outcomes: [StaleReapOutcome]
    /// Stale entries counted beyond those kept for reaping (run again for them).
    public var notKept = 0

    public init(dryRun: Bool, outcomes: [StaleReapOutcome]) {
        self.dryRun = dryRun
        self.outcomes = outcomes
    }

    public func count(_ result: StaleReapOutcome.Result) -> Int { outcomes.filter { $0.result == result }.count }
}

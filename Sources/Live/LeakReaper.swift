import Conntrack
import Diagnosis
import KernelIO
import Netlink
import NetCore
import Sockets

/// `leaks --reap`: takes each socket a diagnosis classified leaked, reads it and its flow
/// again, and destroys it only if it still qualifies (`ReapPolicy`). A socket is never
/// destroyed on what the diagnosis saw alone: between the two the app may have closed,
/// the port been reused, the entry come back.
public struct LeakReaper: Sendable {
    public var namespace: NetworkNamespace
    public var minimumIdleMilliseconds: UInt64
    /// False: a dry run, every qualifying socket reported as would-destroy.
    public var destroys: Bool

    public init(namespace: NetworkNamespace, minimumIdleMilliseconds: UInt64, destroys: Bool) {
        self.namespace = namespace
        self.minimumIdleMilliseconds = minimumIdleMilliseconds
        self.destroys = destroys
    }

    /// The conntrack entry of a candidate could not be read again: nothing is destroyed.
    public struct ReverifyFailure: WrapsCause, CustomStringConvertible {
        public var tuple: ReplyTupleKey
        public var cause: (any Error)?
        public var description: String { "cannot re-verify the conntrack entry of \(tuple), so nothing is destroyed: \(cause.map { "\($0)" } ?? "")" }
    }

    /// Each candidate's outcome, in the report's order; `each` sees every one as it is
    /// decided (the command logs it), so a failure later still leaves a trail.
    public func reap(_ report: DiagnosisReport, each: (ReapOutcome) -> Void = { _ in }) throws -> [ReapOutcome] {
        guard let sidecar = report.sidecar else { return [] }
        let profile = sidecar.profile
        let reaper = SocketReaper(namespace: namespace)
        let lookup = ConntrackReplyLookup(namespace: namespace)
        let candidates = ReapPolicy.candidates(report.leaks, profile: profile)
        // The proxy's own descriptors, read once: a socket it does not hold is not its.
        let held = sidecar.process.flatMap {
            LiveCollector(namespace: namespace).sockets(heldBy: $0.pid, among: Set(candidates.map(\.socket.inode)))
        }
        var outcomes: [ReapOutcome] = []
        for leak in candidates {
            let current = try reaper.current(leak.socket)
            let key = ReplyTupleKey(source: leak.socket.local, destination: leak.socket.remote)
            let entryNow: ConntrackEntry?
            do {
                entryNow = try lookup.entries(for: [key])[key]
            } catch {
                throw ReverifyFailure(tuple: key, cause: error)
            }
            let decision = ReapPolicy.decide(
                leak, now: current, entryNow: entryNow, minimumIdleMilliseconds: minimumIdleMilliseconds, profile: profile,
                heldByProxy: held.map { $0.contains(leak.socket.inode) })
            var outcome = ReapOutcome(decision: decision, result: .skipped, detail: decision.reason)
            if decision.action == .destroy, let current {
                if !destroys {
                    outcome.result = .wouldDestroy
                } else {
                    do {
                        outcome.result = try reaper.destroy(current) ? .destroyed : .skipped
                        if outcome.result == .skipped { outcome.detail = "gone before it could be destroyed" }
                    } catch {
                        outcome.result = .failed
                        outcome.detail = "\(error)"
                        outcome.cause = error
                    }
                }
            }
            each(outcome)
            outcomes.append(outcome)
        }
        return outcomes
    }
}

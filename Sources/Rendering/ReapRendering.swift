import Diagnosis
import NetCore

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

    public init(decision: ReapDecision, result: Result, detail: String) {
        self.decision = decision
        self.result = result
        self.detail = detail
    }

    /// The one line logged per action: enough to find the socket again afterwards.
    public var logLine: String {
        let socket = decision.leak.socket
        return "reap: \(result.rawValue) \(socket.local) <-> \(socket.remote) (inode \(socket.inode), cookie \(socket.cookie.map { "0x" + String($0, radix: 16) } ?? "none")): \(detail)"
    }
}

/// `leaks --reap` output: a table, `ctdoctor.reap.v1`, or one line per action and a
/// summary.
public enum ReapRendering {
    public static let schema = "ctdoctor.reap.v1"

    public static func summary(_ outcomes: [ReapOutcome], dryRun: Bool, minimumIdleSeconds: UInt64) -> [(String, JSONValue)] {
        func count(_ result: ReapOutcome.Result) -> JSONValue { .integer(outcomes.filter { $0.result == result }.count) }
        return [
            ("dry_run", .bool(dryRun)), ("min_idle_seconds", .integer(minimumIdleSeconds)),
            ("candidates", .integer(outcomes.count)), ("destroyed", count(.destroyed)),
            ("would_destroy", count(.wouldDestroy)), ("skipped", count(.skipped)), ("failed", count(.failed)),
        ]
    }

    /// One action; `kind` leads ndjson lines.
    public static func record(_ outcome: ReapOutcome, kind: String? = nil) -> JSONValue {
        .object((kind.map { [("kind", JSONValue.string($0))] } ?? []) + [
            ("result", .string(outcome.result.rawValue)), ("detail", .string(outcome.detail)),
            ("leak", DiagnosisRendering.leak(outcome.decision.leak)),
        ])
    }

    public static func json(_ outcomes: [ReapOutcome], namespace: String, dryRun: Bool, minimumIdleSeconds: UInt64, notices: [String]) -> JSONValue {
        .object(
            [("schema", .string(schema)), ("namespace", .string(namespace))]
                + summary(outcomes, dryRun: dryRun, minimumIdleSeconds: minimumIdleSeconds)
                + [("actions", .array(outcomes.map { record($0) })), ("notices", .strings(notices))])
    }

    public static func human(_ outcomes: [ReapOutcome], dryRun: Bool, minimumIdleSeconds: UInt64) -> String {
        guard !outcomes.isEmpty else {
            return "No leaked sidecar socket to reap (only sockets classified leaked, idle at least \(minimumIdleSeconds) s, qualify).\n"
        }
        var table = TextTable([.init("Result"), .init("Proxy socket"), .init("Peer"), .init("Inode", .right), .init("Why")])
        for outcome in outcomes {
            let socket = outcome.decision.leak.socket
            table.append([outcome.result.rawValue, "\(socket.local)", "\(socket.remote)", String(socket.inode), outcome.detail])
        }
        var out = table.render()
        if dryRun, outcomes.contains(where: { $0.result == .wouldDestroy }) {
            out += "\nDry run: nothing was destroyed. Add --yes to destroy the sockets marked would-destroy.\n"
        }
        return out
    }
}

import Diagnosis
import JSON

/// `leaks --reap` as JSON (`ctdoctor.reap.v1`), or as one ndjson line per action and a
/// summary line.
public enum ReapDocument {
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
            ("leak", DiagnosisDocument.leak(outcome.decision.leak)),
        ])
    }

    public static func json(_ outcomes: [ReapOutcome], namespace: String, dryRun: Bool, minimumIdleSeconds: UInt64, notices: [String]) -> JSONValue {
        .object(
            [("schema", .string(schema)), ("namespace", .string(namespace))]
                + summary(outcomes, dryRun: dryRun, minimumIdleSeconds: minimumIdleSeconds)
                + [("actions", .array(outcomes.map { record($0) })), ("notices", .strings(notices))])
    }

    /// The ndjson lines: one per action, then the summary.
    public static func ndjson(_ outcomes: [ReapOutcome], dryRun: Bool, minimumIdleSeconds: UInt64) -> [JSONValue] {
        outcomes.map { record($0, kind: "action") }
            + [.object([("kind", .string("summary"))] + summary(outcomes, dryRun: dryRun, minimumIdleSeconds: minimumIdleSeconds))]
    }
}

import Diagnosis
import JSON

/// The JSON form of an export run (`ctdoctor.export.v1`): the run's facts and, per
/// namespace, its diagnosis document or why there is none.
public enum ExportDocument {
    public static let schema = "ctdoctor.export.v1"

    public static func json(_ run: ExportRun, failOn: Severity?) -> JSONValue {
        .object([
            ("schema", .string(schema)),
            ("success", .bool(run.succeeded)),
            ("started_at", .number(run.startedAt)),
            ("duration_seconds", .number(run.durationSeconds)),
            ("namespaces", .array(run.results.map { result in
                .object([
                    ("netns", .string(result.identity.netns)),
                    ("pod", .string(result.identity.pod)),
                    ("error", .string(result.failure)),
                    ("error_reason", .string(result.failureReason?.rawValue)),
                    ("diagnosis", result.report.map { DiagnosisDocument.json($0, failOn: failOn) } ?? .null),
                ])
            })),
        ])
    }
}

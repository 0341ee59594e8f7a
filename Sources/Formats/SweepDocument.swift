import Diagnosis
import JSON

/// A node sweep as JSON (`ctdoctor.sweep.v1`: every namespace with its diagnosis, and a
/// summary) or as ndjson (one line per namespace, then the summary).
public enum SweepDocument {
    public static let schema = "ctdoctor.sweep.v1"

    public static func json(_ results: [NamespaceResult], failOn: Severity?, parts: ReportParts, notices: [String]) -> JSONValue {
        .object([
            ("schema", .string(schema)), ("fail_on", .string(failOn?.name ?? "never")),
            ("namespaces", .array(results.map { record($0, failOn: failOn, parts: parts, full: true) })),
            ("summary", .object(summary(results, parts: parts))), ("notices", .strings(notices)),
        ])
    }

    public static func ndjson(_ results: [NamespaceResult], failOn: Severity?, parts: ReportParts, notices: [String]) -> [JSONValue] {
        results.map { record($0, failOn: failOn, parts: parts, full: false) }
            + [.object([("kind", .string("summary"))] + summary(results, parts: parts) + [("notices", .strings(notices))])]
    }

    /// One namespace: with its whole diagnosis document (`full`), or as an ndjson line
    /// with the counts a dashboard wants.
    static func record(_ result: NamespaceResult, failOn: Severity?, parts: ReportParts, full: Bool) -> JSONValue {
        let identity = result.identity
        let place = identity.place
        var members: [(String, JSONValue)] = [
            ("netns", .string(identity.netns)), ("netns_name", .string(place?.netnsName)), ("pod", .string(place?.podName)),
            ("pod_uid", .string(place?.podUID)), ("pod_source", .string(place?.podSource)), ("pid", .integer(place?.pid)),
            ("processes", .integer(place?.processCount)), ("host", .bool(place?.isHost ?? false)), ("error", .string(result.failure)),
        ]
        if full {
            members.append(("diagnosis", result.report.map { DiagnosisDocument.json($0, failOn: failOn, parts: parts) } ?? .null))
        } else {
            let report = result.report
            let counts = report.map(SweepCounts.init) ?? SweepCounts()
            members = [("kind", .string("namespace"))] + members + [
                ("sidecar", .string(report?.sidecar?.profile.mesh.rawValue)), ("verdict", .string(report?.verdict)),
                ("worst_severity", .string(report?.worstSeverity(for: parts)?.name)),
                ("leaked", .integer(counts.leaked)), ("at_risk", .integer(counts.atRisk)), ("stalled", .integer(counts.stalled)),
            ]
        }
        return .object(members)
    }

    static func summary(_ results: [NamespaceResult], parts: ReportParts) -> [(String, JSONValue)] {
        let reports = results.compactMap(\.report)
        let totals = reports.map(SweepCounts.init).reduce(SweepCounts(), +)
        return [
            ("namespaces", .integer(results.count)), ("diagnosed", .integer(reports.count)),
            ("failed", .integer(results.count - reports.count)),
            ("with_sidecar", .integer(reports.filter { $0.sidecar != nil }.count)),
            ("leaked", .integer(totals.leaked)), ("at_risk", .integer(totals.atRisk)), ("stalled", .integer(totals.stalled)),
            ("worst_severity", .string(reports.compactMap { $0.worstSeverity(for: parts) }.max()?.name)),
        ]
    }
}

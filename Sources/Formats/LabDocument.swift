import Diagnosis
import JSON
import Pressure

/// A lab run as JSON (`ctdoctor.lab.v1`): the scenario, what it built (its flows and the
/// members only that scenario has), the diagnosis of it, and whether they agree. The
/// scenario's own records are the Lab module's (LabRecords); this is the document around
/// them.
public enum LabDocument {
    public static let schema = "ctdoctor.lab.v1"

    public static func json(
        scenario: String, namespace: String, members: [(String, JSONValue)], flows: [JSONValue], diagnosis: DiagnosisReport,
        failOn: Severity?, problems: [String]
    ) -> JSONValue {
        .object(
            [("schema", .string(schema)), ("scenario", .string(scenario)), ("namespace", .string(namespace))] + members + [
                ("flows", .array(flows)),
                ("diagnosis", DiagnosisDocument.json(diagnosis, failOn: failOn)),
                ("matches", .bool(problems.isEmpty)),
                ("problems", .strings(problems)),
            ])
    }

    /// The pressure lab: what it built, `pressure`'s report of it, and whether they agree.
    public static func pressure(
        namespace: String, members: [(String, JSONValue)], report: PressureReport, problems: [String]
    ) -> JSONValue {
        .object(
            [("schema", .string(schema)), ("scenario", .string("pressure")), ("namespace", .string(namespace))] + members + [
                ("pressure", PressureDocument.json(report, namespace: namespace)),
                ("matches", .bool(problems.isEmpty)),
                ("problems", .strings(problems)),
            ])
    }
}

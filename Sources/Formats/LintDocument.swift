import Diagnosis
import JSON
import MeshLint

/// Lint results as JSON (`ctdoctor.lint.v1`) and as SARIF 2.1.0 for code-scanning tools.
public enum LintDocument {
    public static let schema = "ctdoctor.lint.v1"

    public static func json(_ report: LintReport, failOn: Severity?) -> JSONValue {
        .object([
            ("schema", .string(schema)),
            ("files", .strings(report.files)),
            ("objects", .integer(Int64(report.objectCount))),
            ("worst_severity", .string(report.worstSeverity?.name)),
            ("fail_on", .string(failOn?.name ?? "never")),
            ("findings", .array(report.findings.map { finding in
                .object([
                    ("rule", .string(finding.rule.id)),
                    ("name", .string(finding.rule.name)),
                    ("severity", .string(finding.severity.name)),
                    ("file", .string(finding.file)),
                    ("line", .integer(Int64(finding.line))),
                    ("object", .string(finding.object)),
                    ("port", .integer(finding.port)),
                    ("workloads", .strings(finding.workloads)),
                    ("message", .string(finding.message)),
                    ("fix", .string(finding.fix)),
                ])
            })),
            ("notices", .strings(report.notices)),
        ])
    }

    /// A SARIF 2.1.0 log (OASIS): one run, every rule described once, one result per
    /// finding located by file and line. Levels: error, warning, note.
    public static func sarif(_ report: LintReport, version: String) -> JSONValue {
        let rules = LintRule.all
        func level(_ severity: Severity) -> String {
            switch severity {
            case .error: "error"
            case .warning: "warning"
            case .info: "note"
            }
        }
        return .object([
            ("$schema", .string("https://json.schemastore.org/sarif-2.1.0.json")),
            ("version", .string("2.1.0")),
            ("runs", .array([.object([
                ("tool", .object([("driver", .object([
                    ("name", .string("ctdoctor")),
                    ("version", .string(version)),
                    ("rules", .array(rules.map { rule in
                        .object([
                            ("id", .string(rule.id)),
                            ("name", .string(rule.name)),
                            ("shortDescription", .object([("text", .string(rule.summary))])),
                            ("defaultConfiguration", .object([("level", .string(level(rule.severity)))])),
                        ])
                    })),
                ]))])),
                ("results", .array(report.findings.map { finding in
                    .object([
                        ("ruleId", .string(finding.rule.id)),
                        ("ruleIndex", .integer(Int64(rules.firstIndex(of: finding.rule) ?? 0))),
                        ("level", .string(level(finding.severity))),
                        ("message", .object([("text", .string("\(finding.message). Fix: \(finding.fix)"))])),
                        ("locations", .array([.object([
                            ("physicalLocation", .object([
                                ("artifactLocation", .object([("uri", .string(finding.file))])),
                                ("region", .object([("startLine", .integer(Int64(max(1, finding.line))))])),
                            ])),
                            ("logicalLocations", .array([.object([("fullyQualifiedName", .string(finding.object))])])),
                        ])])),
                    ])
                })),
            ])])),
        ])
    }
}

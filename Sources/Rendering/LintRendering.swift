import Diagnosis
import MeshLint
import NetCore

/// Lint results as a compiler would print them.
public enum LintRendering {
    /// `file:line: severity CODE name: message`, with the fix indented below, grouped by
    /// file; then a summary line.
    public static func human(_ report: LintReport, color: Bool) -> String {
        let style = Style(enabled: color)
        var out = ""
        var currentFile: String?
        for finding in report.findings {
            if currentFile != finding.file {
                if currentFile != nil { out += "\n" }
                currentFile = finding.file
            }
            out += "\(finding.file.terminalSafe):\(finding.line): " + style.severity(finding.severity, finding.severity.name) + " "
            out += style.bold("\(finding.rule.id) \(finding.rule.name)") + ": \(finding.message.terminalSafe)\n"
            out += "    fix: \(finding.fix.terminalSafe)\n"
        }
        let counts = Severity.allCases.reversed().map { severity in
            (severity, report.findings.filter { $0.severity == severity }.count)
        }.filter { $0.1 > 0 }.map { "\($0.1) \($0.0.name)\($0.1 == 1 || $0.0 == .info ? "" : "s")" }
        out += (report.findings.isEmpty ? "" : "\n")
        out += "\(counts.isEmpty ? "no findings" : counts.joined(separator: ", ")) in \(report.objectCount) objects from \(report.files.count) \(report.files.count == 1 ? "file" : "files")\n"
        return out
    }
}

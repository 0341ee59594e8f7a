import Diagnosis
import NetCore

/// A node sweep as people read it: a summary line per namespace, then the findings of
/// those with any.
public enum SweepRendering {
    public static func human(_ results: [NamespaceResult], sections: ReportParts, notices: [String]) -> String {
        let withSidecar = results.filter { $0.report?.sidecar != nil }.count
        var out = "Node sweep: \(results.count) network namespaces, \(withSidecar) with a sidecar\n\n"
        var table = TextTable([
            .init("Namespace"), .init("Pod"), .init("Sidecar"), .init("Leaked", .right), .init("At risk", .right),
            .init("Stalled", .right), .init("Worst"), .init("Verdict"),
        ])
        for result in results {
            let identity = result.identity
            let name = identity.place?.netnsName ?? (identity.place?.isHost == true ? "host" : identity.netns)
            guard let report = result.report else {
                table.append([name, identity.pod ?? "-", "?", "", "", "", "failed", result.failure ?? ""])
                continue
            }
            let counts = SweepCounts(report)
            table.append([
                name, identity.pod ?? "-", report.sidecar?.profile.mesh.rawValue ?? "-", String(counts.leaked), String(counts.atRisk),
                String(counts.stalled), report.worstSeverity(for: sections)?.name ?? "-", report.verdict,
            ])
        }
        out += table.render() + "\n"
        for result in results {
            guard let report = result.report, report.sidecar != nil, !report.findings(for: sections).isEmpty else { continue }
            out += "\n── \(result.identity.displayName.terminalSafe) (\(result.identity.netns))\n"
            out += DiagnosisRendering.human(report, sections: sections, color: false)
        }
        if !notices.isEmpty { out += "\nNotices\n" + notices.map { "  - \($0.terminalSafe)\n" }.joined() }
        return out
    }
}

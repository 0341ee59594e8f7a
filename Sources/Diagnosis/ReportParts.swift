/// The parts of a report a command speaks for: `diagnose` all of them, `leaks` and
/// `collisions` theirs. Every output (JSON, ndjson, the human report, the sweep) is built
/// from the parts it includes.
public struct ReportParts: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let findings = ReportParts(rawValue: 1)
    public static let leaks = ReportParts(rawValue: 2)
    public static let collisions = ReportParts(rawValue: 4)
    public static let kernel = ReportParts(rawValue: 8)
    public static let stalls = ReportParts(rawValue: 16)
    public static let all: ReportParts = [.findings, .leaks, .collisions, .kernel, .stalls]
}

extension DiagnosisReport {
    /// The findings `parts` speak for (all of them for diagnose): each kind's section,
    /// and whether there is a sidecar at all, which every report says.
    public func findings(for parts: ReportParts) -> [Finding] {
        if parts == .all { return findings }
        return findings.filter { finding in
            switch finding.kind.section {
            case .sidecar: true
            case .leaks: parts.contains(.leaks)
            case .collisions: parts.contains(.collisions)
            case .stalls: parts.contains(.stalls)
            case .table: false
            }
        }
    }

    /// The worst severity among the findings `parts` speak for.
    public func worstSeverity(for parts: ReportParts) -> Severity? { findings(for: parts).map(\.severity).max() }
}

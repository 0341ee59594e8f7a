/// How much a finding matters. `--fail-on` compares against it.
public enum Severity: Int, Sendable, Hashable, Comparable, CaseIterable {
    /// Worth knowing; nothing is failing because of it now.
    case info = 0
    /// Something is degrading or about to fail.
    case warning = 1
    /// Connections are failing or resources are leaking now.
    case error = 2

    public var name: String {
        switch self {
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }

    public init?(name: String) {
        guard let match = Self.allCases.first(where: { $0.name == name.lowercased() }) else { return nil }
        self = match
    }

    public static func < (lhs: Severity, rhs: Severity) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// One thing diagnosis found, with what shows it and what fixes it on this machine.
public struct Finding: Sendable, Hashable {
    /// A stable identifier of the kind of finding ("leaked-sockets"); scripts key on it.
    public var id: String
    public var severity: Severity
    /// One line: what is wrong.
    public var summary: String
    /// The observations behind it, one per line.
    public var evidence: [String]
    /// What to do, chosen for this kernel and this sidecar.
    public var remedy: String

    public init(id: String, severity: Severity, summary: String, evidence: [String] = [], remedy: String) {
        self.id = id
        self.severity = severity
        self.summary = summary
        self.evidence = evidence
        self.remedy = remedy
    }
}

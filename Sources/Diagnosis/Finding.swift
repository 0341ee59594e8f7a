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

/// The part of a report a finding speaks for: `ctdoctor leaks` shows the leak findings,
/// `ctdoctor collisions` the collision ones, `diagnose` every one.
public enum ReportSection: Sendable, Hashable, CaseIterable {
    /// Whether there is a sidecar at all: every report shows it.
    case sidecar
    case leaks
    case collisions
    case stalls
    /// The conntrack table's fill.
    case table
}

/// What kind of thing a finding reports. The raw value is its stable id
/// ("leaked-sockets"), which JSON carries and scripts key on.
public enum FindingKind: String, Sendable, Hashable, CaseIterable {
    case noSidecar = "no-sidecar"
    case leakedSockets = "leaked-sockets"
    case leakAtRisk = "leak-at-risk"
    case closeWaitTimeout = "close-wait-timeout"
    case noTCPInfo = "no-tcp-info"
    case idleHBONETunnels = "idle-hbone-tunnels"
    case liveCollision = "live-collision"
    case collisionRisk = "collision-risk"
    case collisionOutcome = "collision-outcome"
    case challengeACKsSeen = "challenge-acks-seen"
    case inboundPortRemapped = "inbound-port-remapped"
    case inboundUnreplied = "inbound-unreplied"
    case inboundClashRisk = "inbound-clash-risk"
    case stalledServerFirst = "stalled-server-first"
    case stalledSilentClients = "stalled-silent-clients"
    case stalledConnections = "stalled-connections"
    case conntrackTableFull = "conntrack-table-full"
    case conntrackInsertFailures = "conntrack-insert-failures"
    case conntrackEarlyDrops = "conntrack-early-drops"
    case conntrackInvalidDropped = "conntrack-invalid-dropped"
    case conntrackLongTimeouts = "conntrack-long-timeouts"
    case conntrackUnrepliedEntries = "conntrack-unreplied-entries"
    case conntrackStaleEntries = "conntrack-stale-entries"

    public var section: ReportSection {
        switch self {
        case .noSidecar: .sidecar
        case .leakedSockets, .leakAtRisk, .closeWaitTimeout, .noTCPInfo, .idleHBONETunnels: .leaks
        case .liveCollision, .collisionRisk, .collisionOutcome, .challengeACKsSeen, .inboundPortRemapped, .inboundUnreplied,
            .inboundClashRisk:
            .collisions
        case .stalledServerFirst, .stalledSilentClients, .stalledConnections: .stalls
        case .conntrackTableFull, .conntrackInsertFailures, .conntrackEarlyDrops, .conntrackInvalidDropped, .conntrackLongTimeouts,
            .conntrackUnrepliedEntries, .conntrackStaleEntries:
            .table
        }
    }
}

/// One thing diagnosis found, with what shows it and what fixes it on this machine.
public struct Finding: Sendable, Hashable {
    public var kind: FindingKind
    /// The kind's stable identifier ("leaked-sockets"); scripts key on it.
    public var id: String { kind.rawValue }
    public var severity: Severity
    /// One line: what is wrong.
    public var summary: String
    /// The observations behind it, one per line.
    public var evidence: [String]
    /// What to do, chosen for this kernel and this sidecar.
    public var remedy: String

    public init(_ kind: FindingKind, severity: Severity, summary: String, evidence: [String] = [], remedy: String) {
        self.kind = kind
        self.severity = severity
        self.summary = summary
        self.evidence = evidence
        self.remedy = remedy
    }
}

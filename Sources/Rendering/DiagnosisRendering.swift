import Conntrack
import Diagnosis
import NetCore
import Sockets

/// A diagnosis as JSON (schema `ctdoctor.diagnosis.v1`), as ndjson records, and as the
/// human report: the verdict first, then sections.
public enum DiagnosisRendering {
    public static let schema = "ctdoctor.diagnosis.v1"

    // MARK: JSON

    /// The JSON document. `sections` narrows it for `leaks` and `collisions`, which use
    /// their own schema names with the same member shapes.
    public static func json(_ report: DiagnosisReport, failOn: Severity?, sections: Sections = .all) -> JSONValue {
        guard sections != .all else { return fullJSON(report, failOn: failOn) }
        // `leaks` and `collisions`: their own schema names, built from the members they
        // speak for, in the full document's order.
        let name = sections.contains(.leaks) && sections.contains(.collisions)
            ? schema : sections.contains(.leaks) ? "ctdoctor.leaks.v1" : "ctdoctor.collisions.v1"
        var members: [(String, JSONValue)] = [("schema", .string(name))]
        members += header(report, failOn: failOn, findings: relevantFindings(report, sections))
        if sections.contains(.leaks) { members.append(("leaks", .array(report.leaks.map(leak)))) }
        if sections.contains(.collisions) {
            members += [("collisions", collisions(report.collisions)), ("kernel", kernel(report.kernel))]
        }
        if sections.contains(.leaks) { members.append(("orphaned_fin_wait2", .integer(Int64(report.orphans)))) }
        members += trailer(report)
        return .object(members)
    }

    /// The findings a section speaks for (all of them for diagnose): each kind's section,
    /// and whether there is a sidecar at all, which every report says.
    public static func relevantFindings(_ report: DiagnosisReport, _ sections: Sections) -> [Finding] {
        if sections == .all { return report.findings }
        return report.findings.filter { finding in
            switch finding.kind.section {
            case .sidecar: true
            case .leaks: sections.contains(.leaks)
            case .collisions: sections.contains(.collisions)
            case .stalls: sections.contains(.stalls)
            case .table: false
            }
        }
    }

    /// The members every report starts with, up to its findings.
    static func header(_ report: DiagnosisReport, failOn: Severity?, findings: [Finding]) -> [(String, JSONValue)] {
        [
            ("namespace", .string(report.namespace)),
            ("verdict", .string(report.verdict)),
            ("worst_severity", .string(report.worstSeverity?.name)),
            ("fail_on", .string(failOn?.name ?? "never")),
            ("sidecar", report.sidecar.map(sidecar) ?? .null),
            ("proxy_idle_timeout", .object([("seconds", .number(report.idleTimeout.seconds)), ("source", .string(report.idleTimeout.source))])),
            ("findings", .array(findings.map(finding))),
        ]
    }

    /// The members every report ends with.
    static func trailer(_ report: DiagnosisReport) -> [(String, JSONValue)] {
        [
            ("sources", .object([
                ("sockets", .string(report.input.socketSource.name)),
                ("conntrack", .string(report.input.conntrackSource)),
            ])),
            ("notices", .strings(report.notices)),
        ]
    }

    static func fullJSON(_ report: DiagnosisReport, failOn: Severity?) -> JSONValue {
        .object([("schema", .string(schema))] + header(report, failOn: failOn, findings: report.findings) + [
            ("leaks", .array(report.leaks.map(leak))),
            ("stall_after_seconds", .number(report.stallAfterSeconds)),
            ("stalls", .array(report.stalls.map(stall))),
            ("collisions", collisions(report.collisions)),
            ("kernel", kernel(report.kernel)),
            ("orphaned_fin_wait2", .integer(Int64(report.orphans))),
        ] + trailer(report))
    }

    /// One record per line: each finding, each half-closed socket, then a summary.
    public static func ndjson(_ report: DiagnosisReport, failOn: Severity?) -> [JSONValue] {
        func tagged(_ kind: String, _ value: JSONValue) -> JSONValue {
            guard case .object(let members) = value else { return value }
            return .object([("kind", .string(kind)), ("namespace", .string(report.namespace))] + members)
        }
        var records = report.findings.map { tagged("finding", finding($0)) }
        records += report.leaks.map { tagged("leak", leak($0)) }
        records += report.stalls.map { tagged("stall", stall($0)) }
        records.append(tagged("summary", .object([
            ("verdict", .string(report.verdict)),
            ("worst_severity", .string(report.worstSeverity?.name)),
            ("findings", .integer(Int64(report.findings.count))),
            ("leaked", .integer(Int64(report.leaks.filter { $0.classification == .leaked }.count))),
            ("at_risk", .integer(Int64(report.leaks.filter { $0.classification == .atRisk }.count))),
            ("poisoned_ports", .integer(Int64(report.collisions.sources.reduce(0) { $0 + $1.poisoned.count }))),
            ("stalled", .integer(Int64(report.stalls.reduce(0) { $0 + $1.connections.count }))),
            ("collision_outcome", .string(report.kernel.outcome.rawValue)),
            ("notices", .strings(report.notices)),
        ])))
        return records
    }

    static func finding(_ finding: Finding) -> JSONValue {
        .object([
            ("id", .string(finding.id)),
            ("severity", .string(finding.severity.name)),
            ("summary", .string(finding.summary)),
            ("evidence", .strings(finding.evidence)),
            ("remedy", .string(finding.remedy)),
        ])
    }

    static func sidecar(_ detection: SidecarDetection) -> JSONValue {
        .object([
            ("mesh", .string(detection.profile.mesh.rawValue)),
            ("outbound_port", .integer(Int64(detection.profile.outboundPort))),
            ("inbound_port", .integer(Int64(detection.profile.inboundPort))),
            ("detected", .bool(!detection.wasGiven)),
            ("evidence", .string(detection.evidence)),
            ("process", detection.process.map(process) ?? .null),
        ])
    }

    static func process(_ owner: SocketOwner) -> JSONValue {
        .object([("pid", .integer(Int64(owner.pid))), ("command", .string(owner.command)), ("fd", .integer(Int64(owner.fd)))])
    }

    public static func endpoint(_ endpoint: Endpoint?) -> JSONValue {
        guard let endpoint else { return .null }
        return .object([("address", .string(endpoint.address.description)), ("port", .integer(Int64(endpoint.port)))])
    }

    public static func leak(_ leak: LeakRecord) -> JSONValue {
        .object([
            ("class", .string(leak.classification.rawValue)),
            ("reason", .string(leak.reason)),
            ("direction", .string(leak.direction.rawValue)),
            ("socket", .object([
                ("local", endpoint(leak.socket.local)), ("peer", endpoint(leak.socket.remote)),
                ("inode", .integer(leak.socket.inode)), ("cookie", .integer(leak.socket.cookie)),
            ])),
            ("original_destination", endpoint(leak.originalDestination)),
            ("app_socket_state", .string(leak.appSocket?.state.name)),
            ("conntrack", leak.entry.map { entry in
                .object([("state", .string(entry.state?.name)), ("timeout", .integer(entry.timeout)), ("id", .integer(entry.id))])
            } ?? .null),
            ("colliding_connection", leak.collidingEntry.map { entry in
                .object([("src", endpoint(entry.original.sourceEndpoint)), ("dst", endpoint(entry.original.destinationEndpoint)),
                         ("state", .string(entry.state?.name))])
            } ?? .null),
            ("idle_ms", .integer(leak.idleMilliseconds)),
            ("reaped_in_ms", .integer(leak.reapedInMilliseconds)),
            ("process", leak.owner.map(process) ?? .null),
            ("process_inferred", .bool(leak.ownerInferred)),
            ("provenance", .string(leak.provenance.rawValue)),
            ("basis", .string(leak.basis.rawValue)),
        ])
    }

    static func stall(_ group: StallGroup) -> JSONValue {
        .object([
            ("port", .integer(group.port)),
            ("direction", .string(group.direction.rawValue)),
            ("protocol", .string(group.application?.name)),
            ("server_first", group.application.map { .bool($0.isServerFirst) } ?? .null),
            ("evidence", .string(group.evidence.map { "\($0)" })),
            ("connections", .array(group.connections.map { connection in
                .object([
                    ("local", endpoint(connection.socket.local)), ("peer", endpoint(connection.socket.remote)),
                    ("original_destination", endpoint(connection.originalDestination)),
                    ("silent_ms", .integer(Int64(connection.silentMilliseconds))),
                ])
            })),
        ])
    }

    static func collisions(_ prediction: CollisionPrediction) -> JSONValue {
        .object([
            ("model", .string(CollisionPrediction.model)),
            ("assumptions", .strings(prediction.assumptions)),
            ("connect_rate", prediction.connectRate.map {
                .object([("per_second", .number($0.perSecond)), ("source", .string($0.source))])
            } ?? .null),
            ("port_range", .array([.integer(Int64(prediction.portRange.lowerBound)), .integer(Int64(prediction.portRange.upperBound))])),
            ("reserved_ports", .integer(Int64(prediction.reservedPorts))),
            ("sources", .array(prediction.sources.map { source in
                .object([
                    ("address", .string(source.address.description)),
                    ("direction", .string(source.direction.rawValue)),
                    ("poisoned_ports", .array(source.poisoned.map { port in
                        .object([("port", .integer(Int64(port.port))), ("first_pass", .bool(port.firstPass)),
                                 ("seconds_left", port.secondsLeft.map { .number($0) } ?? .null)])
                    })),
                    ("first_pass_poisoned", .integer(Int64(source.firstPassPoisoned))),
                    ("second_pass_poisoned", .integer(Int64(source.secondPassPoisoned))),
                    ("unreachable_ports", .integer(Int64(source.unreachablePorts))),
                    ("first_pass_space", .integer(Int64(source.firstPassSpace))),
                    ("fraction_poisoned", .number(source.fractionPoisoned)),
                    ("expected_collisions", source.expectedCollisions.map { .number($0) } ?? .null),
                    ("expected_leaks_hit", source.expectedLeaksHit.map { .number($0) } ?? .null),
                    ("collision_probability", source.collisionProbability.map { .number($0) } ?? .null),
                ])
            })),
            ("live", .array(prediction.liveCollisions.map(leak))),
            ("counters", .object(prediction.counters.sorted { $0.key < $1.key }.map { ($0.key, .integer($0.value)) })),
        ])
    }

    static func kernel(_ audit: KernelAudit) -> JSONValue {
        let facts = audit.facts
        return .object([
            ("release", .string(facts.release)),
            ("challenge_ack_fix", .string(audit.challengeAckFix.rawValue)),
            ("collision_outcome", .string(audit.outcome.rawValue)),
            ("reason", .string(audit.reason)),
            ("sysctls", .object([
                ("nf_conntrack_tcp_timeout_close_wait", .integer(facts.closeWaitTimeout)),
                ("nf_conntrack_tcp_ignore_invalid_rst", .integer(facts.ignoreInvalidRST)),
                ("nf_conntrack_tcp_be_liberal", .integer(facts.beLiberal)),
                ("ip_local_port_range", facts.portRange.map { .array([.integer(Int64($0.lowerBound)), .integer(Int64($0.upperBound))]) } ?? .null),
                ("ip_local_reserved_ports", .integer(Int64(facts.reservedPorts.count))),
            ])),
            ("close_wait_shorter_than_idle_timeout", audit.closeWaitShorterThanIdleTimeout.map { .bool($0) } ?? .null),
            ("conntrack", .object([
                ("count", .integer(facts.conntrackCount)), ("max", .integer(facts.conntrackMax)),
                ("fill", audit.tableFill.map { .number($0) } ?? .null),
            ])),
            ("invalid_drop_rule", audit.rules.invalidDrop.map { .bool($0) } ?? .null),
            ("rules_source", .string(audit.rules.source)),
            ("matching_rule", .string(audit.rules.matchingRule)),
        ])
    }

    // MARK: Human report

    /// Which sections to print: diagnose prints all; leaks and collisions theirs.
    public struct Sections: OptionSet, Sendable {
        public let rawValue: Int
        public init(rawValue: Int) { self.rawValue = rawValue }
        public static let findings = Sections(rawValue: 1)
        public static let leaks = Sections(rawValue: 2)
        public static let collisions = Sections(rawValue: 4)
        public static let kernel = Sections(rawValue: 8)
        public static let stalls = Sections(rawValue: 16)
        public static let all: Sections = [.findings, .leaks, .collisions, .kernel, .stalls]
    }

    public static func human(_ report: DiagnosisReport, sections: Sections = .all, color: Bool) -> String {
        let style = Style(enabled: color)
        var out = style.bold("VERDICT") + "  " + style.severity(report.worstSeverity, report.verdict.terminalSafe) + "\n\n"
        let sidecar = report.sidecar.map { "\($0.profile) — \($0.evidence)" } ?? "none found"
        out += "Namespace  \(report.namespace.terminalSafe)\nSidecar    \(sidecar.terminalSafe)\n"
        if report.sidecar != nil {
            let idle = report.idleTimeout.seconds == 0 ? "disabled" : humanDuration(milliseconds: UInt64(saturating: report.idleTimeout.seconds * 1000))
            out += "Proxy idle timeout  \(idle) (\(report.idleTimeout.source.terminalSafe))\n"
        }
        if sections.contains(.findings) { out += findingsSection(report, sections: sections, style: style) }
        if sections.contains(.leaks) { out += leaksSection(report, sections: sections, style: style) }
        if sections.contains(.stalls) && !report.stalls.isEmpty { out += stallsSection(report, sections: sections, style: style) }
        if sections.contains(.collisions) { out += collisionsSection(report, sections: sections, style: style) }
        if sections.contains(.kernel) { out += kernelSection(report, sections: sections, style: style) }
        if !report.notices.isEmpty {
            out += "\n" + style.bold("Notices") + "\n"
            for notice in report.notices { out += "  - \(notice.terminalSafe)\n" }
        }
        out += "\nRead: sockets via \(report.input.socketSource.name.terminalSafe), conntrack via \(report.input.conntrackSource.terminalSafe).\n"
        return out
    }

    /// Findings, worst first, each with its evidence and fix (a fix shared by several is spelled out once).
    static func findingsSection(_ report: DiagnosisReport, sections: Sections, style: Style) -> String {
        var out = ""
        out += "\n" + style.bold("Findings") + "\n"
        let shown = relevantFindings(report, sections)
        if shown.isEmpty { out += "  none\n" }
        var remedies: [String: String] = [:]
        for finding in shown {
            let label = finding.severity.name.uppercased().padding(to: 7)
            out += "  " + style.severity(finding.severity, label) + "  " + style.bold(finding.id) + "  " + finding.summary.terminalSafe + "\n"
            for line in finding.evidence { out += "           · \(line.terminalSafe)\n" }
            // A remedy shared by several findings is spelled out once.
            if let first = remedies[finding.remedy] {
                out += "           fix: as for \(first) above\n"
            } else {
                remedies[finding.remedy] = finding.id
                out += "           fix: \(finding.remedy.terminalSafe)\n"
            }
        }
        return out
    }

    /// The half-closed sidecar sockets, one row each.
    static func leaksSection(_ report: DiagnosisReport, sections: Sections, style: Style) -> String {
        var out = ""
        out += "\n" + style.bold("Half-closed sidecar sockets (FIN_WAIT2 on capture ports)") + "\n"
        if report.leaks.isEmpty {
            out += "  none\n"
        } else {
            var table = TextTable([
                .init("Class"), .init("Proxy socket"), .init("Peer"), .init("Dialled"), .init("App socket"),
                .init("Conntrack"), .init("Idle", .right), .init("Reaped in", .right), .init("Process"),
            ])
            for leak in report.leaks {
                table.append([
                    leak.classification.rawValue,
                    leak.socket.local.description,
                    leak.socket.remote.description,
                    leak.originalDestination?.description ?? "-",
                    leak.appSocket?.state.name ?? "-",
                    leak.collidingEntry.map { "\($0.state?.name ?? "?") (collision)" }
                        ?? leak.entry.map { "\($0.state?.name ?? "?") \($0.timeout.map { "\($0)s" } ?? "")" } ?? "gone",
                    leak.idleMilliseconds.map { humanDuration(milliseconds: $0) } ?? "?",
                    leak.reapedInMilliseconds.map { humanDuration(milliseconds: $0) } ?? "never",
                    leak.owner.map { "\(leak.ownerInferred ? "listener: " : "")\($0.command)/\($0.pid)" } ?? "?",
                ])
            }
            out += table.render().split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
        }
        if report.orphans > 0 {
            out += "  (\(report.orphans) orphaned FIN_WAIT2 sockets not listed: the kernel reaps them after tcp_fin_timeout)\n"
        }
        return out
    }

    /// Stalled connections, grouped by the dialled port's protocol.
    static func stallsSection(_ report: DiagnosisReport, sections: Sections, style: Style) -> String {
        var out = ""
        out += "\n" + style.bold("Stalled connections (accepted by the sidecar, no byte either way for \(humanDuration(milliseconds: UInt64(saturating: report.stallAfterSeconds * 1000))) or more)") + "\n"
        var table = TextTable([.init("Port"), .init("Protocol"), .init("Direction"), .init("Proxy socket"), .init("Peer"), .init("Silent", .right)])
        for group in report.stalls {
            for connection in group.connections {
                table.append([
                    group.port.map(String.init) ?? "?",
                    group.application.map { "\($0.name)\($0.isServerFirst ? " (server-first)" : "")" } ?? "?",
                    group.direction.rawValue, connection.socket.local.description, connection.socket.remote.description,
                    humanDuration(milliseconds: connection.silentMilliseconds),
                ])
            }
        }
        out += table.render().split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
        return out
    }

    /// The collision prediction per source address, the model and its assumptions, and the counters.
    static func collisionsSection(_ report: DiagnosisReport, sections: Sections, style: Style) -> String {
        var out = ""
        out += "\n" + style.bold("Port collisions") + "\n"
        let prediction = report.collisions
        if prediction.sources.isEmpty { out += "  no poisoned ports\n" }
        for source in prediction.sources {
            out += "  \(source.address) (\(source.direction == .outbound ? "the app" : "a remote client")): "
            out += "\(source.poisoned.count) poisoned, \(source.firstPassPoisoned) of \(source.firstPassSpace) first-pass ports"
            out += " (\(formatPercent(source.fractionPoisoned)) of connects)\n"
            let ports = source.poisoned.map { "\($0.port)\($0.firstPass ? "" : "*")" }
            out += "    ports: \(ports.prefix(20).joined(separator: " "))\(ports.count > 20 ? " …" : "")\n"
            if let expected = source.expectedCollisions, let probability = source.collisionProbability {
                out += "    expected before these leaks end: \(formatQuantity(expected)) connects on a poisoned port"
                if let hit = source.expectedLeaksHit { out += ", \(formatQuantity(hit)) leaks hit" }
                out += "; P(at least one collision) \(formatPercent(probability))\n"
            }
        }
        out += "  model: \(CollisionPrediction.model)\n"
        for assumption in prediction.assumptions { out += "    assumes \(assumption)\n" }
        if !prediction.counters.isEmpty {
            out += "  counters since the namespace was created: "
            out += CollisionPrediction.counterNames.compactMap { name in prediction.counters[name].map { "\(name) \($0)" } }.joined(separator: ", ") + "\n"
        }
        return out
    }

    /// The kernel audit: release, the challenge-ACK fix, the sysctls and what a collision does here.
    static func kernelSection(_ report: DiagnosisReport, sections: Sections, style: Style) -> String {
        var out = ""
        let audit = report.kernel
        let facts = audit.facts
        out += "\n" + style.bold("Kernel") + "\n"
        out += "  release \((facts.release ?? "unknown").terminalSafe); challenge-ACK fix (v6.2): \(audit.challengeAckFix.rawValue)\n"
        out += "  a collision here: " + style.bold(audit.outcome.rawValue) + " — \(audit.reason)\n"
        out += "  nf_conntrack_tcp_timeout_close_wait \(facts.closeWaitTimeout.map { "\($0) s" } ?? "unknown")"
        out += " · nf_conntrack_tcp_ignore_invalid_rst \(KernelAudit.ignoreInvalidRSTText(facts))"
        out += " · nf_conntrack_tcp_be_liberal \(facts.beLiberal.map(String.init) ?? "unknown") (does not help: out-of-window RSTs stay INVALID)\n"
        if let count = facts.conntrackCount, let max = facts.conntrackMax {
            out += "  conntrack \(count) / \(max) entries (\(formatPercent(Double(count) / Double(Swift.max(max, 1)))))\n"
        }
        let drop = audit.rules.invalidDrop.map { $0 ? "present: \(audit.rules.matchingRule ?? "")" : "none" } ?? "unknown"
        out += "  INVALID-drop rule: \(drop.terminalSafe) (\(audit.rules.source.terminalSafe))\n"
        return out
    }

}

/// ANSI styling, applied only when writing to a terminal (and NO_COLOR is unset).
struct Style {
    let enabled: Bool

    func wrap(_ code: String, _ text: String) -> String { enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
    func bold(_ text: String) -> String { wrap("1", text) }
    func severity(_ severity: Severity?, _ text: String) -> String {
        switch severity {
        case .error?: wrap("1;31", text)
        case .warning?: wrap("1;33", text)
        case .info?: wrap("36", text)
        case nil: wrap("1;32", text)
        }
    }
}

extension String {
    func padding(to width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}

import Conntrack
import Diagnosis
import NetCore
import Sockets

/// A diagnosis as the human report: the verdict first, then sections.
public enum DiagnosisRendering {
    public static func human(_ report: DiagnosisReport, sections: ReportParts = .all, color: Bool) -> String {
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
        out += "\nRead: sockets via \(report.input.socketSource.name.terminalSafe), conntrack via \(report.input.conntrackSource.description.terminalSafe).\n"
        return out
    }

    /// Findings, worst first, each with its evidence and fix (a fix shared by several is spelled out once).
    static func findingsSection(_ report: DiagnosisReport, sections: ReportParts, style: Style) -> String {
        "\n" + style.bold("Findings") + "\n" + findingsList(report.findings(for: sections), style: style)
    }

    /// Findings, worst first as given, each with its evidence and fix; a fix shared by
    /// several is spelled out once. Every report lists its findings this way.
    static func findingsList(_ shown: [Finding], style: Style) -> String {
        var out = ""
        if shown.isEmpty { out += "  none\n" }
        var remedies: [String: String] = [:]
        for finding in shown {
            let label = finding.severity.name.uppercased().padding(to: 7)
            out += "  " + style.severity(finding.severity, label) + "  " + style.bold(finding.id) + "  " + finding.summary.terminalSafe + "\n"
            for line in finding.evidence { out += "           · \(line.terminalSafe)\n" }
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
    static func leaksSection(_ report: DiagnosisReport, sections: ReportParts, style: Style) -> String {
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
    static func stallsSection(_ report: DiagnosisReport, sections: ReportParts, style: Style) -> String {
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
    static func collisionsSection(_ report: DiagnosisReport, sections: ReportParts, style: Style) -> String {
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
    static func kernelSection(_ report: DiagnosisReport, sections: ReportParts, style: Style) -> String {
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
        if let counters = facts.conntrackCounters {
            let shown = [ConntrackCounter.insertFailed, .drop, .earlyDrop, .invalid, .clashResolve].compactMap { counter in
                counters[counter].map { "\(counter.rawValue) \($0)" }
            }
            if !shown.isEmpty {
                out += "  conntrack counters since the namespace was created: \(shown.joined(separator: ", ")) (growth over an interval: ctdoctor pressure)\n"
            }
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

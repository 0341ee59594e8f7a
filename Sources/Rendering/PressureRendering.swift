import Conntrack
import Diagnosis
import NetCore
import Pressure

/// A pressure report as people read it: the fill and the verdict's findings first, then
/// what fills the table, then the kernel's counters.
public enum PressureRendering {
    public static func human(_ report: PressureReport, namespace: String, color: Bool) -> String {
        let style = Style(enabled: color)
        var out = style.bold("Namespace") + "  \(namespace.terminalSafe)\n"
        out += style.bold("Table") + "      " + tableLine(report) + "\n"
        out += "\n" + style.bold("Findings") + "\n" + DiagnosisRendering.findingsList(report.findings, style: style)
        if let table = report.table { out += tableSections(table, style: style) }
        if let statistics = report.statistics { out += statisticsSection(statistics, delta: report.delta, style: style) }
        if let reaped = report.reaped { out += reapSection(reaped, style: style) }
        if !report.notices.isEmpty {
            out += "\n" + style.bold("Notes") + "\n" + report.notices.map { "  \($0.terminalSafe)\n" }.joined()
        }
        return out
    }

    static func tableLine(_ report: PressureReport) -> String {
        let count = report.count.map(String.init) ?? "unknown"
        let maximum = report.maximum.map(String.init) ?? "unknown"
        var line = "\(count) of \(maximum) entries"
        if let fill = report.fill { line += " (\(formatPercent(fill)) full)" }
        if let buckets = report.buckets, let entries = report.count, buckets > 0 {
            line += ", \(buckets) buckets (\(formatQuantity(Double(entries) / Double(buckets))) per chain)"
        }
        return line
    }

    static func tableSections(_ table: TablePressure, style: Style) -> String {
        var out = "\n" + style.bold("By state and time left") + "\n"
        var states = TextTable([.init("PROTO"), .init("STATE"), .init("LEFT"), .init("ENTRIES", .right), .init("SHARE", .right)])
        for row in table.byState.sorted(by: { $0.entries > $1.entries }).prefix(15) {
            states.append([
                row.bucket.group.protocolName, row.bucket.group.state, row.bucket.remaining.label, String(row.entries),
                formatPercent(Double(row.entries) / Double(max(1, table.entries))),
            ])
        }
        out += indent(states.render())
        if table.byState.count > 15 { out += "  … \(table.byState.count - 15) more groups (JSON lists all)\n" }

        let held = TimeoutSetting.allCases.filter { (table.heldBySetting[$0] ?? 0) > 0 }
        if !held.isEmpty {
            out += "\n" + style.bold("Timeouts holding entries") + "\n"
            var timeouts = TextTable([.init("SYSCTL"), .init("SECONDS", .right), .init("ENTRIES", .right), .init("IDLE PAST SAFE FLOOR")])
            for setting in held {
                let floor = TablePressure.safeFloor(setting)
                let saving = table.savings.first { $0.setting == setting && $0.loweredTo == floor }
                timeouts.append([
                    setting.sysctl, "\(table.timeouts[setting])\(table.timeouts.assumed.contains(setting) ? "*" : "")",
                    String(table.heldBySetting[setting] ?? 0),
                    saving.map { "\($0.freed) idle ≥ \(floor) s" } ?? "-",
                ])
            }
            out += indent(timeouts.render())
            if held.contains(where: { table.timeouts.assumed.contains($0) }) { out += "  * the kernel's default: the sysctl was not read\n" }
        }

        out += list("Top destinations", table.destinations, style: style) { "\($0.endpoint) \(IPProtocolName.name(of: $0.protocolNumber))" }
        if !table.natTargets.contributors.isEmpty {
            out += list("Top DNAT targets", table.natTargets, style: style) { "\($0.endpoint) \(IPProtocolName.name(of: $0.protocolNumber))" }
        }
        out += list("Top sources", table.sources, style: style) { $0.description }
        if !table.podsAsSource.isEmpty || !table.podsAsDestination.isEmpty {
            out += "\n" + style.bold("By pod") + "\n"
            var pods = TextTable([.init("POD"), .init("AS SOURCE", .right), .init("AS DESTINATION", .right)])
            let names = Set(table.podsAsSource.map(\.key) + table.podsAsDestination.map(\.key))
            let source = Dictionary(uniqueKeysWithValues: table.podsAsSource.map { ($0.key, $0.entries) })
            let destination = Dictionary(uniqueKeysWithValues: table.podsAsDestination.map { ($0.key, $0.entries) })
            for name in names.sorted(by: { (source[$0] ?? 0) + (destination[$0] ?? 0) > (source[$1] ?? 0) + (destination[$1] ?? 0) }) {
                // A pod outside one list's top shows "-" there, not a count it does not have.
                pods.append([name, source[name].map(String.init) ?? "-", destination[name].map(String.init) ?? "-"])
            }
            out += indent(pods.render())
        }
        let unreplied = table.unreplied
        out += "\n" + style.bold("Unreplied") + "  \(unreplied.entries) entries; \(unreplied.olderThanThreshold) older than \(unreplied.thresholdSeconds) s; \(unreplied.refreshed) refreshed that long without a reply; \(unreplied.retried) sent more than one packet"
        out += unreplied.ageUnknown > 0 ? "; \(unreplied.ageUnknown) of unknown age (nf_conntrack_timestamp is off)\n" : "\n"
        if let stale = table.stale {
            out += style.bold("Stale") + "      \(stale.entries) entries DNATed to no live endpoint\n"
        }
        return out
    }

    static func list<Key>(_ title: String, _ top: TopList<Key>, style: Style, name: (Key) -> String) -> String {
        var out = "\n" + style.bold(title) + (top.undercount > 0 ? " (counts may be low by up to \(top.undercount): too many to count each)" : "") + "\n"
        var table = TextTable([.init("KEY"), .init("ENTRIES", .right)])
        for contributor in top.contributors { table.append([name(contributor.key), String(contributor.entries)]) }
        out += top.contributors.isEmpty ? "  none\n" : indent(table.render())
        return out
    }

    static func statisticsSection(_ statistics: ConntrackStatistics, delta: StatisticsDelta?, style: Style) -> String {
        var out = "\n" + style.bold("Kernel counters") + " (\(statistics.source.rawValue), \(statistics.perCPU.count) CPUs"
        out += delta.map { ", over \(formatQuantity($0.seconds)) s)" } ?? ", since the namespace was created)"
        out += "\n"
        var table = TextTable([.init("COUNTER"), .init("TOTAL", .right)] + (delta == nil ? [] : [.init("GROWTH", .right), .init("PER SECOND", .right)]))
        let totals = statistics.totals
        for counter in ConntrackCounter.allCases {
            guard let total = totals[counter] else { continue }
            var row = [counter.rawValue, String(total)]
            if let delta {
                row.append(delta.growth[counter].map { "+\($0)" } ?? "-")
                row.append(delta.rate(counter).map(formatQuantity) ?? "-")
            }
            table.append(row)
        }
        out += indent(table.render())
        return out
    }

    static func reapSection(_ run: StaleReapRun, style: Style) -> String {
        var out = "\n" + style.bold(run.dryRun ? "Reap (dry run: --yes deletes)" : "Reap") + "\n"
        if run.outcomes.isEmpty { out += "  nothing to delete\n" }
        for outcome in run.outcomes {
            let entry = outcome.entry
            out += "  \(outcome.result.rawValue.padding(to: 12)) \(entry.protocolName) \(entry.original.sourceEndpoint) → \(entry.original.destinationEndpoint), DNAT to \(entry.reply.sourceEndpoint): \(outcome.detail.terminalSafe)\n"
        }
        if run.notKept > 0 { out += "  \(run.notKept) more stale entries were counted but not kept: run --reap again\n" }
        return out
    }

    static func indent(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "  " + $0 }.joined(separator: "\n")
    }
}

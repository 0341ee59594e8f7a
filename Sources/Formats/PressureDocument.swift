import Conntrack
import Diagnosis
import JSON
import NetCore
import Pressure

/// `ctdoctor pressure` as JSON (`ctdoctor.pressure.v1`): one document for one namespace,
/// or an array of them under `namespaces` for --all-netns.
public enum PressureDocument {
    public static let schema = "ctdoctor.pressure.v1"

    public static func json(_ report: PressureReport, namespace: String, pod: String? = nil) -> JSONValue {
        .object([("schema", .string(schema))] + members(report, namespace: namespace, pod: pod))
    }

    /// A namespace of a sweep that could not be read: its one-line reason.
    public static func failed(namespace: String, pod: String?, error: String) -> JSONValue {
        .object([("schema", .string(schema)), ("namespace", .string(namespace)), ("pod", .string(pod)), ("error", .string(error))])
    }

    /// A sweep's documents (`json` or `failed`, fullest first) as one document.
    public static func sweep(_ documents: [JSONValue]) -> JSONValue {
        .object([("schema", .string(schema)), ("namespaces", .array(documents))])
    }

    /// One namespace's members, without the schema (shared with the sweep's array).
    public static func members(_ report: PressureReport, namespace: String, pod: String?) -> [(String, JSONValue)] {
        [
            ("namespace", .string(namespace)), ("pod", .string(pod)),
            ("count", .integer(report.count)), ("max", .integer(report.maximum)), ("buckets", .integer(report.buckets)),
            ("fill", report.fill.map { .number($0) } ?? .null),
            ("statistics", report.statistics.map(statistics) ?? .null),
            ("interval", report.delta.map(delta) ?? .null),
            ("table", report.table.map(table) ?? .null),
            ("invalid_drop_rule", report.rules.invalidDrop.map { .bool($0) } ?? .null),
            ("reap", report.reaped.map(reap) ?? .null),
            ("findings", .array(report.findings.map(DiagnosisDocument.finding))),
            ("notices", .strings(report.notices)),
        ]
    }

    static func counters(_ values: ConntrackCounterValues) -> JSONValue { ConntrackStatisticsRecord.json(values) }

    static func statistics(_ statistics: ConntrackStatistics) -> JSONValue {
        .object([
            ("source", .string(statistics.source.rawValue)),
            ("totals", counters(statistics.totals)),
            ("per_cpu", .array(statistics.perCPU.map { cpu in .object([("cpu", .integer(cpu.cpu)), ("counters", counters(cpu.counters))]) })),
        ])
    }

    static func delta(_ delta: StatisticsDelta) -> JSONValue {
        .object([
            ("seconds", .number(delta.seconds)),
            ("growth", counters(delta.growth)),
            ("per_second", .object(ConntrackCounter.allCases.map { ($0.rawValue, delta.rate($0).map { .number($0) } ?? .null) })),
            ("unmatched_cpus", .integer(delta.unmatchedCPUs)),
        ])
    }

    static func endpoint(_ key: ProtocolEndpoint) -> [(String, JSONValue)] {
        [("protocol", .string(IPProtocolName.name(of: key.protocolNumber))), ("address", .string(key.endpoint.address.description)),
         ("port", .integer(key.endpoint.port))]
    }

    static func top<Key>(_ list: TopList<Key>, _ key: (Key) -> [(String, JSONValue)]) -> JSONValue {
        .object([
            ("undercount", .integer(list.undercount)),
            ("top", .array(list.contributors.map { .object(key($0.key) + [("entries", .integer($0.entries))]) })),
        ])
    }

    static func table(_ table: TablePressure) -> JSONValue {
        let best = table.bestSaving
        return .object([
            ("entries", .integer(table.entries)),
            ("by_family", .object(AddressFamily.allCases.map { ($0.name, .integer(table.byFamily[$0] ?? 0)) })),
            ("by_state", .array(table.byState.map { count in
                .object([
                    ("protocol", .string(count.bucket.group.protocolName)), ("state", .string(count.bucket.group.state)),
                    ("remaining", .string(count.bucket.remaining.label)), ("entries", .integer(count.entries)),
                ])
            })),
            ("destinations", top(table.destinations, endpoint)),
            ("dnat_targets", top(table.natTargets, endpoint)),
            ("sources", top(table.sources) { [("address", .string($0.description))] }),
            ("pods_as_source", .array(table.podsAsSource.map { .object([("pod", .string($0.key)), ("entries", .integer($0.entries))]) })),
            ("pods_as_destination", .array(table.podsAsDestination.map { .object([("pod", .string($0.key)), ("entries", .integer($0.entries))]) })),
            ("sidecar_redirected", .integer(table.sidecarRedirected)),
            ("timeouts", .array(TimeoutSetting.allCases.map { setting in
                .object([
                    ("sysctl", .string(setting.sysctl)), ("seconds", .integer(table.timeouts[setting])),
                    ("assumed_default", .bool(table.timeouts.assumed.contains(setting))),
                    ("entries", .integer(table.heldBySetting[setting] ?? 0)),
                ])
            })),
            ("savings", .array(table.savings.map(saving))),
            ("best_saving", best.map(saving) ?? .null),
            ("unreplied", .object([
                ("entries", .integer(table.unreplied.entries)), ("older_than_seconds", .integer(table.unreplied.thresholdSeconds)),
                ("older", .integer(table.unreplied.olderThanThreshold)), ("refreshed", .integer(table.unreplied.refreshed)),
                ("retried", .integer(table.unreplied.retried)),
                ("age_unknown", .integer(table.unreplied.ageUnknown)),
            ])),
            ("stale", table.stale.map { stale in
                .object([
                    ("entries", .integer(stale.entries)),
                    ("listed", .array(stale.kept.prefix(100).map(flow))),
                ])
            } ?? .null),
        ])
    }

    /// A stale entry as the reaper names it: the flow and where its DNAT points.
    static func flow(_ entry: ConntrackEntry) -> JSONValue {
        .object([
            ("protocol", .string(entry.protocolName)), ("state", .string(StateGroup(entry).state)),
            ("source", .string(entry.original.sourceEndpoint.description)),
            ("destination", .string(entry.original.destinationEndpoint.description)),
            ("dnat_target", .string(entry.reply.sourceEndpoint.description)), ("timeout", .integer(entry.timeout)),
        ])
    }

    static func reap(_ run: StaleReapRun) -> JSONValue {
        .object([
            ("dry_run", .bool(run.dryRun)), ("deleted", .integer(run.count(.deleted))), ("would_delete", .integer(run.count(.wouldDelete))),
            ("skipped", .integer(run.count(.skipped))), ("failed", .integer(run.count(.failed))), ("not_kept", .integer(run.notKept)),
            ("actions", .array(run.outcomes.map { outcome in
                .object([("result", .string(outcome.result.rawValue)), ("detail", .string(outcome.detail)), ("entry", flow(outcome.entry))])
            })),
        ])
    }

    static func saving(_ saving: TimeoutSaving) -> JSONValue {
        .object([
            ("sysctl", .string(saving.setting.sysctl)), ("current", .integer(saving.current)), ("assumed_default", .bool(saving.assumed)),
            ("lowered_to", .integer(saving.loweredTo)), ("entries", .integer(saving.held)), ("freed", .integer(saving.freed)),
        ])
    }
}

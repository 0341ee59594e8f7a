import Conntrack
import Diagnosis
import Prometheus

/// One metric ctdoctor exports: its name (unit in the name, as Prometheus asks), its
/// labels beyond `netns` and `pod`, and its HELP text. The list is the documentation's
/// source: README's metrics table is checked against it.
public struct ExportedMetric: Sendable, Hashable {
    public var name: String
    public var labels: [String]
    public var help: String
    /// A counter (the kernel's own, monotonic until the namespace goes) rather than a gauge.
    public var isCounter = false
}

/// Renders an export run as Prometheus text exposition (what node_exporter's textfile
/// collector reads). Every series is a gauge, each run stating the situation now, but for the
/// kernel's own counters, exported as counters.
///
/// Label values are bounded: `netns`/`pod` by the namespaces on the node, `class`,
/// `pass`, `severity`, `risk`, `outcome` by enumerations, and `protocol` by ctdoctor's
/// protocol table plus `--server-first` names (anything else is "unknown"). Ports and
/// addresses are never labels.
public enum MetricsExposition {
    public static let runSuccess = ExportedMetric(
        name: "ctdoctor_run_success", labels: [],
        help: "1 when every namespace asked about was diagnosed, else 0.")
    public static let lastRun = ExportedMetric(
        name: "ctdoctor_last_run_timestamp_seconds", labels: [],
        help: "When this run started, in seconds since the Unix epoch.")
    public static let runDuration = ExportedMetric(
        name: "ctdoctor_run_duration_seconds", labels: [],
        help: "How long this run took.")
    public static let namespaceDiagnosed = ExportedMetric(
        name: "ctdoctor_namespace_diagnosed", labels: [],
        help: "1 when this network namespace was diagnosed, 0 when collecting its facts failed.")
    public static let namespaceFailure = ExportedMetric(
        name: "ctdoctor_namespace_failure_info", labels: ["reason"],
        help: "1 for a namespace that could not be diagnosed, by reason: permission_denied, namespace_gone, kernel_error, other.")
    public static let sidecar = ExportedMetric(
        name: "ctdoctor_sidecar_info", labels: ["mesh"],
        help: "1 for the sidecar found in the namespace (mesh: istio, linkerd, custom, or none).")
    public static let halfClosed = ExportedMetric(
        name: "ctdoctor_half_closed_sockets", labels: ["class"],
        help: "Sidecar sockets in FIN_WAIT2 on a capture port, by class: leaked (conntrack forgot the flow), at_risk, healthy, unknown (conntrack unreadable, idle too briefly to infer).")
    public static let poisonedPorts = ExportedMetric(
        name: "ctdoctor_poisoned_ports", labels: ["pass"],
        help: "Ephemeral ports held by leaked sidecar sockets, by the parity connect() tries them in: first or second.")
    public static let collisionProbability = ExportedMetric(
        name: "ctdoctor_collision_probability", labels: [],
        help: "Probability of at least one colliding connect() before the current leaks end, for the most exposed source address (absent when the connect rate is unknown).")
    public static let expectedCollisions = ExportedMetric(
        name: "ctdoctor_expected_collisions", labels: [],
        help: "Expected connect() calls that pick a poisoned port before the current leaks end, summed over source addresses: an upper bound on collisions (absent when the connect rate is unknown).")
    public static let liveCollisions = ExportedMetric(
        name: "ctdoctor_live_collisions", labels: [],
        help: "Connection attempts landing on a leaked sidecar socket at the time of the run.")
    public static let stalled = ExportedMetric(
        name: "ctdoctor_stalled_connections", labels: ["protocol", "server_first"],
        help: "Connections a capture port accepted that carried no byte either way past --stall-after, by the dialled port's protocol.")
    public static let findings = ExportedMetric(
        name: "ctdoctor_findings", labels: ["severity"],
        help: "Findings of the diagnosis, by severity.")
    public static let conntrackEntries = ExportedMetric(
        name: "ctdoctor_conntrack_entries", labels: [],
        help: "Entries in the namespace's conntrack table (net.netfilter.nf_conntrack_count).")
    public static let conntrackLimit = ExportedMetric(
        name: "ctdoctor_conntrack_entries_limit", labels: [],
        help: "Capacity of the conntrack table (net.netfilter.nf_conntrack_max).")
    public static let conntrackStatistics = ExportedMetric(
        name: "ctdoctor_conntrack_statistics_total", labels: ["counter"],
        help: "The kernel's conntrack counters for the namespace, every CPU summed (what conntrack -S reads): found, invalid, insert, insert_failed, drop, early_drop, error, search_restart, clash_resolve, chaintoolong. Rate them: insert_failed and drop growing is the DNS insert race, early_drop a full table.",
        isCounter: true)
    public static let closeWaitTimeout = ExportedMetric(
        name: "ctdoctor_close_wait_timeout_seconds", labels: [],
        help: "net.netfilter.nf_conntrack_tcp_timeout_close_wait in the namespace.")
    public static let idleTimeout = ExportedMetric(
        name: "ctdoctor_proxy_idle_timeout_seconds", labels: [],
        help: "The sidecar's TCP idle timeout diagnosis assumed (0: disabled).")
    public static let risk = ExportedMetric(
        name: "ctdoctor_kernel_risk", labels: ["risk"],
        help: "1 when a kernel or configuration risk holds: close_wait_shorter_than_idle_timeout, collision_fails, no_challenge_ack_fix, invalid_drop_rule.")

    public static let all: [ExportedMetric] = [
        runSuccess, lastRun, runDuration, namespaceDiagnosed, namespaceFailure, sidecar, halfClosed, poisonedPorts, collisionProbability,
        expectedCollisions, liveCollisions, stalled, findings, conntrackEntries, conntrackLimit, conntrackStatistics, closeWaitTimeout,
        idleTimeout, risk,
    ]

    public static func render(_ run: ExportRun) -> [UInt8] {
        let registry = PrometheusCollectorRegistry()
        func set(_ metric: ExportedMetric, _ labels: [(String, String)], _ value: Double) {
            precondition(labels.map(\.0).suffix(metric.labels.count) == ArraySlice(metric.labels), "labels of \(metric.name)")
            // The whole name as the descriptor's base, no unit: the names are ctdoctor's own,
            // suffixes included, and the descriptor joins only the parts that are not empty.
            let descriptor = MetricNameDescriptor(metricName: metric.name, unitName: "", helpText: metric.help)
            if metric.isCounter {
                // A fresh registry per run: the counter starts at 0 and takes the kernel's value.
                registry.makeCounter(descriptor: descriptor, labels: labels).increment(by: value)
            } else {
                registry.makeGauge(descriptor: descriptor, labels: labels).set(value)
            }
        }
        set(runSuccess, [], run.succeeded ? 1 : 0)
        set(lastRun, [], run.startedAt)
        set(runDuration, [], run.durationSeconds)
        for result in run.results {
            let namespace = [("netns", result.identity.netns), ("pod", result.identity.pod ?? "")]
            set(namespaceDiagnosed, namespace, result.report == nil ? 0 : 1)
            if let reason = result.failureReason { set(namespaceFailure, namespace + [("reason", reason.rawValue)], 1) }
            if let report = result.report { add(report, namespace, set) }
        }
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return inStableOrder(bytes)
    }

    /// The exposition with its families sorted by name and each family's samples sorted:
    /// the registry emits in hash order, which changes from run to run, so a diff of two
    /// textfiles (or a golden test) would show noise. Written here because
    /// swift-prometheus offers no ordering.
    static func inStableOrder(_ bytes: [UInt8]) -> [UInt8] {
        var families: [(name: Substring, header: [Substring], samples: [Substring])] = []
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                let name = line.dropFirst(7).prefix { $0 != " " }
                families.append((name, [line], []))
            } else if line.hasPrefix("#") || families.isEmpty {
                if families.isEmpty { families.append(("", [], [])) }
                families[families.count - 1].header.append(line)
            } else {
                families[families.count - 1].samples.append(line)
            }
        }
        var out = ""
        for family in families.sorted(by: { $0.name < $1.name }) {
            for line in family.header + family.samples.sorted() { out += line + "\n" }
        }
        return Array(out.utf8)
    }

    static func add(
        _ report: DiagnosisReport, _ namespace: [(String, String)],
        _ set: (ExportedMetric, [(String, String)], Double) -> Void
    ) {
        set(sidecar, namespace + [("mesh", report.sidecar.map { $0.profile.mesh.rawValue } ?? "none")], 1)
        for leakClass in [LeakClass.leaked, .atRisk, .healthy, .unknown] {
            let count = report.leaks.filter { $0.classification == leakClass }.count
            set(halfClosed, namespace + [("class", String(leakClass.rawValue.map { $0 == "-" ? "_" : $0 }))], Double(count))
        }
        let sources = report.collisions.sources
        set(poisonedPorts, namespace + [("pass", "first")], Double(sources.reduce(0) { $0 + $1.firstPassPoisoned }))
        set(poisonedPorts, namespace + [("pass", "second")], Double(sources.reduce(0) { $0 + $1.secondPassPoisoned }))
        if report.collisions.connectRate != nil {
            set(collisionProbability, namespace, sources.compactMap(\.collisionProbability).max() ?? 0)
            set(expectedCollisions, namespace, sources.compactMap(\.expectedCollisions).reduce(0, +))
        }
        set(liveCollisions, namespace, Double(report.collisions.liveCollisions.count))
        var stalledByProtocol: [StalledKey: Int] = [:]
        for group in report.stalls {
            let key = StalledKey(protocol: group.application?.name ?? "unknown", serverFirst: group.application?.isServerFirst ?? false)
            stalledByProtocol[key, default: 0] += group.connections.count
        }
        for (key, count) in stalledByProtocol {
            set(stalled, namespace + [("protocol", key.protocol), ("server_first", key.serverFirst ? "true" : "false")], Double(count))
        }
        for severity in Severity.allCases {
            set(findings, namespace + [("severity", severity.name)], Double(report.findings.filter { $0.severity == severity }.count))
        }
        let facts = report.kernel.facts
        if let count = facts.conntrackCount { set(conntrackEntries, namespace, Double(count)) }
        if let limit = facts.conntrackMax { set(conntrackLimit, namespace, Double(limit)) }
        if let counters = facts.conntrackCounters {
            for counter in ConntrackCounter.allCases {
                if let value = counters[counter] { set(conntrackStatistics, namespace + [("counter", counter.rawValue)], Double(value)) }
            }
        }
        if let closeWait = facts.closeWaitTimeout { set(closeWaitTimeout, namespace, Double(closeWait)) }
        set(idleTimeout, namespace, report.idleTimeout.seconds)
        let risks: [(String, Bool?)] = [
            // Only a sidecar holds sockets past the close_wait timeout.
            ("close_wait_shorter_than_idle_timeout", report.sidecar == nil ? nil : report.kernel.closeWaitShorterThanIdleTimeout),
            ("collision_fails", report.kernel.outcome == .uncertain ? nil : report.kernel.outcome == .fails),
            ("no_challenge_ack_fix", [.present, .absent].contains(report.kernel.challengeAckFix) ? report.kernel.challengeAckFix == .absent : nil),
            ("invalid_drop_rule", report.kernel.rules.invalidDrop),
        ]
        for (name, holds) in risks {
            if let holds { set(risk, namespace + [("risk", name)], holds ? 1 : 0) }
        }
    }

    struct StalledKey: Hashable {
        var `protocol`: String
        var serverFirst: Bool
    }
}

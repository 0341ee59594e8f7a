import Diagnosis
import Prometheus

/// What `watch --textfile` exposes: counters of what it saw since it started, and the
/// lifetimes of the leaks that ended, for node_exporter's textfile collector. Unlike
/// export's gauges these accumulate in the process, so `rate()` and `increase()` over
/// them say how many leaks were born per hour in the namespace. Labels: `netns` and
/// `pod`, and for collisions `outcome`; never ports or addresses.
public final class WatchMetrics: Sendable {
    public static let leaksBorn = ExportedMetric(
        name: "ctdoctor_watch_leaks_born_total", labels: [],
        help: "Leaks seen born: conntrack destroyed a sidecar flow's entry while the proxy's socket was in FIN_WAIT2.", isCounter: true)
    public static let leaksFound = ExportedMetric(
        name: "ctdoctor_watch_leaks_found_total", labels: [],
        help: "Leaks found already there (at start, or after lost events): their birth was not seen.", isCounter: true)
    public static let leaksEnded = ExportedMetric(
        name: "ctdoctor_watch_leaks_ended_total", labels: [], help: "Leaked sockets seen gone.", isCounter: true)
    public static let collisions = ExportedMetric(
        name: "ctdoctor_watch_collisions_total", labels: ["outcome"],
        help: "Connects landing on a leaked socket, by outcome: seen (each collision), recovered, failed.", isCounter: true)
    public static let eventsLost = ExportedMetric(
        name: "ctdoctor_watch_events_lost_total", labels: [],
        help: "Times the kernel dropped conntrack events (ENOBUFS); each was made up for by a full read.", isCounter: true)
    public static let leakLifetime = ExportedMetric(
        name: "ctdoctor_watch_leak_lifetime_seconds", labels: [],
        help: "How long ended leaks lived, from their birth (or from when they were found).")

    public static let all = [leaksBorn, leaksFound, leaksEnded, collisions, eventsLost, leakLifetime]
    /// The lifetime buckets: Envoy's idle timeout (1 h) is what ends most leaks.
    public static let lifetimeBuckets: [Double] = [10, 60, 300, 900, 1800, 3600, 7200]

    let registry: PrometheusCollectorRegistry
    let born: Counter
    let found: Counter
    let ended: Counter
    let collisionSeen: Counter
    let collisionRecovered: Counter
    let collisionFailed: Counter
    let lost: Counter
    let lifetime: ValueHistogram

    public init(netns: String, pod: String?) {
        let labels = [("netns", netns), ("pod", pod ?? "")]
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        func counter(_ metric: ExportedMetric, _ extra: [(String, String)] = []) -> Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(metricName: String(metric.name.dropLast(6)), unitName: "total", helpText: metric.help),
                labels: labels + extra)
        }
        born = counter(Self.leaksBorn)
        found = counter(Self.leaksFound)
        ended = counter(Self.leaksEnded)
        collisionSeen = counter(Self.collisions, [("outcome", "seen")])
        collisionRecovered = counter(Self.collisions, [("outcome", "recovered")])
        collisionFailed = counter(Self.collisions, [("outcome", "failed")])
        lost = counter(Self.eventsLost)
        lifetime = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(
                metricName: String(Self.leakLifetime.name.dropLast(8)), unitName: "seconds", helpText: Self.leakLifetime.help),
            labels: labels, buckets: Self.lifetimeBuckets)
    }

    public func record(_ event: WatchEvent) {
        switch event.kind {
        case .leakBorn: born.increment()
        case .leakFound: found.increment()
        case .leakEnded:
            ended.increment()
            if let seconds = event.lifetimeSeconds { lifetime.record(seconds) }
        case .collision: collisionSeen.increment()
        case .collisionRecovered: collisionRecovered.increment()
        case .collisionFailed: collisionFailed.increment()
        case .eventsLost: lost.increment()
        }
    }

    /// The text exposition, families and samples in a stable order.
    public func exposition() -> [UInt8] {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return MetricsExposition.inStableOrder(bytes)
    }
}

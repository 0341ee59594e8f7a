import Diagnosis
import Prometheus
import Synchronization

/// What `watch --textfile` exposes: counters of what it saw since it started, and the
/// lifetimes of the leaks that ended, for node_exporter's textfile collector. Unlike
/// export's gauges these accumulate in the process, so `rate()` and `increase()` over
/// them say how many leaks were born per hour in the namespace. Labels: `netns` and
/// `pod`, and for collisions `outcome`; never ports or addresses. Thread-safe: the
/// /metrics endpoint reads it while the watch counts.
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

    public static let stalls = ExportedMetric(
        name: "ctdoctor_watch_stalls_total", labels: ["server_first"],
        help: "Accepted connections seen silent both ways past --stall-after, by whether the dialled port's protocol speaks first (true, false, unknown).", isCounter: true)
    public static let namespaces = ExportedMetric(
        name: "ctdoctor_watch_namespaces", labels: [],
        help: "Namespaces being watched now (a node watch adds pods as they appear and lets them go as they are deleted).")
    public static let namespaceFailures = ExportedMetric(
        name: "ctdoctor_watch_namespace_failures_total", labels: [],
        help: "Times a namespace could not be watched, or stopped being watchable (it is tried again later).", isCounter: true)

    public static let all = [leaksBorn, leaksFound, leaksEnded, collisions, eventsLost, leakLifetime, stalls, namespaces, namespaceFailures]
    /// The lifetime buckets: Envoy's idle timeout (1 h) is what ends most leaks.
    public static let lifetimeBuckets: [Double] = [10, 60, 300, 900, 1800, 3600, 7200]
    /// How long a gone namespace's series stay exposed: long enough for every scrape and
    /// textfile read to see their last values, short enough that a node whose pods come
    /// and go does not grow its series without bound.
    public static let defaultGoneSeriesSeconds = 300.0
    let goneSeriesSeconds: Double

    /// One namespace's series.
    struct Series: Sendable {
        var born: Counter
        var found: Counter
        var ended: Counter
        var collisionSeen: Counter
        var collisionRecovered: Counter
        var collisionFailed: Counter
        var lost: Counter
        var failures: Counter
        var stallsServerFirst: Counter
        var stallsClientFirst: Counter
        var stallsUnknown: Counter
        var lifetime: ValueHistogram
        /// When its namespace went (monotonic seconds), for the grace above.
        var goneAt: Double?
    }

    struct Key: Hashable, Sendable {
        var netns: String
        var pod: String?
    }

    let registry = PrometheusCollectorRegistry()
    let watching: Gauge
    let series = Mutex<[Key: Series]>([:])
    let started = ContinuousClock.now

    /// Monotonic seconds, for the grace of gone namespaces.
    func secondsSinceStart() -> Double {
        let elapsed = ContinuousClock.now - started
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    public init(goneSeriesSeconds: Double = WatchMetrics.defaultGoneSeriesSeconds) {
        self.goneSeriesSeconds = goneSeriesSeconds
        watching = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: Self.namespaces.name, unitName: "", helpText: Self.namespaces.help))
    }

    func makeSeries(_ key: Key) -> Series {
        let labels = [("netns", key.netns), ("pod", key.pod ?? "")]
        func counter(_ metric: ExportedMetric, _ extra: [(String, String)] = []) -> Counter {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(metricName: String(metric.name.dropLast(6)), unitName: "total", helpText: metric.help),
                labels: labels + extra)
        }
        return Series(
            born: counter(Self.leaksBorn), found: counter(Self.leaksFound), ended: counter(Self.leaksEnded),
            collisionSeen: counter(Self.collisions, [("outcome", "seen")]),
            collisionRecovered: counter(Self.collisions, [("outcome", "recovered")]),
            collisionFailed: counter(Self.collisions, [("outcome", "failed")]),
            lost: counter(Self.eventsLost), failures: counter(Self.namespaceFailures),
            stallsServerFirst: counter(Self.stalls, [("server_first", "true")]),
            stallsClientFirst: counter(Self.stalls, [("server_first", "false")]),
            stallsUnknown: counter(Self.stalls, [("server_first", "unknown")]),
            lifetime: registry.makeValueHistogram(
                descriptor: MetricNameDescriptor(
                    metricName: String(Self.leakLifetime.name.dropLast(8)), unitName: "seconds", helpText: Self.leakLifetime.help),
                labels: labels, buckets: Self.lifetimeBuckets))
    }

    /// Counts an event of the namespace `netns` (the pod's, when known).
    public func record(_ event: WatchEvent, netns: String, pod: String?) {
        let key = Key(netns: netns, pod: pod)
        let now = secondsSinceStart()
        let watched = series.withLock { all -> Int in
            var one = all[key] ?? makeSeries(key)
            switch event.kind {
            case .leakBorn: one.born.increment()
            case .leakFound: one.found.increment()
            case .leakEnded:
                one.ended.increment()
                if let seconds = event.lifetimeSeconds { one.lifetime.record(seconds) }
            case .collision: one.collisionSeen.increment()
            case .collisionRecovered: one.collisionRecovered.increment()
            case .collisionFailed: one.collisionFailed.increment()
            case .eventsLost: one.lost.increment()
            case .stall:
                switch event.application?.isServerFirst {
                case true?: one.stallsServerFirst.increment()
                case false?: one.stallsClientFirst.increment()
                case nil: one.stallsUnknown.increment()
                }
            case .stallEnded: break
            case .namespaceAdded: one.goneAt = nil
            case .namespaceGone: one.goneAt = now
            case .namespaceFailed:
                one.failures.increment()
                one.goneAt = now
            }
            all[key] = one
            return all.values.filter { $0.goneAt == nil }.count
        }
        watching.set(Int64(watched))
    }

    /// Makes the series of `netns` exist at zero, before anything happened in it: a
    /// counter that appears only at its first increment hides that first increment from
    /// `rate()` and `increase()`.
    public func watching(netns: String, pod: String?) {
        let key = Key(netns: netns, pod: pod)
        let watched = series.withLock { all -> Int in
            if all[key] == nil { all[key] = makeSeries(key) }
            all[key]!.goneAt = nil
            return all.values.filter { $0.goneAt == nil }.count
        }
        watching.set(Int64(watched))
    }

    /// The text exposition, families and samples in a stable order; series of namespaces
    /// gone for longer than `goneSeriesSeconds` are dropped first.
    public func exposition() -> [UInt8] {
        let now = secondsSinceStart()
        series.withLock { all in
            for (key, one) in all {
                guard let gone = one.goneAt, now - gone >= goneSeriesSeconds else { continue }
                for counter in [
                    one.born, one.found, one.ended, one.collisionSeen, one.collisionRecovered, one.collisionFailed, one.lost, one.failures,
                    one.stallsServerFirst, one.stallsClientFirst, one.stallsUnknown,
                ] {
                    registry.unregisterCounter(counter)
                }
                registry.unregisterValueHistogram(one.lifetime)
                all[key] = nil
            }
        }
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return MetricsExposition.inStableOrder(bytes)
    }
}


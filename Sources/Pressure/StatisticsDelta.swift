import Conntrack

/// How the kernel's counters moved between two readings of one namespace.
public struct StatisticsDelta: Sendable, Hashable {
    public var seconds: Double
    /// Growth of each counter over the interval, every CPU summed.
    public var growth: ConntrackCounterValues
    /// CPUs present in only one of the readings (hot-plugged): left out of `growth`.
    public var unmatchedCPUs: Int

    public init(seconds: Double, growth: ConntrackCounterValues, unmatchedCPUs: Int = 0) {
        self.seconds = seconds
        self.growth = growth
        self.unmatchedCPUs = unmatchedCPUs
    }

    /// The kernel keeps each CPU's counter as a 32-bit unsigned int, so a later reading
    /// below an earlier one has wrapped once (an interval long enough to wrap twice would
    /// need billions of events a second).
    public init(from earlier: ConntrackStatistics, to later: ConntrackStatistics, seconds: Double) {
        let before = Dictionary(earlier.perCPU.map { ($0.cpu, $0.counters) }, uniquingKeysWith: { first, _ in first })
        var growth = ConntrackCounterValues()
        var matched = 0
        for cpu in later.perCPU {
            guard let old = before[cpu.cpu] else { continue }
            matched += 1
            for counter in ConntrackCounter.allCases {
                guard let now = cpu.counters[counter], let then = old[counter] else { continue }
                let step = now >= then ? now - then : (now &+ (1 << 32)) &- then
                growth[counter] = (growth[counter] ?? 0) &+ step
            }
        }
        self.init(seconds: seconds, growth: growth, unmatchedCPUs: (later.perCPU.count - matched) + (earlier.perCPU.count - matched))
    }

    /// Growth per second; nil when the counter was not read or the interval is empty.
    public func rate(_ counter: ConntrackCounter) -> Double? {
        guard seconds > 0, let value = growth[counter] else { return nil }
        return Double(value) / seconds
    }
}

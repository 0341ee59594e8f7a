import Glibc
import Conntrack
import Diagnosis
import KernelIO
import NetCore
import Netlink
import NodeSweep
import Pressure

/// Reads what `ctdoctor pressure` needs from one live namespace: its timeouts and limits,
/// the kernel's counters at both ends of the interval, and one streamed pass over the
/// table between them (the pass is part of the interval, so a long dump costs no
/// extra wait).
public struct PressureCollector: Sendable {
    public var namespace: NetworkNamespace
    public var procfs: ProcFS

    public init(namespace: NetworkNamespace, procfs: ProcFS = ProcFS()) {
        self.namespace = namespace
        self.procfs = procfs
    }

    /// What the user asked for besides the namespace.
    public struct Request: Sendable {
        /// Seconds between the two readings of the counters; 0 reads them once.
        public var intervalSeconds: Double
        public var podsByAddress: [IPAddress: String]
        public var liveEndpoints: Set<IPAddress>?
        public var unrepliedAfterSeconds: UInt64
        public var top: Int

        public init(
            intervalSeconds: Double, podsByAddress: [IPAddress: String] = [:], liveEndpoints: Set<IPAddress>? = nil,
            unrepliedAfterSeconds: UInt64 = 60, top: Int = 10
        ) {
            self.intervalSeconds = intervalSeconds
            self.podsByAddress = podsByAddress
            self.liveEndpoints = liveEndpoints
            self.unrepliedAfterSeconds = unrepliedAfterSeconds
            self.top = top
        }
    }

    /// The namespace's sysctls that decide the table's size and its entries' lives.
    struct Limits {
        var timeouts: ConntrackTimeouts
        var maximum: Int?
        var buckets: Int?
        var count: Int?
    }

    func readLimits() throws -> Limits {
        try namespace.run {
            func integer(_ name: String) -> Int? { (try? procfs.readSysctl(name)).flatMap { Int($0) } }
            var read: [TimeoutSetting: Int] = [:]
            for setting in TimeoutSetting.allCases {
                if let value = integer(setting.procPath) { read[setting] = value }
            }
            return Limits(
                timeouts: .reading(read), maximum: integer("net/netfilter/nf_conntrack_max"),
                buckets: integer("net/netfilter/nf_conntrack_buckets"), count: integer("net/netfilter/nf_conntrack_count"))
        }
    }

    public func collect(_ request: Request) throws -> PressureReport {
        var notices: [String] = []
        let limits = try readLimits()
        let unread = TimeoutSetting.allCases.filter { limits.timeouts.assumed.contains($0) }
        if !unread.isEmpty {
            notices.append("\(unread.count) timeout sysctls could not be read (is nf_conntrack loaded?): the kernel's defaults are assumed for them")
        }
        let statisticsReader = ConntrackStatisticsReader(namespace: namespace, procfs: procfs)
        let clock = ContinuousClock()
        let started = clock.now
        var first: ConntrackStatistics?
        do {
            first = try statisticsReader.read()
        } catch {
            notices.append("the kernel's conntrack counters could not be read: \(error)")
        }
        if first?.source == .procFile {
            notices.append("ctnetlink refused the statistics request; read /proc/net/stat/nf_conntrack instead")
        }
        var liveEndpoints = request.liveEndpoints
        var local: Set<IPAddress> = []
        do {
            local = try addresses()
        } catch {
            // Without its own addresses, a REDIRECT to the pod IP would look stale (and
            // --reap would delete it): no entry is judged stale then.
            if liveEndpoints != nil {
                liveEndpoints = nil
                notices.append("the namespace's own addresses could not be read (\(error)): no entry is judged stale")
            }
        }
        let context = PressureContext(
            timeouts: limits.timeouts, podsByAddress: request.podsByAddress, localAddresses: local,
            liveEndpoints: liveEndpoints, unrepliedAfterSeconds: request.unrepliedAfterSeconds,
            nowNanoseconds: wallClockNanoseconds())
        var accumulator = TablePressureAccumulator(context: context)
        var tableRead = true
        do {
            let report = try ConntrackReader(namespace: namespace, procfs: procfs).forEachEntry { accumulator.add($0) }
            if case .procFile(let reason) = report.source { notices.append(reason) }
            if let why = report.interruption { notices.append("\(why): the counts may miss entries created or deleted meanwhile") }
        } catch let error as ConntrackReadError {
            guard case .permissionDenied = error else { throw error }
            // The counters and the fill still answer without the table: say what is missing.
            tableRead = false
            notices.append("the table itself is unreadable here (\(error)): only the counters and the fill are reported")
        }
        var latest = first
        var delta: StatisticsDelta?
        if let first, request.intervalSeconds > 0 {
            let remaining = Duration.seconds(request.intervalSeconds) - (clock.now - started)
            if remaining > .zero {
                let (seconds, attoseconds) = remaining.components
                var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
                var left = timespec()
                while nanosleep(&request, &left) != 0 && errno == EINTR { request = left }
            }
            do {
                let second = try statisticsReader.read()
                let elapsed = clock.now - started
                delta = StatisticsDelta(from: first, to: second, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                latest = second
            } catch {
                notices.append("the second reading of the counters failed: \(error)")
            }
        }
        let rules = (try? namespace.run { RuleInspector.inspect(procfs: procfs) }) ?? RulesFacts(source: "unknown: could not enter the namespace")
        return PressureReport(
            table: tableRead ? accumulator.summary(top: request.top) : nil, statistics: latest, delta: delta,
            count: latest?.entries ?? limits.count, maximum: latest?.maximum ?? limits.maximum, buckets: limits.buckets,
            rules: rules, notices: notices)
    }

    /// The namespace's own addresses (its pod IP, loopback).
    public func addresses() throws -> Set<IPAddress> {
        let transport = try namespace.run { try NetlinkSocket(bus: .route) }
        let sequence = UInt32.random(in: 1...(UInt32.max / 2))
        var found: Set<IPAddress> = []
        _ = try NetlinkDump.run(transport: transport, request: InterfaceAddresses.dumpRequest(sequence: sequence), sequence: sequence) {
            buffer, message in
            if let address = try InterfaceAddresses.decode(buffer, message) { found.insert(address) }
        }
        return found
    }
}

/// Now in nanoseconds since the Unix epoch: CTA_TIMESTAMP start times are on that clock.
func wallClockNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(max(0, now.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, now.tv_nsec))
}

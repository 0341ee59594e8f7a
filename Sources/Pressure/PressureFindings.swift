import Conntrack
import Diagnosis
import NetCore

/// Everything `ctdoctor pressure` learned about one namespace's table.
public struct PressureReport: Sendable {
    /// The pass over the entries; nil when the table could not be read.
    public var table: TablePressure?
    /// The last reading of the kernel's counters; nil when none could be read (a copy
    /// without `conntrack -S`).
    public var statistics: ConntrackStatistics?
    /// How the counters moved over --interval; nil for a single reading.
    public var delta: StatisticsDelta?
    /// Entries in the table by the kernel's count (nf_conntrack_count), and the node's limit.
    public var count: Int?
    public var maximum: Int?
    public var buckets: Int?
    public var rules: RulesFacts
    public var findings: [Finding]
    /// What --reap did, when it was asked for.
    public var reaped: StaleReapRun?
    /// How the figures were obtained, where a reader must know (a fallback, an assumption).
    public var notices: [String]

    public init(
        table: TablePressure?, statistics: ConntrackStatistics?, delta: StatisticsDelta?, count: Int?, maximum: Int?, buckets: Int?,
        rules: RulesFacts, notices: [String]
    ) {
        self.table = table
        self.statistics = statistics
        self.delta = delta
        self.count = count ?? statistics?.entries ?? table?.entries
        self.maximum = maximum ?? statistics?.maximum
        self.buckets = buckets
        self.rules = rules
        self.notices = notices
        self.findings = []
        self.findings = PressureFindings.findings(self)
    }

    public var fill: Double? {
        guard let count, let maximum, maximum > 0 else { return nil }
        return Double(count) / Double(maximum)
    }
}

/// What in a pressure report needs acting on, each with the fix for it.
public enum PressureFindings {
    /// A timeout whose lowering frees at least this share of the table is reported.
    static let worthwhileShare = 0.1
    /// …and at least this many entries.
    static let worthwhileEntries = 100

    public static func findings(_ report: PressureReport) -> [Finding] {
        var findings: [Finding] = []
        if let count = report.count, let maximum = report.maximum,
            let fill = Findings.tableFill(count: count, maximum: maximum, buckets: report.buckets)
        {
            findings.append(fill)
        }
        if let delta = report.delta { findings += counterFindings(delta, rules: report.rules) }
        if let table = report.table { findings += tableFindings(table) }
        return findings.sorted { $0.severity > $1.severity }
    }

    static func counterFindings(_ delta: StatisticsDelta, rules: RulesFacts) -> [Finding] {
        var findings: [Finding] = []
        let interval = "in \(formatQuantity(delta.seconds)) s"
        func grew(_ counter: ConntrackCounter) -> UInt64 { delta.growth[counter] ?? 0 }
        let insertFailed = grew(.insertFailed)
        // A lost insert race counts in both drop and insert_failed; what drop counts
        // beyond them is new flows the full table had no room for.
        let drop = grew(.drop)
        let tableDrops = drop > insertFailed ? drop - insertFailed : 0
        let earlyDrop = grew(.earlyDrop)
        if insertFailed > 0 {
            var evidence = ["insert_failed +\(insertFailed), drop +\(drop) \(interval) (every CPU summed)"]
            if let resolved = delta.growth[.clashResolve], resolved > 0 {
                evidence.append("clash_resolve +\(resolved): races the kernel settled without a drop")
            }
            findings.append(Finding(
                .conntrackInsertFailures, severity: .error,
                summary: "Conntrack dropped packets of new flows that lost the race to insert their entry: \(insertFailed) \(interval)",
                evidence: evidence,
                remedy: "Two packets of one new flow were tracked on two CPUs at once and one lost: the classic case is glibc's resolver sending its A and AAAA queries in parallel from one UDP socket to a Service VIP (kube-dns behind kube-proxy's DNAT), the lost query retried after 5 s. Set `options single-request-reopen` (or `use-vc` for TCP) in the pods' dnsConfig, run NodeLocal DNSCache so DNS skips the DNAT, or move to a kernel ≥ 5.6, which settles most UDP races (clash_resolve) instead of dropping. TCP races have no kernel remedy: retries absorb them."))
        }
        if earlyDrop > 0 || tableDrops > 0 {
            var evidence: [String] = []
            if earlyDrop > 0 { evidence.append("early_drop +\(earlyDrop) \(interval): entries evicted to make room (their packets pass)") }
            if tableDrops > 0 { evidence.append("drop +\(drop), of which \(tableDrops) not lost insert races, \(interval): new flows refused") }
            findings.append(Finding(
                .conntrackEarlyDrops, severity: .error,
                summary: tableDrops > 0
                    ? "The table is full: conntrack refused \(tableDrops) packets of new flows \(interval) (\"nf_conntrack: table full, dropping packet\")"
                    : "The table is full: conntrack evicted \(earlyDrop) unassured entries \(interval) to make room for new flows",
                evidence: evidence,
                remedy: "Raise net.netfilter.nf_conntrack_max on the node, or lower the timeout that holds the most entries (below)."))
        }
        let invalid = grew(.invalid)
        if invalid > 0, rules.invalidDrop == true {
            findings.append(Finding(
                .conntrackInvalidDropped, severity: .warning,
                summary: "\(invalid) packets were judged INVALID \(interval), and a rule drops INVALID packets",
                evidence: ["invalid +\(invalid) \(interval)", "rule: \(rules.matchingRule ?? "an INVALID-drop rule") (\(rules.source))"],
                remedy: "INVALID packets a rule drops are lost silently: out-of-window RSTs and ACKs of flows conntrack forgot (a timeout shorter than the connection's idle time). Find which with `conntrack -E` or nft's `ct state invalid log`; on kernels before 6.2, net.netfilter.nf_conntrack_tcp_ignore_invalid_rst=1 stops RSTs being judged INVALID."))
        }
        return findings
    }

    static func tableFindings(_ table: TablePressure) -> [Finding] {
        var findings: [Finding] = []
        if let best = table.bestSaving, best.freed >= worthwhileEntries,
            Double(best.freed) >= Double(table.entries) * worthwhileShare
        {
            let share = formatPercent(Double(best.freed) / Double(max(1, table.entries)))
            var evidence = table.savings.filter { $0.loweredTo == TablePressure.safeFloor($0.setting) && $0.freed > 0 }
                .sorted { $0.freed > $1.freed }.prefix(4)
                .map { "\($0.setting.sysctl)=\($0.current)\($0.assumed ? " (kernel default, not read)" : ""): \($0.held) entries, \($0.freed) idle ≥ \($0.loweredTo) s" }
            if table.sidecarRedirected > 0, table.heldBySetting[.tcpCloseWait, default: 0] > 0 {
                evidence.append("close_wait is left out: \(table.sidecarRedirected) entries here are a sidecar's REDIRECT, and a close_wait shorter than the proxy's idle timeout leaks its sockets")
            }
            findings.append(Finding(
                .conntrackLongTimeouts, severity: .warning,
                summary: "\(best.setting.sysctl) holds \(best.held) entries; at \(best.loweredTo) s \(best.freed) of them (\(share) of the table) would expire now",
                evidence: evidence,
                remedy: "sysctl -w \(best.setting.sysctl)=\(best.loweredTo) in this network namespace (on the host: kube-proxy sets tcp_timeout_established and close_wait itself, through --conntrack-tcp-timeout-established and --conntrack-tcp-timeout-close-wait). The counts are of entries idle at least that long now, read from the table."
                    + (best.setting == .tcpCloseWait
                        ? " The cost: a half-closed flow whose other side still sends after \(best.loweredTo) s is cut, as its packets no longer find their NAT; kube-proxy keeps 3600 s for that, and in a meshed pod's namespace a close_wait shorter than the proxy's idle timeout leaks its sockets."
                        : "")))
        }
        let unreplied = table.unreplied
        let aged = max(unreplied.olderThanThreshold, unreplied.refreshed)
        if aged > 0 || unreplied.retried > 0 {
            var evidence = ["\(unreplied.entries) UNREPLIED \(unreplied.entries == 1 ? "entry" : "entries"); \(unreplied.olderThanThreshold) older than \(unreplied.thresholdSeconds) s, \(unreplied.refreshed) kept alive that long by packets that get no answer, \(unreplied.retried) sent more than one packet"]
            if unreplied.ageUnknown > 0 {
                evidence.append("\(unreplied.ageUnknown) without an age: set net.netfilter.nf_conntrack_timestamp=1 to see how old entries are")
            }
            findings.append(Finding(
                .conntrackUnrepliedEntries, severity: aged > 0 ? .warning : .info,
                summary: aged > 0
                    ? "\(flows(aged)) sent for over \(unreplied.thresholdSeconds) s without a reply"
                    : "\(flows(unreplied.retried)) sent more than one packet without a reply (how long for is unknown without nf_conntrack_timestamp)",
                evidence: evidence,
                remedy: "Clients keep sending to an address that does not answer: for UDP through a DNAT, often a Service endpoint that is gone while the entry still points at it (each packet restarts its timeout). Find the destination in the top lists; delete stale entries with ctdoctor pressure --endpoints FILE --reap, or conntrack -D."))
        }
        if let stale = table.stale, stale.entries > 0 {
            findings.append(Finding(
                .conntrackStaleEntries, severity: .error,
                summary: "\(entries(stale.entries)) DNATed to addresses that are no endpoint any more: \(stale.entries == 1 ? "its flow is" : "their flows are") black-holed until \(stale.entries == 1 ? "it expires" : "they expire")",
                evidence: stale.kept.prefix(5).map { "\($0.protocolName) \($0.original.sourceEndpoint) → \($0.original.destinationEndpoint) DNAT to \($0.reply.sourceEndpoint)\($0.status.contains(.seenReply) ? "" : " UNREPLIED")" },
                remedy: "ctdoctor pressure --endpoints FILE --reap (dry run), then --reap --yes deletes them; kube-proxy deletes UDP entries of removed endpoints itself, and a missed deletion (kubernetes/kubernetes#139628) leaves these."))
        }
        return findings
    }
}

/// "1 entry is", "3 entries are".
func entries(_ count: Int) -> String { count == 1 ? "1 entry is" : "\(count) entries are" }

/// "1 flow has", "3 flows have".
func flows(_ count: Int) -> String { count == 1 ? "1 flow has" : "\(count) flows have" }

extension PressureReport {
    /// A report on a copied table (`conntrack -L`, /proc/net/nf_conntrack), with the copied
    /// sysctls and counters where given: the kernel's default timeouts otherwise, and the
    /// fill unknown without nf_conntrack_max.
    public static func ofCopy(
        _ entries: [ConntrackEntry], sysctls: SysctlText?, statistics: ConntrackStatistics?, liveEndpoints: Set<IPAddress>?,
        unrepliedAfterSeconds: UInt64, top: Int, notices: [String]
    ) -> PressureReport {
        var notices = notices
        if sysctls == nil { notices.append("no --sysctl-file: timeouts are the kernel's defaults, and the fill is unknown") }
        var accumulator = TablePressureAccumulator(context: PressureContext(
            timeouts: ConntrackTimeouts.reading(sysctls?.timeouts ?? [:]), liveEndpoints: liveEndpoints,
            unrepliedAfterSeconds: unrepliedAfterSeconds))
        entries.forEach { accumulator.add($0) }
        return PressureReport(
            table: accumulator.summary(top: top), statistics: statistics, delta: nil,
            count: sysctls?.count ?? entries.count, maximum: sysctls?.maximum, buckets: sysctls?.buckets,
            rules: RulesFacts(source: "not read: a copied table"), notices: notices)
    }
}

/// The counters conntrack keeps per CPU of each network namespace, in the order
/// `conntrack -S` prints them. The raw value is the name `conntrack -S` and JSON use.
public enum ConntrackCounter: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Lookups that found an entry.
    case found
    /// Packets conntrack could not track (bad headers, out of window, no state).
    case invalid
    /// Entries inserted (ctnetlink creations; recent kernels no longer count packets).
    case insert
    /// A new flow lost the race to insert its entry (two packets of one flow on two
    /// CPUs, the glibc resolver's A and AAAA queries): its packet is usually dropped.
    case insertFailed = "insert_failed"
    /// Packets dropped by conntrack: a lost insert race, or a full table.
    case drop
    /// Entries evicted to make room in a full table (only unassured ones are).
    case earlyDrop = "early_drop"
    /// ICMP errors that matched no flow.
    case error
    /// Lookups restarted because the table was resized or an entry moved under them.
    case searchRestart = "search_restart"
    /// Insert races resolved without a drop (UDP, ICMP since 5.6).
    case clashResolve = "clash_resolve"
    /// Inserts refused because a hash chain grew too long (since 5.17).
    case chainTooLong = "chaintoolong"

    /// The attribute carrying it in a IPCTNL_MSG_CT_GET_STATS_CPU reply (enum
    /// ctattr_stats_cpu); counters the kernel stopped sending (searched, new, ignore,
    /// delete, delete_list) have no case here.
    public var attribute: UInt16 {
        switch self {
        case .found: 2  // CTA_STATS_FOUND
        case .invalid: 4  // CTA_STATS_INVALID
        case .insert: 8  // CTA_STATS_INSERT
        case .insertFailed: 9  // CTA_STATS_INSERT_FAILED
        case .drop: 10  // CTA_STATS_DROP
        case .earlyDrop: 11  // CTA_STATS_EARLY_DROP
        case .error: 12  // CTA_STATS_ERROR
        case .searchRestart: 13  // CTA_STATS_SEARCH_RESTART
        case .clashResolve: 14  // CTA_STATS_CLASH_RESOLVE
        case .chainTooLong: 15  // CTA_STATS_CHAIN_TOOLONG
        }
    }

    /// The column of /proc/net/stat/nf_conntrack that holds it, where its header names it
    /// differently: since 5.17 the column headed chainlength (delete_list before) holds
    /// chaintoolong.
    public var procColumn: String {
        switch self {
        case .error: "icmp_error"
        case .clashResolve: "clashres"
        case .chainTooLong: "chainlength"
        default: rawValue
        }
    }

    private var order: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.order < rhs.order }
}

/// One value per counter; nil where the source did not carry it (an older kernel, a
/// /proc file without that column).
public struct ConntrackCounterValues: Sendable, Hashable {
    private var values: [UInt64?] = Array(repeating: nil, count: ConntrackCounter.allCases.count)

    public init() {}

    public init(_ pairs: [(ConntrackCounter, UInt64)]) {
        for (counter, value) in pairs { self[counter] = value }
    }

    public subscript(counter: ConntrackCounter) -> UInt64? {
        get { values[ConntrackCounter.allCases.firstIndex(of: counter)!] }
        set { values[ConntrackCounter.allCases.firstIndex(of: counter)!] = newValue }
    }

    /// Counter by counter sums; a counter missing from every part stays missing.
    public static func + (lhs: Self, rhs: Self) -> Self {
        var sum = Self()
        for counter in ConntrackCounter.allCases {
            switch (lhs[counter], rhs[counter]) {
            case (nil, nil): continue
            case let (value?, nil), let (nil, value?): sum[counter] = value
            case let (left?, right?): sum[counter] = left &+ right
            }
        }
        return sum
    }
}

/// One CPU's counters.
public struct ConntrackCPUStatistics: Sendable, Hashable {
    public var cpu: Int
    public var counters: ConntrackCounterValues

    public init(cpu: Int, counters: ConntrackCounterValues) {
        self.cpu = cpu
        self.counters = counters
    }
}

/// Where a set of statistics was read: the numbers mean the same, the sources differ in
/// what they carry.
public enum ConntrackStatisticsSource: String, Sendable, Hashable {
    /// ctnetlink's IPCTNL_MSG_CT_GET_STATS_CPU and IPCTNL_MSG_CT_GET_STATS.
    case netlink
    /// /proc/net/stat/nf_conntrack (needs CONFIG_NF_CONNTRACK_PROCFS, often off).
    case procFile = "proc"
    /// `conntrack -S` output copied from elsewhere.
    case conntrackS = "conntrack -S"
}

/// The kernel's conntrack statistics for one network namespace at one moment.
public struct ConntrackStatistics: Sendable, Hashable {
    public var perCPU: [ConntrackCPUStatistics]
    /// Entries in this namespace's table (nf_conntrack_count), when the source said.
    public var entries: Int?
    /// nf_conntrack_max: one limit for the node, compared with each namespace's count.
    public var maximum: Int?
    public var source: ConntrackStatisticsSource

    public init(perCPU: [ConntrackCPUStatistics], entries: Int? = nil, maximum: Int? = nil, source: ConntrackStatisticsSource) {
        self.perCPU = perCPU
        self.entries = entries
        self.maximum = maximum
        self.source = source
    }

    /// Every CPU's counters summed.
    public var totals: ConntrackCounterValues {
        perCPU.reduce(ConntrackCounterValues()) { $0 + $1.counters }
    }
}

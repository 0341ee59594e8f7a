import Conntrack
import NetCore

/// How long an entry has left before the kernel expires it, in the buckets the report
/// groups by.
public enum RemainingBucket: Int, Sendable, Hashable, CaseIterable, Comparable {
    case underTenSeconds, underAMinute, underTenMinutes, underAnHour, underADay, aDayOrMore
    /// The source gave no timeout (a copy that left it out).
    case unknown

    public init(seconds: UInt32) {
        switch seconds {
        case ..<10: self = .underTenSeconds
        case ..<60: self = .underAMinute
        case ..<600: self = .underTenMinutes
        case ..<3600: self = .underAnHour
        case ..<86_400: self = .underADay
        default: self = .aDayOrMore
        }
    }

    /// "<10s", "<1m", "<10m", "<1h", "<1d", ">=1d": the label tables and JSON carry.
    public var label: String {
        switch self {
        case .underTenSeconds: "<10s"
        case .underAMinute: "<1m"
        case .underTenMinutes: "<10m"
        case .underAnHour: "<1h"
        case .underADay: "<1d"
        case .aDayOrMore: ">=1d"
        case .unknown: "unknown"
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A protocol and its state as the table groups entries: TCP's state names; for
/// protocols without states, UNREPLIED until a reply is seen, then REPLIED (ASSURED
/// once both ways carried more). Kept as numbers, so grouping a million entries hashes
/// two bytes each, not a string.
public struct StateGroup: Sendable, Hashable, Comparable {
    public var protocolNumber: UInt8
    /// A TCP state's raw value, or one of the stateless codes below.
    let code: UInt8
    static let unreplied: UInt8 = 0xF0
    static let replied: UInt8 = 0xF1
    static let assured: UInt8 = 0xF2

    public init(protocolNumber: UInt8, state: String) {
        self.protocolNumber = protocolNumber
        switch state {
        case "UNREPLIED": code = Self.unreplied
        case "REPLIED": code = Self.replied
        case "ASSURED": code = Self.assured
        default: code = ConntrackTCPState(name: state)?.rawValue ?? Self.unreplied
        }
    }

    public init(_ entry: ConntrackEntry) {
        protocolNumber = entry.protocolNumber
        if let tcp = entry.tcpState {
            code = tcp.rawValue
        } else if !entry.status.contains(.seenReply) {
            code = Self.unreplied
        } else {
            code = entry.status.contains(.assured) ? Self.assured : Self.replied
        }
    }

    public var state: String {
        switch code {
        case Self.unreplied: "UNREPLIED"
        case Self.replied: "REPLIED"
        case Self.assured: "ASSURED"
        default: ConntrackTCPState(rawValue: code)?.name ?? "UNKNOWN"
        }
    }

    public var protocolName: String { IPProtocolName.name(of: protocolNumber) }

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.protocolNumber, lhs.state) < (rhs.protocolNumber, rhs.state) }
}

/// An entry's place in the state × remaining-timeout table.
public struct StateBucket: Sendable, Hashable, Comparable {
    public var group: StateGroup
    public var remaining: RemainingBucket

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.group, lhs.remaining) < (rhs.group, rhs.remaining) }
}

/// A protocol and an endpoint: a destination (service VIP and port), a DNAT target.
public struct ProtocolEndpoint: Sendable, Hashable, Comparable {
    public var protocolNumber: UInt8
    public var endpoint: Endpoint

    public init(protocolNumber: UInt8, endpoint: Endpoint) {
        self.protocolNumber = protocolNumber
        self.endpoint = endpoint
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.protocolNumber, lhs.endpoint) < (rhs.protocolNumber, rhs.endpoint) }
}

/// What the pass knows besides the entries: the namespace's timeouts, whose addresses
/// are whose, and what counts as old or stale.
public struct PressureContext: Sendable {
    public var timeouts: ConntrackTimeouts
    /// Pod addresses on the node and the pod each belongs to (from the node sweep).
    public var podsByAddress: [IPAddress: String]
    /// The namespace's own addresses: a DNAT to one of them is a local REDIRECT (a
    /// sidecar's), never a stale endpoint.
    public var localAddresses: Set<IPAddress>
    /// The endpoints that exist (from EndpointSlices); nil when not given, and then no
    /// entry is judged stale.
    public var liveEndpoints: Set<IPAddress>?
    /// UNREPLIED entries older than this are reported.
    public var unrepliedAfterSeconds: UInt64
    /// Now, in nanoseconds since the Unix epoch: ages from CTA_TIMESTAMP start times.
    public var nowNanoseconds: UInt64
    /// Ports a sidecar's REDIRECT targets: entries redirected there are counted, since
    /// lowering close_wait in such a namespace is what leaks the proxy's sockets.
    public var sidecarPorts: Set<UInt16>
    /// How many distinct keys each top list keeps exact counts for.
    public var topCapacity: Int

    public init(
        timeouts: ConntrackTimeouts = .kernelDefaults, podsByAddress: [IPAddress: String] = [:], localAddresses: Set<IPAddress> = [],
        liveEndpoints: Set<IPAddress>? = nil, unrepliedAfterSeconds: UInt64 = 60, nowNanoseconds: UInt64 = 0,
        sidecarPorts: Set<UInt16> = [15001, 15006, 4140, 4143], topCapacity: Int = 4096
    ) {
        self.timeouts = timeouts
        self.podsByAddress = podsByAddress
        self.localAddresses = localAddresses
        self.liveEndpoints = liveEndpoints
        self.unrepliedAfterSeconds = unrepliedAfterSeconds
        self.nowNanoseconds = nowNanoseconds
        self.sidecarPorts = sidecarPorts
        self.topCapacity = topCapacity
    }
}

extension TimeoutSetting {
    /// Its position in `allCases`, for the pass's flat counters: a switch, because
    /// `allCases` builds an array on every use and the pass asks once per entry.
    var index: Int {
        switch self {
        case .tcpSynSent: 0
        case .tcpSynReceived: 1
        case .tcpEstablished: 2
        case .tcpFinWait: 3
        case .tcpCloseWait: 4
        case .tcpLastAck: 5
        case .tcpTimeWait: 6
        case .tcpClose: 7
        case .udp: 8
        case .udpStream: 9
        case .icmp: 10
        case .icmpv6: 11
        case .generic: 12
        case .tcpUnacknowledged: 13
        case .tcpMaxRetransmissions: 14
        }
    }
}

/// Values a timeout could be lowered to, the kernel's defaults among them; only those
/// below the value in force are evaluated.
public let timeoutCandidates: [Int] = [10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21_600, 86_400]

/// One pass over a table, entry by entry, in memory that does not grow with it: counts
/// in fixed tables, top lists in bounded summaries, and at most `staleKept` stale
/// entries remembered for --reap.
public struct TablePressureAccumulator: Sendable {
    public let context: PressureContext
    /// How many stale entries are kept for reaping; the rest are only counted.
    public static let staleKept = 65_536

    var entries = 0
    var byFamily: [AddressFamily: Int] = [:]
    var byBucket: [StateBucket: Int] = [:]
    var destinations: HeavyHitters<ProtocolEndpoint>
    var natTargets: HeavyHitters<ProtocolEndpoint>
    var sources: HeavyHitters<IPAddress>
    var podsAsSource: [String: Int] = [:]
    var podsAsDestination: [String: Int] = [:]
    /// Per setting (in TimeoutSetting.allCases order), per candidate: entries idle at
    /// least that long. Flat, so the pass never copies an array per entry.
    var idleAtLeast = [Int](repeating: 0, count: TimeoutSetting.allCases.count * timeoutCandidates.count)
    var bySetting = [Int](repeating: 0, count: TimeoutSetting.allCases.count)
    /// Each setting's value in force, read once.
    let configured: [Int]
    var sidecarRedirected = 0
    var unreplied = 0
    var unrepliedOld = 0
    var unrepliedAgeUnknown = 0
    var unrepliedRefreshed = 0
    var unrepliedRetried = 0
    var stale = 0
    var staleEntries: [ConntrackEntry] = []

    public init(context: PressureContext) {
        self.context = context
        configured = TimeoutSetting.allCases.map { context.timeouts[$0] }
        destinations = HeavyHitters(capacity: context.topCapacity)
        natTargets = HeavyHitters(capacity: context.topCapacity)
        sources = HeavyHitters(capacity: context.topCapacity)
    }

    public mutating func add(_ entry: ConntrackEntry) {
        entries += 1
        byFamily[entry.family, default: 0] += 1
        let group = StateGroup(entry)
        byBucket[StateBucket(group: group, remaining: entry.timeout.map(RemainingBucket.init) ?? .unknown), default: 0] += 1
        let destination = ProtocolEndpoint(protocolNumber: entry.protocolNumber, endpoint: entry.original.destinationEndpoint)
        destinations.add(destination)
        sources.add(entry.original.source)
        let nated = entry.status.contains(.destinationNAT) || entry.isDestinationNATed
        if nated {
            natTargets.add(ProtocolEndpoint(protocolNumber: entry.protocolNumber, endpoint: entry.reply.sourceEndpoint))
            if context.sidecarPorts.contains(entry.reply.sourcePort) { sidecarRedirected += 1 }
        }
        if !context.podsByAddress.isEmpty {
            if let pod = context.podsByAddress[entry.original.source] { podsAsSource[pod, default: 0] += 1 }
            let target = nated ? entry.reply.source : entry.original.destination
            if let pod = context.podsByAddress[target] { podsAsDestination[pod, default: 0] += 1 }
        }
        var idle: Int?
        if let setting = TimeoutSetting.governing(entry) {
            let slot = setting.index
            bySetting[slot] += 1
            // An entry without a timeout is held, but how long it sat idle is unknown.
            if let remaining = entry.timeout {
                let idleSeconds = idleSeconds(remaining: Int(remaining), slot: slot, tcp: entry.protocolNumber == IPProtocolName.tcp)
                idle = idleSeconds
                count(idleSeconds, slot: slot)
            }
        }
        if !entry.status.contains(.seenReply) {
            unreplied += 1
            noteUnreplied(entry, idleSeconds: idle)
        }
        if let live = context.liveEndpoints, nated, isStale(entry, live: live) {
            stale += 1
            if staleEntries.count < Self.staleKept { staleEntries.append(entry) }
        }
    }

    /// Seconds since an entry's last packet, at least: its timeout restarts on every
    /// packet at the value in force, so what has run down of it is how long it sat idle.
    /// TCP restarts at the shorter unacknowledged or retransmission timeout instead when
    /// data is in flight, which the table does not show: where that could be the case,
    /// the smallest restart value the remaining time allows is taken, so an active flow
    /// is never counted as long idle.
    func idleSeconds(remaining: Int, slot: Int, tcp: Bool) -> Int {
        var restart = configured[slot]
        if tcp {
            let unacknowledged = configured[TimeoutSetting.tcpUnacknowledged.index]
            let retransmissions = configured[TimeoutSetting.tcpMaxRetransmissions.index]
            if unacknowledged < restart && unacknowledged >= remaining { restart = unacknowledged }
            if retransmissions < restart && retransmissions >= remaining { restart = retransmissions }
        }
        return restart - min(remaining, restart)
    }

    /// Counts an entry under every candidate value it has sat idle past.
    private mutating func count(_ idleSeconds: Int, slot: Int) {
        let inForce = configured[slot]
        let base = slot * timeoutCandidates.count
        for (index, candidate) in timeoutCandidates.enumerated() {
            guard candidate < inForce, idleSeconds >= candidate else { break }
            idleAtLeast[base + index] += 1
        }
    }

    private mutating func noteUnreplied(_ entry: ConntrackEntry, idleSeconds: Int?) {
        let age: UInt64?
        if let start = entry.startNanoseconds, context.nowNanoseconds >= start {
            age = (context.nowNanoseconds - start) / 1_000_000_000
        } else {
            age = entry.ageSeconds
        }
        if let age {
            if age >= context.unrepliedAfterSeconds { unrepliedOld += 1 }
            // Older than the time it has sat idle: packets keep arriving and restarting
            // its timer, so it never expires (a client retrying a vanished endpoint).
            if let idleSeconds, age > UInt64(idleSeconds) + 1, age >= context.unrepliedAfterSeconds { unrepliedRefreshed += 1 }
        } else {
            unrepliedAgeUnknown += 1
        }
        // More than one packet and no answer (nf_conntrack_acct): retried, however young.
        if let counters = entry.counters, counters.originalPackets >= 2, counters.replyPackets == 0 { unrepliedRetried += 1 }
    }

    /// DNATed to an address that is no endpoint, no address of the namespace's own, no
    /// pod on the node, and not a sidecar's REDIRECT (its port is a capture port, on the
    /// pod's own address, which a copied table does not tell).
    func isStale(_ entry: ConntrackEntry, live: Set<IPAddress>) -> Bool {
        let target = entry.reply.source.unmappedV4 ?? entry.reply.source
        return !target.isLoopback && !context.sidecarPorts.contains(entry.reply.sourcePort) && !context.localAddresses.contains(target)
            && context.podsByAddress[target] == nil && !live.contains(target)
    }

    /// The summary, with the `limit` largest of each top list.
    public func summary(top limit: Int = 10) -> TablePressure {
        var savings: [TimeoutSaving] = []
        for setting in TimeoutSetting.allCases where bySetting[setting.index] > 0 {
            let inForce = configured[setting.index]
            for (index, candidate) in timeoutCandidates.enumerated() where candidate < inForce {
                savings.append(TimeoutSaving(
                    setting: setting, current: inForce, assumed: context.timeouts.assumed.contains(setting), loweredTo: candidate,
                    held: bySetting[setting.index], freed: idleAtLeast[setting.index * timeoutCandidates.count + index]))
            }
        }
        let heldBySetting = Dictionary(uniqueKeysWithValues: TimeoutSetting.allCases.compactMap { setting in
            bySetting[setting.index] > 0 ? (setting, bySetting[setting.index]) : nil
        })
        func top(_ counts: [String: Int]) -> [Contributor<String>] {
            counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit).map { Contributor(key: $0.key, entries: $0.value) }
        }
        return TablePressure(
            entries: entries,
            byFamily: byFamily,
            byState: byBucket.sorted { $0.key < $1.key }.map { StateCount(bucket: $0.key, entries: $0.value) },
            destinations: TopList(destinations, limit: limit),
            natTargets: TopList(natTargets, limit: limit),
            sources: TopList(sources, limit: limit),
            podsAsSource: top(podsAsSource),
            podsAsDestination: top(podsAsDestination),
            heldBySetting: heldBySetting,
            savings: savings.sorted { ($0.setting, $0.loweredTo) < ($1.setting, $1.loweredTo) },
            sidecarRedirected: sidecarRedirected,
            unreplied: UnrepliedSummary(
                entries: unreplied, olderThanThreshold: unrepliedOld, thresholdSeconds: context.unrepliedAfterSeconds,
                ageUnknown: unrepliedAgeUnknown, refreshed: unrepliedRefreshed, retried: unrepliedRetried),
            stale: context.liveEndpoints.map { _ in StaleSummary(entries: stale, kept: staleEntries) },
            timeouts: context.timeouts)
    }
}

/// One key of a top list and the entries it holds.
public struct Contributor<Key: Sendable & Hashable>: Sendable, Hashable {
    public var key: Key
    public var entries: Int
}

/// The largest contributors of one kind, and whether their counts are exact.
public struct TopList<Key: Sendable & Hashable & Comparable>: Sendable, Hashable {
    public var contributors: [Contributor<Key>]
    /// The most a count may be short of the truth (0: exact, the table had few enough
    /// distinct keys).
    public var undercount: Int

    init(_ summary: HeavyHitters<Key>, limit: Int) {
        contributors = summary.top(limit, tieOrder: <).map { Contributor(key: $0.key, entries: $0.count) }
        undercount = summary.undercount
    }

    public init(contributors: [Contributor<Key>], undercount: Int) {
        self.contributors = contributors
        self.undercount = undercount
    }
}

public struct StateCount: Sendable, Hashable {
    public var bucket: StateBucket
    public var entries: Int
}

/// What lowering one timeout would do now: entries it holds, and how many of them have
/// sat idle at least `loweredTo` seconds, so would expire at once under that value.
public struct TimeoutSaving: Sendable, Hashable {
    public var setting: TimeoutSetting
    public var current: Int
    /// `current` is the kernel's default, not a value read from the namespace.
    public var assumed: Bool
    public var loweredTo: Int
    public var held: Int
    public var freed: Int
}

public struct UnrepliedSummary: Sendable, Hashable {
    public var entries: Int
    public var olderThanThreshold: Int
    public var thresholdSeconds: UInt64
    /// Entries whose age the table does not tell (no nf_conntrack_timestamp).
    public var ageUnknown: Int
    /// Older than their idle time and than the threshold: something keeps sending into
    /// them (needs nf_conntrack_timestamp for the age).
    public var refreshed: Int
    /// More than one packet and no reply (needs nf_conntrack_acct), whatever their age: a
    /// resolver's A and AAAA queries are two within milliseconds.
    public var retried: Int
}

public struct StaleSummary: Sendable, Hashable {
    public var entries: Int
    /// The first of them, kept for --reap (at most `TablePressureAccumulator.staleKept`).
    public var kept: [ConntrackEntry]
}

/// What fills one conntrack table.
public struct TablePressure: Sendable, Hashable {
    public var entries: Int
    public var byFamily: [AddressFamily: Int]
    public var byState: [StateCount]
    public var destinations: TopList<ProtocolEndpoint>
    public var natTargets: TopList<ProtocolEndpoint>
    public var sources: TopList<IPAddress>
    public var podsAsSource: [Contributor<String>]
    public var podsAsDestination: [Contributor<String>]
    public var heldBySetting: [TimeoutSetting: Int]
    public var savings: [TimeoutSaving]
    /// Entries a sidecar's REDIRECT holds (reply from 15001, 15006, 4140, 4143).
    public var sidecarRedirected: Int
    public var unreplied: UnrepliedSummary
    /// nil when no endpoints were given.
    public var stale: StaleSummary?
    public var timeouts: ConntrackTimeouts

    /// The change that frees the most entries without going below what is safe: each
    /// timeout back to the kernel's default (86,400 s, kube-proxy's value, for
    /// established: five days is the default, and idle connections live long), close_wait
    /// not at all where a sidecar's flows are tracked (there a shorter close_wait is
    /// what leaks the proxy's sockets).
    public var bestSaving: TimeoutSaving? {
        savings.filter { saving in
            saving.loweredTo == Self.safeFloor(saving.setting) && saving.freed > 0
                && !(saving.setting == .tcpCloseWait && sidecarRedirected > 0)
        }.max { ($0.freed, $1.setting) < ($1.freed, $0.setting) }
    }

    /// The lowest value ctdoctor suggests for a timeout.
    public static func safeFloor(_ setting: TimeoutSetting) -> Int {
        setting == .tcpEstablished ? 86_400 : setting.kernelDefault
    }
}

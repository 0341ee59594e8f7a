import Conntrack
import Glibc
import Diagnosis
import Dispatch
import KernelIO
import Live
import NetCore
import Netlink
import Pressure
import Synchronization

/// A namespace filled the way node tables fill: kube-proxy's 3600 s close_wait holding
/// hundreds of half-closed flows to one Service, long-lived connections to a database,
/// a resolver retrying a DNS Service whose only endpoint is gone (each retry keeps its
/// UNREPLIED entry alive), and two threads sending the same new TCP flows at once, so
/// some lose the race to insert their entry — what glibc's parallel A/AAAA queries do
/// to DNS. Then `pressure` is run on it and checked against what was built.
public final class PressureLab: @unchecked Sendable {
    public let lab: LabNamespace
    public static let podAddress = IPAddress.v4(0x0A4D_0005)  // 10.77.0.5
    public static let webService = Endpoint(.v4(0x0A60_000A), 80)  // 10.96.0.10:80
    public static let webBackend = Endpoint(.v4(0x0AF4_0105), 8080)  // 10.244.1.5:8080
    public static let databaseService = Endpoint(.v4(0x0A60_0014), 5432)  // 10.96.0.20:5432
    public static let databaseBackend = Endpoint(.v4(0x0AF4_0207), 5432)  // 10.244.2.7:5432
    public static let dnsService = Endpoint(.v4(0x0A60_0035), 53)  // 10.96.0.53:53
    /// The DNS endpoint that is gone: the DNAT rule still points at it.
    public static let vanishedDNS = Endpoint(.v4(0x0AF4_0909), 53)  // 10.244.9.9:53
    /// Where the racing SYNs go: no rule rewrites it, no socket answers it.
    public static let raceTarget = Endpoint(.v4(0x0A60_0063), 443)  // 10.96.0.99:443
    public static let closeWaitSeconds = 3600

    public let halfClosed: Int
    public let established: Int
    let say: @Sendable (String) -> Void

    /// The endpoints that exist, as the lab's EndpointSlices would list them.
    public static let liveEndpoints: Set<IPAddress> = [webBackend.address, databaseBackend.address]

    public init(name: String, halfClosed: Int = 400, established: Int = 150, say: @escaping @Sendable (String) -> Void) throws {
        self.halfClosed = halfClosed
        self.established = established
        self.say = say
        lab = try LabNamespace(bareNamed: name)
        do {
            for command in [
                ["ip", "addr", "add", "10.77.0.5/32", "dev", "lo"],
                // The Service and pod ranges answer locally, so packets to them are routed,
                // tracked and confirmed; nothing listens there.
                ["ip", "route", "add", "local", "10.96.0.0/16", "dev", "lo"],
                ["ip", "route", "add", "local", "10.244.0.0/16", "dev", "lo"],
                ["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_timeout_close_wait=\(Self.closeWaitSeconds)"],
                ["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_timestamp=1"],
                ["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_acct=1"],
                // kube-proxy's DNAT for the DNS Service, left pointing at a gone endpoint.
                ["iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "udp", "-d", "10.96.0.53/32", "--dport", "53",
                 "-j", "DNAT", "--to-destination", "10.244.9.9:53"],
                // Nothing answers the vanished endpoint: not even a port unreachable.
                ["iptables", "-w", "-A", "INPUT", "-p", "udp", "-d", "10.244.9.9/32", "-j", "DROP"],
                ["iptables", "-w", "-A", "INPUT", "-p", "tcp", "-d", "10.96.0.99/32", "-j", "DROP"],
            ] {
                try lab.exec(command)
            }
        } catch {
            lab.remove()
            throw error
        }
    }

    public func tearDown() { lab.remove() }

    /// Creates the half-closed and established entries through ctnetlink, as a busy
    /// node's would stand: each half-closed flow idle 2 to 50 minutes under the 3600 s
    /// timeout, the database connections fresh.
    public func fill() throws {
        let transport = try lab.namespace.run { try NetlinkSocket(bus: .netfilter) }
        var sequence: UInt32 = 1
        func create(_ destination: Endpoint, _ target: Endpoint, port: UInt16, state: ConntrackTCPState, timeout: UInt32) throws {
            let entry = ConntrackEntry(
                family: .ipv4, protocolNumber: IPProtocolName.tcp,
                original: ConntrackTuple(source: Self.podAddress, destination: destination.address, sourcePort: port, destinationPort: destination.port),
                reply: ConntrackTuple(source: destination.address, destination: Self.podAddress, sourcePort: destination.port, destinationPort: port),
                state: .tcp(state), status: [.seenReply, .assured], timeout: timeout)
            sequence &+= 1
            _ = try NetlinkDump.run(
                transport: transport, request: ConntrackRequest.create(entry, sequence: sequence, redirectTo: target, acknowledge: true),
                sequence: sequence) { _, _ in }
        }
        for index in 0..<halfClosed {
            let idle = 120 + (index * 2880) / max(1, halfClosed)
            try create(Self.webService, Self.webBackend, port: 20000 + UInt16(index), state: .closeWait, timeout: UInt32(Self.closeWaitSeconds - idle))
        }
        for index in 0..<established {
            try create(Self.databaseService, Self.databaseBackend, port: 30000 + UInt16(index), state: .established, timeout: 431_970)
        }
        say("created \(halfClosed) CLOSE_WAIT entries to \(Self.webService) (close_wait \(Self.closeWaitSeconds) s) and \(established) ESTABLISHED to \(Self.databaseService)")
    }

    /// A resolver retrying the DNS Service from one port, every `every` seconds for
    /// `seconds`: one UNREPLIED entry, DNATed to the vanished endpoint, kept alive.
    public func retryDNS(for seconds: Double, every: Double = 0.2) throws {
        try lab.namespace.run {
            let socket = try PacketSocket(source: Endpoint(Self.podAddress, 0))
            let query: [UInt8] = [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
            let clock = ContinuousClock()
            let end = clock.now + .milliseconds(Int(seconds * 1000))
            while clock.now < end {
                try socket.send(query, to: Self.dnsService)
                var pause = timespec(tv_sec: 0, tv_nsec: Int(every * 1e9))
                nanosleep(&pause, nil)
            }
        }
        say("a resolver retried \(Self.dnsService) for \(seconds) s; its DNAT points at the gone \(Self.vanishedDNS)")
    }

    /// Two threads send the same SYNs at once, port by port, so that both CPUs track one
    /// new flow and one loses the insert (insert_failed, drop), until `wanted` races were
    /// lost or `seconds` ran out. Returns how many sends the kernel refused (a dropped
    /// packet is EPERM to its sender).
    @discardableResult
    public func raceInserts(seconds: Double, ports: ClosedRange<UInt16> = 40000...60000) throws -> Int {
        let refused = Atomic<Int>(0)
        let arrived = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let namespace = lab.namespace
        let segments = ports.map { Self.syn(from: Endpoint(Self.podAddress, $0), to: Self.raceTarget) }
        let workers = try (0..<2).map { _ in
            try WorkerThread(name: "lab insert race") {
                guard let socket = try? namespace.run({ try PacketSocket(raw: IPProtocolName.tcp, source: Endpoint(Self.podAddress, 0)) }) else { return }
                for (index, segment) in segments.enumerated() {
                    if stop.load(ordering: .relaxed) { return }
                    // Meet the other thread at every segment, so both send it together.
                    arrived.add(1, ordering: .acquiringAndReleasing)
                    var spins = 0
                    while arrived.load(ordering: .acquiring) < 2 * (index + 1) && spins < 200_000 { spins += 1 }
                    if (try? socket.send(segment, to: Self.raceTarget)) != nil { refused.add(1, ordering: .relaxed) }
                }
            }
        }
        let clock = ContinuousClock()
        let end = clock.now + .milliseconds(Int(seconds * 1000))
        while clock.now < end && arrived.load(ordering: .relaxed) < 2 * segments.count {
            var pause = timespec(tv_sec: 0, tv_nsec: 50_000_000)
            nanosleep(&pause, nil)
        }
        stop.store(true, ordering: .relaxed)
        workers.forEach { $0.join() }
        // The racing flows were only the means: their SYN_SENT entries go, so the table
        // shows what the lab filled it with.
        try? lab.exec(["conntrack", "-D", "-p", "tcp", "-d", "10.96.0.99"])
        let lost = refused.load(ordering: .relaxed)
        say("two threads sent the same SYNs to \(Self.raceTarget) together; the kernel dropped \(lost)")
        return lost
    }

    /// A SYN segment with its checksum (the pseudo-header's sum included).
    static func syn(from source: Endpoint, to destination: Endpoint) -> [UInt8] {
        var segment: [UInt8] = [
            UInt8(source.port >> 8), UInt8(source.port & 0xFF), UInt8(destination.port >> 8), UInt8(destination.port & 0xFF),
            0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xFF, 0xFF, 0, 0, 0, 0,
        ]
        var sum: UInt32 = 0
        for pair in stride(from: 0, to: 4, by: 2) {
            sum += UInt32(source.address.bytes[pair]) << 8 | UInt32(source.address.bytes[pair + 1])
            sum += UInt32(destination.address.bytes[pair]) << 8 | UInt32(destination.address.bytes[pair + 1])
        }
        sum += UInt32(IPProtocolName.tcp) + UInt32(segment.count)
        for pair in stride(from: 0, to: segment.count, by: 2) { sum += UInt32(segment[pair]) << 8 | UInt32(segment[pair + 1]) }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
        let checksum = ~UInt16(sum)
        segment[16] = UInt8(checksum >> 8)
        segment[17] = UInt8(checksum & 0xFF)
        return segment
    }

    /// What one run of the lab saw: pressure's report over the run, the races the lab
    /// itself counted lost, and where the report disagrees with what the lab built.
    public struct Run: Sendable {
        public var report: PressureReport
        public var racesLost: Int
        public var problems: [String]
    }

    /// Fills the lab, retries its dead DNS Service and races inserts while the counters
    /// run, then reads the table once the racing flows are gone.
    public func run() throws -> Run {
        try fill()
        let statistics = ConntrackStatisticsReader(namespace: lab.namespace)
        let clock = ContinuousClock()
        let started = clock.now
        let before = try statistics.read()
        let resolver = try WorkerThread(name: "lab resolver") { [self] in try? retryDNS(for: 3) }
        let racesLost = try raceInserts(seconds: 2.5)
        resolver.join()
        var request = PressureCollector.Request(intervalSeconds: 0, liveEndpoints: Self.liveEndpoints, unrepliedAfterSeconds: 2)
        request.top = 5
        let single = try PressureCollector(namespace: lab.namespace).collect(request)
        let after = try statistics.read()
        let elapsed = clock.now - started
        let report = PressureReport(
            table: single.table, statistics: after,
            delta: StatisticsDelta(from: before, to: after, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18),
            count: after.entries, maximum: after.maximum, buckets: single.buckets, rules: single.rules, notices: single.notices)
        return Run(report: report, racesLost: racesLost, problems: check(report, racesLost: racesLost))
    }

    /// What `pressure` must say about the lab, as sentences for the ones it got wrong.
    public func check(_ report: PressureReport, racesLost: Int) -> [String] {
        var problems: [String] = []
        guard let table = report.table else { return ["pressure could not read the lab's table"] }
        let best = table.bestSaving
        if best?.setting != .tcpCloseWait || best?.loweredTo != 60 || best?.freed != halfClosed {
            problems.append("the best saving should be close_wait at 60 s freeing \(halfClosed) entries, not \(best.map { "\($0.setting.sysctl) at \($0.loweredTo) s freeing \($0.freed)" } ?? "none")")
        }
        if table.heldBySetting[.tcpCloseWait] != halfClosed || table.heldBySetting[.tcpEstablished] != established {
            problems.append("close_wait should hold \(halfClosed) entries and established \(established), not \(table.heldBySetting[.tcpCloseWait] ?? 0) and \(table.heldBySetting[.tcpEstablished] ?? 0)")
        }
        let top = table.destinations.contributors.first
        if top?.key.endpoint != Self.webService || top?.entries != halfClosed {
            problems.append("the top destination should be \(Self.webService) with \(halfClosed) entries, not \(top.map { "\($0.key.endpoint) with \($0.entries)" } ?? "none")")
        }
        if table.stale?.entries != 1 || table.stale?.kept.first?.reply.source != Self.vanishedDNS.address {
            problems.append("exactly the DNS flow to \(Self.vanishedDNS) should be stale, not \(table.stale?.entries ?? 0) entries")
        }
        if table.unreplied.refreshed < 1 { problems.append("the retried DNS flow should count as an UNREPLIED entry kept alive") }
        let kinds = Set(report.findings.map(\.kind))
        for kind in [FindingKind.conntrackLongTimeouts, .conntrackStaleEntries, .conntrackUnrepliedEntries] where !kinds.contains(kind) {
            problems.append("no \(kind.rawValue) finding")
        }
        let counted = report.delta?.growth[.insertFailed] ?? 0
        if racesLost > 0 && (counted == 0 || !kinds.contains(.conntrackInsertFailures)) {
            problems.append("\(racesLost) SYNs lost their insert race, but pressure counted insert_failed +\(counted)\(kinds.contains(.conntrackInsertFailures) ? "" : " and made no finding")")
        }
        return problems
    }
}

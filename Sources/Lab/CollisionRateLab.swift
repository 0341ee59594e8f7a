import Diagnosis
import Glibc
import KernelIO
import NetCore
import Sockets

/// Where the measured connects go.
public enum ConnectPattern: String, Sendable, CaseIterable {
    /// Each connect to its own service address: the kernel hashes a fresh port offset
    /// for every one.
    case manyDestinations = "many-destinations"
    /// Every connect to one service address: the kernel steps through the range from one
    /// hashed offset, by the per-destination perturbation.
    case oneDestination = "one-destination"
}

/// What `CollisionRateLab.measure` saw, beside what the model expects.
public struct CollisionMeasurement: Sendable {
    public var pattern: ConnectPattern
    public var connects: Int
    /// Leaked proxy sockets, and how many of them diagnosis found as leaked first-pass ports.
    public var leaks: Int
    public var poisonedFirstPass: Int
    /// N′: the first-pass ports connect() picks from.
    public var firstPassSpace: Int
    /// Connects whose kernel-picked port was a leaked socket's peer port.
    public var picks: Int
    /// Connects left unanswered: their SYN met a leaked socket (the rest were refused at
    /// once: nothing listens on the redirect port during the measurement).
    public var collisions: Int
    /// Distinct leaks met by a collision.
    public var leaksHit: Int
    /// Connects still unanswered at the deadline whose SYN met no leak (no challenge ACK
    /// followed): slowed by a busy machine, not counted as collisions.
    public var slowConnects: Int = 0
    /// TcpExtTCPSYNChallenge, TcpExtTCPChallengeACK... increases over the measurement.
    public var counterDeltas: [String: UInt64]
    /// The model's expectation for these connects (x_i = connects / N′ per leak).
    public var expected: CollisionExpectation
    /// What a uniform choice over the whole range would give: connects × leaks / range.
    public var uniformPicks: Double

    /// The chance that one connect picks a poisoned port (first-pass leaks over N′).
    public var pickChance: Double { firstPassSpace > 0 ? Double(poisonedFirstPass) / Double(firstPassSpace) : 0 }
    /// The chance that one leak is picked at least once over the connects.
    public var hitChance: Double { firstPassSpace > 0 ? -expm1(-Double(connects) / Double(firstPassSpace)) : 0 }

    /// Whether `observed` successes of `trials` lie within 4.5 binomial standard
    /// deviations (+1 for small counts) of `probability`: a false alarm about once in
    /// 150 000 measurements.
    public static func agrees(_ observed: Int, trials: Int, probability: Double) -> Bool {
        let mean = Double(trials) * probability
        let deviation = (mean * (1 - probability)).squareRoot()
        return abs(Double(observed) - mean) <= 4.5 * deviation + 1
    }

    /// Where the kernel disagreed with the model, one line each.
    public var problems: [String] {
        var problems: [String] = []
        if poisonedFirstPass != leaks {
            problems.append("diagnosis found \(poisonedFirstPass) first-pass poisoned ports, the lab made \(leaks) leaks")
        }
        if !Self.agrees(picks, trials: connects, probability: pickChance) {
            problems.append("\(picks) connects picked a leaked port; the model expects \(formatQuantity(expected.picks))")
        }
        if slowConnects > connects / 20 {
            problems.append("\(slowConnects) connects stayed unanswered without meeting a leak: the machine is too busy to tell collisions apart")
        }
        switch pattern {
        case .manyDestinations:
            if collisions != leaksHit { problems.append("a leak collided more than once over many destinations") }
            if !Self.agrees(collisions, trials: poisonedFirstPass, probability: hitChance) {
                problems.append("\(collisions) leaks were hit; the model expects \(formatQuantity(expected.leaksHit))")
            }
        case .oneDestination:
            if collisions != picks { problems.append("\(picks) picks of a leaked port to one destination but \(collisions) collisions") }
        }
        return problems
    }
}

/// The collision model checked against the kernel: N real leaked sidecar sockets (their
/// peer ports picked by connect(), as an app's are), then thousands of captured connects
/// from the app address, each port picked by the kernel, counted as they land.
///
/// The app's RSTs are dropped before conntrack (raw table), as a kernel without the v6.2
/// fix judges them INVALID: otherwise the first collision would reset its leak and the
/// lab would measure the leaks' end rather than the collision rate.
public final class CollisionRateLab: @unchecked Sendable {
    public let lab: LabNamespace
    public let portRange: ClosedRange<UInt16>
    let listener: StreamSocket
    var proxySockets: [StreamSocket] = []
    public private(set) var leakedPorts: Set<UInt16> = []
    let say: @Sendable (String) -> Void

    /// - Parameter portRange: ip_local_port_range in the lab namespace; small, so a few
    ///   dozen leaks poison a measurable share of it.
    public init(name: String, portRange: ClosedRange<UInt16> = 40000...40999, say: @escaping @Sendable (String) -> Void) throws {
        self.portRange = portRange
        self.say = say
        lab = try LabNamespace(name: name, closeWaitSeconds: 1)
        do {
            try lab.exec(["sysctl", "-q", "-w", "net.ipv4.ip_local_port_range=\(portRange.lowerBound) \(portRange.upperBound)"])
            try lab.exec([
                "iptables", "-w", "-t", "raw", "-A", "OUTPUT", "-p", "tcp", "-s", "10.66.0.5/32",
                "--tcp-flags", "RST", "RST", "-j", "DROP",
            ])
            listener = try lab.namespace.run { try StreamSocket.listen(on: Endpoint(.v4(0), LabNamespace.outboundPort)) }
        } catch {
            lab.remove()
            throw error
        }
        say("namespace \(name): app 10.66.0.5, connects to 10.96.0.0/16 REDIRECTed to 15001, ip_local_port_range \(portRange.lowerBound)-\(portRange.upperBound), the app's RSTs dropped as a pre-6.2 kernel judges them")
    }

    /// Makes `count` leaks: the app connects (the kernel picks its port), the proxy
    /// half-closes, conntrack forgets the flow after close_wait, then the app closes and
    /// its FIN goes nowhere. The proxy keeps its FIN_WAIT2 sockets.
    public func makeLeaks(_ count: Int) throws {
        var app: [StreamSocket] = []
        for _ in 0..<count {
            let socket = try lab.namespace.run {
                try StreamSocket.connect(to: Endpoint(LabNamespace.serviceAddress, 80), fromAddress: LabNamespace.podAddress)
            }
            let proxySide = try listener.accept()
            try proxySide.shutdownWrite()
            leakedPorts.insert(try socket.localEndpoint().port)
            app.append(socket)
            proxySockets.append(proxySide)
        }
        say("\(count) connections half-closed by the proxy; waiting out close_wait (1 s) before the app closes them…")
        usleep(2_500_000)
        app.forEach { $0.close() }
        usleep(300_000)
        say("…leaked: the proxy holds \(count) sockets in FIN_WAIT2 for app ports \(describe(leakedPorts))")
    }

    /// Stops accepting: a connect that misses the leaks is then refused at once, one
    /// that meets a leak stays unanswered. The leaked sockets stay open.
    public func closeListener() { listener.close() }

    /// Makes `connects` captured connects in `pattern` and counts where they land.
    /// - Parameter diagnosis: the lab namespace's diagnosis, taken after `makeLeaks`: the
    ///   model's inputs (poisoned first-pass ports, N′) come from it, as in production.
    public func measure(
        connects: Int, pattern: ConnectPattern, diagnosis: DiagnosisReport
    ) throws -> CollisionMeasurement {
        let exposure = diagnosis.collisions.sources.first { $0.address == LabNamespace.podAddress }
        let poisoned = exposure?.firstPassPoisoned ?? 0
        let space = exposure?.firstPassSpace ?? 0
        let before = try counters()
        var picks = 0
        var collisions = 0
        var hit: Set<UInt16> = []
        var slow = 0
        var challenges = before[Self.synChallenge] ?? 0
        for index in 0..<connects {
            let destination = pattern == .oneDestination
                ? Endpoint(LabNamespace.serviceAddress, 80)
                // 10.96.1.1, 10.96.1.2, … 10.96.1.250, 10.96.2.1, …: one address each.
                : Endpoint(.v4(0x0A60_0000 | UInt32(1 + index / 250) << 8 | UInt32(1 + index % 250)), 80)
            // A connect that lands on a leak never completes; one that does not, completes
            // or is refused within a round trip on the lab's veth. One still unanswered at
            // 150 ms is a collision only if the leak's challenge ACK followed it: a busy
            // machine (CI runs suites side by side) slows some connects that long.
            let (port, outcome) = try lab.namespace.run {
                try StreamSocket.probe(to: destination, fromAddress: LabNamespace.podAddress, waitMilliseconds: 150)
            }
            if leakedPorts.contains(port) { picks += 1 }
            if outcome == .pending {
                if try challengeFollowed(since: &challenges) {
                    collisions += 1
                    hit.insert(port)
                } else {
                    slow += 1
                }
            }
        }
        let after = try counters()
        var deltas: [String: UInt64] = [:]
        for name in CollisionPrediction.counterNames {
            deltas[name] = (after[name] ?? 0) - min(after[name] ?? 0, before[name] ?? 0)
        }
        let perLeak = space > 0 ? Double(connects) / Double(space) : 0
        let rangeSize = Double(Int(portRange.upperBound) - Int(portRange.lowerBound) + 1)
        return CollisionMeasurement(
            pattern: pattern, connects: connects, leaks: leakedPorts.count, poisonedFirstPass: poisoned,
            firstPassSpace: space, picks: picks, collisions: collisions, leaksHit: hit.count, slowConnects: slow, counterDeltas: deltas,
            expected: CollisionExpectation(picksPerLeak: Array(repeating: perLeak, count: poisoned)),
            uniformPicks: Double(connects) * Double(leakedPorts.count) / rangeSize)
    }

    static let synChallenge = "TcpExtTCPSYNChallenge"

    /// Whether a SYN met a leak since `count` was taken (and moves it on). Unanswered
    /// after the probe's wait is not enough: under a busy machine a connect refused by
    /// NAT's other port can be that slow too. A SYN that lands on a FIN_WAIT2 socket
    /// always makes it send a challenge ACK, counted before the ACK's rate limit, and
    /// by the time connect() returns, since loopback delivers in its softirq; looking
    /// again for 2 s covers a delivery a busy machine deferred.
    func challengeFollowed(since count: inout UInt64) throws -> Bool {
        for attempt in 0..<21 {
            if attempt > 0 { usleep(100_000) }
            let now = try counters()[Self.synChallenge] ?? 0
            if now > count {
                count = now
                return true
            }
        }
        return false
    }

    func counters() throws -> [String: UInt64] {
        try lab.namespace.run {
            try ProcFS().tcpCounters()
        }
    }

    func describe(_ ports: Set<UInt16>) -> String {
        let sorted = ports.sorted().map(String.init)
        return sorted.prefix(12).joined(separator: " ") + (sorted.count > 12 ? " …" : "")
    }

    public func tearDown() {
        listener.close()
        proxySockets.forEach { $0.close() }
        proxySockets.removeAll()
        lab.remove()
    }

    deinit { tearDown() }
}

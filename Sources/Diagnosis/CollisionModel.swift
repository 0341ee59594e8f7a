import Conntrack
import Glibc
import NetCore
import Sockets

/// A port an app cannot safely connect from: a leaked proxy socket holds it.
public struct PoisonedPort: Sendable, Hashable, Comparable {
    public var port: UInt16
    /// Linux tries ports of ip_local_port_range's low-end parity first
    /// (__inet_hash_connect): only those are picked before the other half is exhausted.
    public var firstPass: Bool
    /// Seconds the leaked socket still lives (nil: until the proxy restarts).
    public var secondsLeft: Double?

    public static func < (lhs: PoisonedPort, rhs: PoisonedPort) -> Bool { lhs.port < rhs.port }
}

/// How likely the app at one source address is to hit a poisoned port.
public struct SourceExposure: Sendable, Hashable {
    public var address: IPAddress
    /// Outbound: the app in this namespace. Inbound: a remote client, whose own port
    /// range is assumed to be this namespace's.
    public var direction: CaptureDirection
    public var poisoned: [PoisonedPort]
    /// Leaked peer ports outside ip_local_port_range or reserved: never chosen by connect().
    public var unreachablePorts: Int
    /// First-pass ports connect() chooses from: half the range, minus reserved ones.
    public var firstPassSpace: Int
    public var firstPassPoisoned: Int { poisoned.filter(\.firstPass).count }
    public var secondPassPoisoned: Int { poisoned.count - firstPassPoisoned }
    /// The chance that one connect picks a poisoned first-pass port.
    public var fractionPoisoned: Double { firstPassSpace > 0 ? Double(firstPassPoisoned) / Double(firstPassSpace) : 0 }
    /// Expected connects that pick a poisoned port over the leaks' remaining lifetime:
    /// every one collides when the app dials one destination (see `CollisionExpectation`).
    /// nil without a connect rate, infinity when a leak never ends (idle timeout disabled).
    public var expectedCollisions: Double?
    /// Expected leaks met by at least one collision: the collisions on a kernel with the
    /// v6.2 fix (the first ends its leak), and nearly so when the app dials many
    /// destinations. nil without a connect rate.
    public var expectedLeaksHit: Double?
    /// P(at least one collision), treating connects as a Poisson process.
    public var collisionProbability: Double? {
        expectedCollisions.map { $0.isInfinite ? 1 : 1 - exp(-$0) }
    }
}

/// What the picks of poisoned ports turn into, from the expected picks of each leak
/// (x_i = λ·T_i/N′).
///
/// A pick collides only when the kernel sends its SYN to the leaked socket. The first
/// pick of a leaked port always does (the leak's own conntrack entry expired: that is the
/// leak); its new entry then holds the reply tuple 127.0.0.1:15001 → app:port for as long
/// as it lives (SYN retransmits plus nf_conntrack_tcp_timeout_syn_sent). A later pick to
/// the same destination matches that entry and collides again; a pick to another
/// destination clashes with its reply tuple, so NAT's null binding gives it another source
/// port and it misses the leak. On a kernel with the v6.2 fix the first collision's RST
/// resets the leak, so there is no second. Measured in `CollisionRateLab`.
public struct CollisionExpectation: Sendable, Hashable {
    /// Σ x_i: connects that pick a leaked port, all collisions when the app dials a
    /// single destination on a kernel without the fix.
    public var picks: Double
    /// Σ (1 − e^(−x_i)): leaks picked at least once, the collisions when every pick
    /// after the first goes elsewhere (many destinations) or the kernel has the fix.
    public var leaksHit: Double

    public init(picksPerLeak: [Double]) {
        picks = picksPerLeak.reduce(0, +)
        leaksHit = picksPerLeak.reduce(0) { $0 + ($1.isInfinite ? 1 : -expm1(-$1)) }
    }
}

/// The connect rate the model uses, and where it came from.
public struct ConnectRate: Sendable, Hashable {
    public var perSecond: Double
    public var source: String
}

/// The collision prediction: poisoned ports per source address, the expected number
/// of failed (or delayed) connects, the model and its assumptions, and what is
/// colliding right now.
public struct CollisionPrediction: Sendable, Hashable {
    public var sources: [SourceExposure]
    public var connectRate: ConnectRate?
    public var portRange: ClosedRange<UInt16>
    public var reservedPorts: Int
    /// Leaks with a new connection attempt on their tuple at this moment.
    public var liveCollisions: [LeakRecord]
    /// TcpExtTCPChallengeACK, TcpExtTCPSYNChallenge, TcpExtTCPSynRetrans (cumulative
    /// since the namespace was created).
    public var counters: [String: UInt64]

    public static let model = "expected picks of a poisoned port = λ × Σ T_i / N′ over the leaked ports of first-pass parity; leaks hit = Σ (1 − e^(−λ T_i / N′))"

    public var assumptions: [String] {
        [
            "λ: captured connect() calls per second from that source address" + (connectRate.map { ", \(formatQuantity($0.perSecond))/s (\($0.source))" } ?? ", unknown"),
            "T_i: how long leak i still lives: the proxy idle timeout minus its idle time",
            "N′: ports connect() tries first — those of ip_local_port_range's low-end parity (\(portRange.lowerBound)-\(portRange.upperBound)), minus reserved ones; the other parity is used only when they run out",
            "each connect picks uniformly among free first-pass ports (RFC 6056 algorithm 4: an offset hashed from the destination, perturbed per connect)",
            "every pick collides when the app dials one destination; over many destinations only the first pick of each leak does while its attempt's conntrack entry lives (NAT gives later picks another source port), and a kernel with the v6.2 fix ends the leak at its first collision: the collisions lie between leaks hit and picks",
        ]
    }

    public static let counterNames = ["TcpExtTCPChallengeACK", "TcpExtTCPSYNChallenge", "TcpExtTCPSynRetrans"]

    public static func predict(
        leaks: [LeakRecord],
        kernel: KernelFacts,
        connectRate: ConnectRate?,
        counters: [String: UInt64]
    ) -> CollisionPrediction {
        let range = kernel.portRange ?? KernelFacts.defaultPortRange
        let reserved = kernel.reservedPorts.filter { range.contains($0) }
        let parity = range.lowerBound % 2
        let firstPassTotal = (Int(range.upperBound) - Int(range.lowerBound)) / 2 + 1
        let firstPassSpace = firstPassTotal - reserved.filter { $0 % 2 == parity }.count

        let leaked = leaks.filter { $0.classification == .leaked }
        var sources: [SourceExposure] = []
        for (address, group) in Dictionary(grouping: leaked, by: { $0.heldPort.unmapped.address }) {
            var poisoned: [PoisonedPort] = []
            var unreachable = 0
            for leak in group {
                let port = leak.heldPort.port
                guard range.contains(port), !reserved.contains(port) else {
                    unreachable += 1
                    continue
                }
                poisoned.append(PoisonedPort(
                    port: port, firstPass: port % 2 == parity,
                    secondsLeft: leak.reapedInMilliseconds.map { Double($0) / 1000 }))
            }
            var exposure = SourceExposure(
                address: address, direction: group[0].direction, poisoned: poisoned.sorted(),
                unreachablePorts: unreachable, firstPassSpace: firstPassSpace, expectedCollisions: nil, expectedLeaksHit: nil)
            if let rate = connectRate?.perSecond, firstPassSpace > 0 {
                let lifetimes = poisoned.filter(\.firstPass).map { $0.secondsLeft ?? .infinity }
                // No connects: none expected (not 0 × ∞, which is NaN).
                let picks = lifetimes.map { rate == 0 || $0 == 0 ? 0 : rate * $0 / Double(firstPassSpace) }
                let expectation = CollisionExpectation(picksPerLeak: picks)
                exposure.expectedCollisions = expectation.picks
                exposure.expectedLeaksHit = expectation.leaksHit
            }
            sources.append(exposure)
        }
        return CollisionPrediction(
            sources: sources.sorted { $0.address < $1.address },
            connectRate: connectRate,
            portRange: range,
            reservedPorts: reserved.count,
            liveCollisions: leaks.filter { $0.collidingEntry != nil },
            counters: counters.filter { counterNames.contains($0.key) })
    }

    /// Estimates the captured connect rate from Tcp ActiveOpens over the proxy's
    /// uptime: a long-run average. Each captured connect is counted twice — the app's
    /// connect and the proxy's own connect upstream — so the count is halved.
    public static func estimateRate(counters: [String: UInt64], sidecar: SidecarProcessFacts?) -> ConnectRate? {
        guard let opens = counters["TcpActiveOpens"], let uptime = sidecar?.uptimeSeconds, uptime >= 1 else { return nil }
        let rate = Double(opens) / 2 / uptime
        return ConnectRate(
            perSecond: rate,
            source: "estimated: Tcp ActiveOpens \(opens) / 2 over the proxy's \(Int(saturating: uptime)) s uptime; a long-run average, give --connect-rate for a peak")
    }
}

/// A quantity as people read it: integers past 100, one decimal past 1, two
/// significant digits below ("0.0035"), "unbounded" for infinity. Values from outside
/// (a --connect-rate of 1e-300, a snapshot's counters) stay printable: below 1e-6 it says
/// "< 0.000001", past 1e15 it uses an exponent.
public func formatQuantity(_ value: Double) -> String {
    if value.isNaN { return "unknown" }
    if value == 0 { return "0" }
    if value.isInfinite { return value > 0 ? "unbounded" : "-unbounded" }
    if value < 0 { return "-" + formatQuantity(-value) }
    if value >= 1e15 { return "\(value)" }
    if value >= 100 { return String(Int64(saturating: value.rounded())) }
    if value >= 1 { return String(Double(Int64(saturating: value * 10)) / 10) }
    if value < 1e-6 { return "< 0.000001" }
    // Two significant digits for small values.
    var scale = 1.0
    while value * scale < 10 { scale *= 10 }
    return String(Double(Int64(saturating: value * scale)) / scale)
}

import Diagnosis
import Glibc
import Lab
import Live
import TestSupport
import Testing

/// The collision model against the kernel: 40 real leaks, 1000 captured connects whose
/// ports the kernel picks, counted as they land (issue: "the prediction checked against
/// what happens").
@Suite("Collision rate, predicted and observed", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
struct CollisionRateTests {
    static let leaks = 40
    static let connects = 1000

    /// A lab with its leaks made and diagnosed, the listener closed, then measured.
    func measured(_ pattern: ConnectPattern) throws -> CollisionMeasurement {
        let lab = try CollisionRateLab(name: TestNamespace.uniqueName("rate"), say: { _ in })
        defer { lab.tearDown() }
        try lab.makeLeaks(Self.leaks)
        let report = try LiveCollector.collectAndDiagnose(lab.lab.namespace, options: DiagnosisOptions())
        lab.closeListener()
        return try lab.measure(connects: Self.connects, pattern: pattern, diagnosis: report)
    }

    @Test func diagnosisFindsEveryLeakAsAFirstPassPort() throws {
        let result = try measured(.manyDestinations)
        // connect() picked the leaks' ports: all of the range's low-end parity.
        #expect(result.poisonedFirstPass == Self.leaks)
        #expect(result.firstPassSpace == 500)
    }

    @Test func overManyDestinationsEachLeakCollidesOnceAndPicksFollowTheParityModel() throws {
        let result = try measured(.manyDestinations)
        #expect(result.problems.isEmpty, "\(result.problems)")
        // Picks: binomial over the connects, at the first-pass share — twice what a
        // uniform choice over the whole range predicts.
        #expect(CollisionMeasurement.agrees(result.picks, trials: result.connects, probability: result.pickChance),
                "picks \(result.picks), expected \(result.expected.picks)")
        #expect(abs(Double(result.picks) - result.expected.picks) < abs(Double(result.picks) - result.uniformPicks))
        // Collisions: the first pick of each leak; the rest got another source port from
        // NAT (their reply tuple clashed with the first attempt's entry) and were refused.
        #expect(result.collisions == result.leaksHit, "a leak collided twice")
        #expect(result.collisions < result.picks)
        #expect(CollisionMeasurement.agrees(result.collisions, trials: result.poisonedFirstPass, probability: result.hitChance),
                "collisions \(result.collisions), expected \(result.expected.leaksHit)")
        #expect((result.counterDeltas["TcpExtTCPSYNChallenge"] ?? 0) >= UInt64(result.collisions))
    }

    @Test func toOneDestinationEveryPickCollides() throws {
        let result = try measured(.oneDestination)
        // A later pick of a leaked port repeats the first attempt's tuple, matches its
        // conntrack entry and lands on the leak again.
        #expect(result.problems.isEmpty, "\(result.problems)")
        #expect(result.collisions == result.picks)
        #expect(CollisionMeasurement.agrees(result.picks, trials: result.connects, probability: result.pickChance),
                "picks \(result.picks), expected \(result.expected.picks)")
        #expect(result.collisions > result.leaksHit, "no leak collided twice: picks \(result.picks)")
    }
}

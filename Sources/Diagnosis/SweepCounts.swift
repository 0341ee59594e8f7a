/// What a node sweep counts per namespace: the sockets leaked and at risk, and the
/// connections stalled.
public struct SweepCounts: Sendable, Equatable {
    public var leaked = 0
    public var atRisk = 0
    public var stalled = 0

    public init() {}

    public init(_ report: DiagnosisReport) {
        leaked = report.leaks.filter { $0.classification == .leaked }.count
        atRisk = report.leaks.filter { $0.classification == .atRisk }.count
        stalled = report.stalls.reduce(0) { $0 + $1.connections.count }
    }

    public static func + (lhs: Self, rhs: Self) -> Self {
        var sum = lhs
        sum.leaked += rhs.leaked
        sum.atRisk += rhs.atRisk
        sum.stalled += rhs.stalled
        return sum
    }
}

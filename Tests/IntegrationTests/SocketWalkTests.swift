import Diagnosis
import Foundation
import Lab
import Live
import NetCore
import Sockets
import TestSupport
import Testing

/// A namespace with few sockets is read in one unfiltered walk, split by state and port,
/// instead of a capture-port walk and an app-socket walk: the half-close lab read both
/// ways gives the same sockets and the same diagnosis. Needs root; with CI=true it never
/// skips.
@Suite("one socket walk or two", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class SocketWalkTests {
    let lab: HalfCloseLab

    init() throws {
        lab = try HalfCloseLab(name: TestNamespace.uniqueName("walks"), closeWaitSeconds: 2, say: { _ in })
        try lab.build()
    }

    deinit { lab.tearDown() }

    /// What `collect` read, with the names of the phases it went through.
    func collect(singleWalkSockets: Int) throws -> (DiagnosisInput, [String]) {
        let phases = PhaseNames()
        var collector = LiveCollector(namespace: lab.lab.namespace, trace: { name, _ in phases.append(name) })
        collector.singleWalkSockets = singleWalkSockets
        return (try collector.collect(profile: nil), phases.names)
    }

    /// A socket as both readings must agree on (tcp_info's timers move between them).
    struct Identity: Hashable {
        var state: TCPState
        var local: Endpoint
        var remote: Endpoint
        var inode: UInt64
        init(_ socket: TCPSocket) { (state, local, remote, inode) = (socket.state, socket.local, socket.remote, socket.inode) }
    }

    @Test func bothReadingsGiveTheSameSocketsAndDiagnosis() throws {
        let (one, onePhases) = try collect(singleWalkSockets: Int.max)
        let (two, twoPhases) = try collect(singleWalkSockets: 0)
        #expect(onePhases.contains { $0.hasPrefix("sock_diag: one walk") }, "\(onePhases)")
        #expect(!onePhases.contains { $0.contains("app sockets on ephemeral ports") }, "\(onePhases)")
        #expect(twoPhases.contains { $0.contains("app sockets on ephemeral ports") } && !twoPhases.contains { $0.hasPrefix("sock_diag: one walk") }, "\(twoPhases)")

        let first = Set(one.sockets.map(Identity.init))
        let second = Set(two.sockets.map(Identity.init))
        #expect(first == second, "only in one walk: \(first.subtracting(second)); only in two: \(second.subtracting(first))")
        // The lab's half-closed app ends (CLOSE_WAIT on ephemeral ports) and its leaked
        // proxy socket are among them: the split kept both kinds.
        #expect(first.contains { $0.state == .closeWait } && first.contains { $0.state == .finWait2 && $0.local.port == 15001 })
        // Only the app ends on a suspect's peer port are kept: the others have no use.
        let peerPorts = Set(first.filter { $0.state == .finWait2 }.map(\.remote.port))
        let appEnds = first.filter { [.closeWait, .lastAck, .finWait1, .closing].contains($0.state) }
        #expect(!appEnds.isEmpty && appEnds.allSatisfy { peerPorts.contains($0.local.port) }, "\(appEnds)")

        let reports = [one, two].map { Diagnosis.diagnose($0, options: DiagnosisOptions()) }
        for report in reports { #expect(lab.check(report).isEmpty, "\(lab.check(report))") }
        #expect(Set(reports[0].leaks.map { Identity($0.socket) }) == Set(reports[1].leaks.map { Identity($0.socket) }))
    }
}

/// The trace's phase names, appended from the collector's threads.
final class PhaseNames: @unchecked Sendable {
    private var list: [String] = []
    private let lock = NSLock()
    func append(_ name: String) { lock.withLock { list.append(name) } }
    var names: [String] { lock.withLock { list } }
}

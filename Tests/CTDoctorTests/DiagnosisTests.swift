import Glibc
import Conntrack
import Diagnosis
import NetCore
import Offline
import Sockets
import TestSupport
import Testing

/// Builds the namespaces the tests diagnose: a sidecar listening on its capture ports
/// and FIN_WAIT2 proxy sockets with (or without) their conntrack entries.
struct Pod {
    var sockets: [TCPSocket] = []
    var conntrack: [ConntrackEntry] = []
    var owners: [UInt64: [SocketOwner]] = [:]
    var kernel = KernelFacts(release: "6.18.44", closeWaitTimeout: 60, ignoreInvalidRST: 0, beLiberal: 0, conntrackCount: 100, conntrackMax: 262_144, portRange: 32768...60999)
    var sidecar = SidecarProfile.istio
    var proxyAddress = IPAddress.loopbackV4
    var app = IPAddress("10.66.0.5")!
    var nextInode: UInt64 = 100

    init(sidecar: SidecarProfile = .istio, process: String = "envoy") {
        self.sidecar = sidecar
        for port in sidecar.capturePorts {
            let inode = next()
            sockets.append(TCPSocket(family: .ipv4, state: .listen, local: Endpoint(.v4(0), port), remote: Endpoint(.v4(0), 0), inode: inode))
            owners[inode] = [SocketOwner(pid: 42, command: process, fd: Int32(port % 100))]
        }
    }

    mutating func next() -> UInt64 {
        nextInode += 1
        return nextInode
    }

    /// A proxy socket in FIN_WAIT2 for the app's port, idle for `idle` ms, and (unless
    /// `state` is nil) the flow's conntrack entry with `secondsLeft`.
    mutating func halfClosed(
        appPort: UInt16, state: ConntrackTCPState? = .closeWait, secondsLeft: UInt32 = 30, idle: UInt32 = 5000,
        port: UInt16? = nil, inode: UInt64? = nil, appSocket: TCPState? = nil
    ) {
        let capture = port ?? sidecar.outboundPort
        let proxy = Endpoint(proxyAddress, capture)
        let peer = Endpoint(app, appPort)
        let info = TCPInfo(lastDataSentMilliseconds: idle, lastDataReceivedMilliseconds: idle, lastAckReceivedMilliseconds: idle)
        sockets.append(TCPSocket(family: proxy.address.family, state: .finWait2, local: proxy, remote: peer, inode: inode ?? next(), info: info))
        let service = Endpoint(app.family == .ipv4 ? IPAddress("10.96.0.10")! : IPAddress("fd00:96::10")!, 80)
        if let appSocket {
            sockets.append(TCPSocket(family: peer.address.family, state: appSocket, local: peer, remote: service, inode: next()))
        }
        if let state {
            conntrack.append(ConntrackEntry(
                family: peer.address.family, protocolNumber: 6,
                original: ConntrackTuple(source: app, destination: service.address, sourcePort: appPort, destinationPort: 80),
                reply: ConntrackTuple(source: proxy.address, destination: app, sourcePort: capture, destinationPort: appPort),
                state: .tcp(state), status: [.seenReply, .assured, .confirmed, .destinationNAT], timeout: secondsLeft))
        }
    }

    func input(counters: [String: UInt64] = [:], sidecarProcess: SidecarProcessFacts? = nil) -> DiagnosisInput {
        DiagnosisInput(
            namespace: "test", sockets: sockets, socketSource: .sockDiag, conntrack: conntrack,
            conntrackSource: .lookups(count: 1), owners: owners, sidecarProcess: sidecarProcess, kernel: kernel, counters: counters,
            rules: RulesFacts(invalidDrop: false, source: "fixture"))
    }

    func diagnose(_ options: DiagnosisOptions = DiagnosisOptions(), counters: [String: UInt64] = [:]) -> DiagnosisReport {
        Diagnosis.diagnose(input(counters: counters), options: options)
    }
}

@Suite("Leak classification")
struct LeakClassificationTests {
    @Test func classifiesEachHalfClosedSocketByItsConntrackEntry() throws {
        var pod = Pod()
        pod.halfClosed(appPort: 40000, state: nil, appSocket: .lastAck)  // forgotten, app closed
        pod.halfClosed(appPort: 40002, state: nil)  // forgotten, app socket gone
        pod.halfClosed(appPort: 40004, state: .closeWait, secondsLeft: 30)  // expires long before 1 h
        pod.halfClosed(appPort: 40006, state: .closeWait, secondsLeft: 7200)  // outlives the proxy
        pod.halfClosed(appPort: 40008, state: .lastAck, secondsLeft: 20)  // app closed in time
        let report = pod.diagnose()
        let classes = Dictionary(uniqueKeysWithValues: report.leaks.map { ($0.heldPort.port, $0.classification) })
        #expect(classes == [40000: .leaked, 40002: .leaked, 40004: .atRisk, 40006: .healthy, 40008: .healthy])
        let first = try #require(report.leaks.first { $0.heldPort.port == 40000 })
        #expect(first.appSocket?.state == .lastAck && first.originalDestination == Endpoint(IPAddress("10.96.0.10")!, 80))
        #expect(first.owner?.command == "envoy" && first.ownerInferred)
        #expect(first.reapedInMilliseconds == 3_595_000)
        #expect(report.leaks.first { $0.heldPort.port == 40002 }?.originalDestination == nil)
        #expect(report.findings.first?.id == "leaked-sockets", "the only error comes first")
        #expect(Set(report.findings.filter { $0.severity == .warning }.map(\.id)) == ["close-wait-timeout", "collision-risk", "leak-at-risk"])
        #expect(report.verdict.hasPrefix("2 sidecar sockets leaked"))
    }

    /// connect() gives one ephemeral port to connections to different destinations (the
    /// benchmark's 40,000 half-closed app sockets share ports by the thousand): the app
    /// end is the one that dialled the flow's original destination, and a port shared
    /// after conntrack forgot the flow names no app end and no destination.
    @Test func anAppPortSharedWithOtherDestinationsNamesNoGuessedAppEnd() throws {
        var pod = Pod()
        pod.halfClosed(appPort: 40020, state: nil, appSocket: .closeWait)  // forgotten
        pod.halfClosed(appPort: 40022, state: .closeWait, secondsLeft: 30, appSocket: .closeWait)  // still known
        pod.halfClosed(appPort: 40024, state: nil, appSocket: .lastAck)  // forgotten, the only one on its port
        let elsewhere = Endpoint(IPAddress("10.96.7.7")!, 5432)
        for port: UInt16 in [40020, 40022] {
            // Listed first, as a walk of the socket hash may hand it over.
            pod.sockets.insert(
                TCPSocket(family: .ipv4, state: .lastAck, local: Endpoint(pod.app, port), remote: elsewhere, inode: pod.next()), at: 0)
        }
        let report = pod.diagnose()
        let byPort = Dictionary(uniqueKeysWithValues: report.leaks.map { ($0.heldPort.port, $0) })
        let forgotten = try #require(byPort[40020])
        #expect(forgotten.classification == .leaked && forgotten.appSocket == nil && forgotten.originalDestination == nil)
        #expect(forgotten.reason.contains("2 app sockets are on its peer's address and port"))
        #expect(!forgotten.reason.contains("LAST_ACK"), "the other destination's LAST_ACK socket is not this flow's")
        let known = try #require(byPort[40022])
        #expect(known.appSocket?.remote == Endpoint(IPAddress("10.96.0.10")!, 80) && known.appSocket?.state == .closeWait)
        let alone = try #require(byPort[40024])
        #expect(alone.appSocket?.state == .lastAck && alone.originalDestination == Endpoint(IPAddress("10.96.0.10")!, 80))
    }

    @Test func aSYNSentEntryOnALeakedTupleIsACollisionInProgress() {
        var pod = Pod()
        pod.halfClosed(appPort: 40010, state: .synSent, secondsLeft: 110)
        let report = pod.diagnose()
        #expect(report.leaks.first?.classification == .leaked)
        #expect(report.leaks.first?.collidingEntry?.tcpState == .synSent)
        #expect(report.collisions.liveCollisions.count == 1)
        #expect(report.findings.contains { $0.id == "live-collision" && $0.severity == .error })
        #expect(report.verdict.hasPrefix("COLLIDING NOW"))
    }

    @Test func ignoresOrphansAndSocketsOffTheCapturePorts() {
        var pod = Pod()
        pod.halfClosed(appPort: 40012, state: nil, inode: 0)  // orphan: tcp_fin_timeout reaps it
        pod.halfClosed(appPort: 40014, state: nil, port: 8080)  // the app's own server port
        let report = pod.diagnose()
        #expect(report.leaks.isEmpty && report.orphans == 1)
        #expect(report.verdict.hasPrefix("Healthy"))
        #expect(report.findings(atLeast: .warning).isEmpty)
    }

    @Test func handlesIPv6WhereRedirectRepliesFromLoopback() {
        var pod = Pod()
        pod.proxyAddress = .loopbackV6
        pod.app = IPAddress("fd00::5")!
        // IPv6 connections come from the proxy's [::] listener (an IPv4 0.0.0.0 one cannot
        // accept them).
        pod.sockets.append(TCPSocket(family: .ipv6, state: .listen, local: Endpoint(.v6(high: 0, low: 0), 15001), remote: Endpoint(.v6(high: 0, low: 0), 0), inode: pod.next()))
        pod.halfClosed(appPort: 41000, state: nil)
        pod.halfClosed(appPort: 41002, state: .closeWait, secondsLeft: 12)
        let classes = pod.diagnose().leaks.map(\.classification)
        #expect(classes == [.leaked, .atRisk])
    }

    @Test func matchesDualStackSocketsThatReportMappedAddresses() {
        var pod = Pod()
        pod.halfClosed(appPort: 42000, state: .closeWait, secondsLeft: 40)
        // A [::]:15001 listener reports its IPv4 connections as ::ffff:a.b.c.d, while
        // conntrack tracks them as IPv4.
        let index = pod.sockets.lastIndex { $0.state == .finWait2 }!
        pod.sockets[index].local = Endpoint(IPAddress("::ffff:127.0.0.1")!, 15001)
        pod.sockets[index].remote = Endpoint(IPAddress("::ffff:10.66.0.5")!, 42000)
        pod.sockets[index].family = .ipv6
        #expect(pod.diagnose().leaks.first?.classification == .atRisk)
    }

    @Test func knowsLinkerdPortsAndInboundCaptures() {
        var pod = Pod(sidecar: .linkerd, process: "linkerd2-proxy")
        pod.halfClosed(appPort: 43000, state: nil)
        pod.halfClosed(appPort: 43002, state: nil, port: 4143)
        let report = pod.diagnose()
        #expect(report.sidecar?.profile == .linkerd && report.sidecar?.process?.command == "linkerd2-proxy")
        #expect(report.leaks.map(\.direction).sorted { $0.rawValue < $1.rawValue } == [.inbound, .outbound])
        let remedy = report.findings.first { $0.id == "leaked-sockets" }?.remedy ?? ""
        // The annotation as the injector reads it: a Go duration, at least the idle timeout
        // assumed (1 h), applied only by a root linkerd-init.
        #expect(remedy.contains("config.linkerd.io/close-wait-timeout: \"3600s\""), "\(remedy)")
        #expect(remedy.contains("proxyInit.runAsRoot=true"))
    }

    /// A real capture: one client port to two pod ports funnelled into 15006; NAT moved
    /// the second flow's port, and only conntrack says so (the proxy's socket shows 2181).
    @Test func findsAnInboundClashNATResolvedInARealCapture() throws {
        let conntrack = try PastedInput.conntrack(try Fixture.bytes("handmade/inbound-clash-conntrack-L.txt"), source: "ct")
        let sockets = try PastedInput.sockets(try Fixture.bytes("handmade/inbound-clash-ss-tanoi.txt"), source: "ss")
        let input = PastedInput.input(conntrack: conntrack, conntrackPath: "ct", sockets: sockets, socketsPath: "ss")
        let report = Diagnosis.diagnose(input, options: DiagnosisOptions(sidecar: .istio))
        let finding = try #require(report.findings.first { $0.kind == .inboundPortRemapped })
        #expect(finding.severity == .warning && finding.kind.section == .collisions)
        #expect(finding.evidence.first == "10.77.0.9:40000 -> :9090 REDIRECTed to :15006, reply to port 2181 (CLOSE_WAIT, 59 s left)")
        #expect(sockets.sockets.contains { $0.remote.port == 2181 }, "the proxy's socket shows the moved port")
        #expect(!report.findings.contains { $0.kind == .inboundUnreplied })
    }

    /// SYN_SENT [UNREPLIED] toward the inbound port, old enough not to be in flight;
    /// a connect one second old, and entries of other ports, are not judged.
    @Test func unansweredInboundSYNsAreErrorsOnceNotInFlight() {
        var pod = Pod()
        func entry(client: UInt16, podPort: UInt16, replyPort: UInt16, timeout: UInt32) -> ConntrackEntry {
            ConntrackEntry(
                family: .ipv4, protocolNumber: IPProtocolName.tcp,
                original: ConntrackTuple(source: IPAddress("10.1.2.3")!, destination: pod.app, sourcePort: client, destinationPort: podPort),
                reply: ConntrackTuple(source: pod.app, destination: IPAddress("10.1.2.3")!, sourcePort: replyPort, destinationPort: client),
                state: .tcp(.synSent), status: [.destinationNAT], timeout: timeout)
        }
        pod.kernel.synSentTimeout = 120
        pod.conntrack = [
            entry(client: 41000, podPort: 8080, replyPort: 15006, timeout: 100),
            entry(client: 41002, podPort: 8080, replyPort: 15006, timeout: 119),
            entry(client: 41004, podPort: 8080, replyPort: 8080, timeout: 100),
        ]
        let report = pod.diagnose()
        let finding = report.findings.first { $0.kind == .inboundUnreplied }
        #expect(finding?.severity == .error)
        #expect(finding?.evidence.filter { $0.contains("REDIRECTed") }.count == 1, "\(finding?.evidence ?? [])")
        #expect(finding?.evidence.first?.hasPrefix("10.1.2.3:41000 -> :8080") == true)
        // A copied table does not say the namespace's syn_sent timeout: no age, no verdict.
        pod.kernel.synSentTimeout = nil
        #expect(!pod.diagnose().findings.contains { $0.kind == .inboundUnreplied })
    }

    /// Ambient's leaks join as a sidecar's do; the proxy named from another namespace, its
    /// idle timeout unknown, and HBONE tunnels idle 10 min or more reported.
    @Test func ambientLeaksJoinAndIdleTunnelsAreCounted() {
        var pod = Pod(sidecar: .ambient, process: "ztunnel")
        pod.sockets.append(TCPSocket(family: .ipv4, state: .listen, local: Endpoint(.v4(0), 15008), remote: Endpoint(.v4(0), 0), inode: pod.next()))
        pod.halfClosed(appPort: 43000, state: nil)
        let idle = TCPInfo(lastDataSentMilliseconds: 1_200_000, lastDataReceivedMilliseconds: 1_200_000, lastAckReceivedMilliseconds: 1_200_000)
        let busy = TCPInfo(lastDataSentMilliseconds: 1_000, lastDataReceivedMilliseconds: 1_000, lastAckReceivedMilliseconds: 1_000)
        for (port, info) in [(51000, idle), (51002, busy)] as [(UInt16, TCPInfo)] {
            pod.sockets.append(TCPSocket(
                family: .ipv4, state: .established, local: Endpoint(pod.app, 15008), remote: Endpoint(IPAddress("10.70.0.9")!, port),
                inode: pod.next(), info: info))
        }
        let report = pod.diagnose()
        #expect(report.sidecar?.profile == .ambient)
        #expect(report.leaks.first?.classification == .leaked)
        #expect(report.findings.first { $0.kind == .leakedSockets }?.remedy.contains("ztunnel") == true)
        #expect(report.idleTimeout.source.contains("ztunnel"), "\(report.idleTimeout.source)")
        let tunnels = report.findings.first { $0.kind == .idleHBONETunnels }
        #expect(tunnels?.severity == .info)
        #expect(tunnels?.evidence == ["10.66.0.5:15008 <-> 10.70.0.9:51000, idle 20m0s"], "\(tunnels?.evidence ?? [])")
    }

    /// A client whose live flows enter the funnel on two pod ports can clash with itself;
    /// one that dials a single pod port cannot.
    @Test func predictsInboundClashesForClientsOnSeveralPodPorts() {
        var pod = Pod()
        func flow(_ client: String, _ port: UInt16, podPort: UInt16) -> ConntrackEntry {
            ConntrackEntry(
                family: .ipv4, protocolNumber: IPProtocolName.tcp,
                original: ConntrackTuple(source: IPAddress(client)!, destination: pod.app, sourcePort: port, destinationPort: podPort),
                reply: ConntrackTuple(source: pod.app, destination: IPAddress(client)!, sourcePort: 15006, destinationPort: port),
                state: .tcp(.established), status: [.seenReply, .assured, .destinationNAT], timeout: 7000)
        }
        pod.conntrack = [
            flow("10.1.2.3", 41000, podPort: 8080), flow("10.1.2.3", 41002, podPort: 8080), flow("10.1.2.3", 41004, podPort: 9090),
            flow("10.1.2.4", 41000, podPort: 8080), flow("10.1.2.4", 41002, podPort: 8080),
        ]
        let finding = pod.diagnose().findings.first { $0.kind == .inboundClashRisk }
        #expect(finding?.severity == .info)
        #expect(finding?.evidence.first?.hasPrefix("10.1.2.3: 3 live flows to ports 8080, 9090; P(clash) ≈ ") == true, "\(finding?.evidence ?? [])")
        #expect(finding?.evidence.contains { $0.hasPrefix("10.1.2.4") } == false)
        let exposure = InboundClashAnalysis.exposure(in: pod.conntrack, profile: .istio, portRange: 32768...60999)
        #expect(exposure.map(\.perConnect) == [3.0 / 14116])
    }

    @Test func aGivenSidecarOverridesDetection() {
        var pod = Pod()
        pod.halfClosed(appPort: 44000, state: nil, port: 7001)
        #expect(pod.diagnose().leaks.isEmpty)
        let report = pod.diagnose(DiagnosisOptions(sidecar: SidecarProfile(spec: "ports:7001,7002")))
        #expect(report.leaks.count == 1 && report.sidecar?.wasGiven == true)
    }

    @Test func withoutASidecarThereIsNothingToDiagnose() {
        let report = Diagnosis.diagnose(DiagnosisInput(namespace: "bare", sockets: [], socketSource: .sockDiag, conntrack: [], conntrackSource: .lookups(count: 0)))
        #expect(report.sidecar == nil && report.findings.map(\.id) == ["no-sidecar"])
        #expect(report.worstSeverity == .info)
    }

    @Test func theIdleTimeoutComesFromTheOptionThenTheEnvironmentThenTheDefault() {
        var pod = Pod()
        pod.halfClosed(appPort: 45000, state: .closeWait, secondsLeft: 50, idle: 10_000)
        let input = pod.input(sidecarProcess: SidecarProcessFacts(pid: 42, command: "envoy", idleTimeoutSetting: "30s"))
        let fromEnvironment = Diagnosis.diagnose(input)
        #expect(fromEnvironment.idleTimeout.seconds == 30 && fromEnvironment.idleTimeout.source.contains("ISTIO_META_IDLE_TIMEOUT=30s"))
        // 50 s left on the entry against 20 s left before the proxy reaps the socket.
        #expect(fromEnvironment.leaks.first?.classification == .healthy)
        let given = Diagnosis.diagnose(input, options: DiagnosisOptions(idleTimeoutSeconds: 0))
        #expect(given.leaks.first?.classification == .atRisk && given.leaks.first?.reapedInMilliseconds == nil)
        var bad = input
        bad.sidecarProcess?.idleTimeoutSetting = "soon"
        let fallback = Diagnosis.diagnose(bad)
        #expect(fallback.idleTimeout.seconds == 3600 && fallback.notices.contains { $0.contains("soon") })
    }

    /// A process on the capture ports that is no known proxy is named as what it is,
    /// and Envoy's one-hour default is marked as an assumption, not stated as its own.
    @Test func anUnknownProxyIsNamedAndItsIdleTimeoutMarkedAssumed() {
        var pod = Pod(process: "haproxy")
        pod.halfClosed(appPort: 45000, state: nil)
        let report = pod.diagnose()
        #expect(report.sidecar?.evidence.contains("haproxy (pid 42), which is not Envoy") == true, "\(report.sidecar?.evidence ?? "")")
        #expect(report.idleTimeout.source.hasPrefix("assumed") && report.idleTimeout.source.contains("haproxy"))
        #expect(report.notices.contains { $0.contains("the proxy is haproxy, not Envoy") })
        let given = pod.diagnose(DiagnosisOptions(idleTimeoutSeconds: 300))
        #expect(given.idleTimeout.source == "given with --idle-timeout")
        let envoy = Pod().diagnose()
        #expect(!envoy.idleTimeout.source.hasPrefix("assumed") && !(envoy.sidecar?.evidence.contains("not Envoy") ?? true))
    }

    @Test func latentRisksAreInformationUntilSomethingHalfCloses() {
        let quiet = Pod().diagnose()
        let latent = quiet.findings.first { $0.id == "close-wait-timeout" }
        #expect(latent?.severity == .info, "stock Istio: 60 s close_wait against a 1 h idle timeout")
        var busy = Pod()
        busy.halfClosed(appPort: 46000, state: .closeWait, secondsLeft: 20)
        #expect(busy.diagnose().findings.first { $0.id == "close-wait-timeout" }?.severity == .warning)
    }

    @Test func aNearlyFullTableIsReported() {
        var pod = Pod()
        pod.kernel.conntrackCount = 255_000
        let finding = pod.diagnose().findings.first { $0.id == "conntrack-table-full" }
        #expect(finding?.severity == .error && finding?.summary.contains("97.2% full") == true)
        // The same thresholds as `pressure`: a warning from 80 %, an error from 90 %.
        pod.kernel.conntrackCount = 230_000
        #expect(pod.diagnose().findings.first { $0.id == "conntrack-table-full" }?.severity == .warning)
        pod.kernel.conntrackCount = 236_000
        #expect(pod.diagnose().findings.first { $0.id == "conntrack-table-full" }?.severity == .error)
    }
}

@Suite("Collision prediction")
struct CollisionPredictionTests {
    @Test func countsPoisonedPortsByParityAndPredictsCollisions() throws {
        var pod = Pod()
        pod.kernel.portRange = 40000...40099  // 50 first-pass (even) ports
        pod.kernel.reservedPorts = [40010, 40011, 50000]  // one even port in range is reserved
        pod.halfClosed(appPort: 40020, state: nil, idle: 600_000)  // even: first pass, 3000 s left
        pod.halfClosed(appPort: 40022, state: nil, idle: 1_600_000)  // even: 2000 s left
        pod.halfClosed(appPort: 40031, state: nil)  // odd: second pass
        pod.halfClosed(appPort: 40010, state: nil)  // reserved: never chosen
        pod.halfClosed(appPort: 39000, state: nil)  // outside the range
        let report = pod.diagnose(DiagnosisOptions(connectRate: 0.49))
        let source = try #require(report.collisions.sources.first)
        #expect(source.address == IPAddress("10.66.0.5"))
        #expect(source.poisoned.map(\.port) == [40020, 40022, 40031])
        #expect(source.firstPassPoisoned == 2 && source.secondPassPoisoned == 1 && source.unreachablePorts == 2)
        #expect(source.firstPassSpace == 49)
        #expect(abs(source.fractionPoisoned - 2.0 / 49) < 1e-12)
        // λ Σ T / N′ = 0.49 × (3000 + 2000) / 49 = 50
        #expect(abs(try #require(source.expectedCollisions) - 50) < 1e-9)
        // Each leak is picked 30 and 20 times on average: both are all but certainly hit,
        // though at most once each when the picks dial other destinations.
        #expect(abs(try #require(source.expectedLeaksHit) - (2 - exp(-30) - exp(-20))) < 1e-9)
        #expect(try #require(source.collisionProbability) > 0.999)
        #expect(report.findings.first { $0.id == "collision-risk" }?.severity == .warning)
    }

    @Test func secondPassPortsAloneAreInformation() {
        var pod = Pod()
        pod.halfClosed(appPort: 40001, state: nil)  // odd, with the default range's even low end
        let finding = pod.diagnose(DiagnosisOptions(connectRate: 10)).findings.first { $0.id == "collision-risk" }
        #expect(finding?.severity == .info)
    }

    @Test func estimatesTheConnectRateFromActiveOpensOverTheProxyUptime() throws {
        var pod = Pod()
        pod.halfClosed(appPort: 40100, state: nil)
        let input = pod.input(counters: ["TcpActiveOpens": 72_000, "TcpExtTCPChallengeACK": 3], sidecarProcess: SidecarProcessFacts(pid: 42, command: "envoy", uptimeSeconds: 3600))
        let report = Diagnosis.diagnose(input)
        let rate = try #require(report.collisions.connectRate)
        #expect(rate.perSecond == 10 && rate.source.contains("ActiveOpens 72000"))
        #expect(report.collisions.counters == ["TcpExtTCPChallengeACK": 3])
    }

    @Test func aLeakThatNeverEndsMakesACollisionCertain() throws {
        var pod = Pod()
        pod.halfClosed(appPort: 40200, state: nil)
        let report = pod.diagnose(DiagnosisOptions(idleTimeoutSeconds: 0, connectRate: 0.01))
        let source = try #require(report.collisions.sources.first)
        #expect(source.expectedCollisions == .infinity && source.collisionProbability == 1)
        #expect(source.expectedLeaksHit == 1)
    }

    @Test func leaksHitGrowsLikePicksWhileRareAndSaturatesAtTheLeakCount() {
        let rare = CollisionExpectation(picksPerLeak: [0.001, 0.002])
        #expect(abs(rare.picks - 0.003) < 1e-15 && abs(rare.leaksHit - 0.003) < 1e-5 && rare.leaksHit < rare.picks)
        let heavy = CollisionExpectation(picksPerLeak: [5, 5, 5])
        #expect(heavy.picks == 15 && heavy.leaksHit < 3 && heavy.leaksHit > 2.97)
        #expect(CollisionExpectation(picksPerLeak: []).leaksHit == 0)
    }
}

@Suite("Kernel audit")
struct KernelAuditTests {
    /// Release, ignore_invalid_rst (nil: absent), INVALID drop rule, expected outcome.
    @Test(arguments: [
        ("6.18.44-fc-v669", 0, false, CollisionOutcome.recovers),
        ("6.2.0", nil, false, .recovers),
        ("6.1.0-18-amd64", 0, false, .uncertain),
        ("6.1.0-18-amd64", 1, false, .recovers),
        ("5.15.0-91-generic", 0, false, .fails),
        ("5.15.0-91-generic", 0, true, .fails),
        ("5.15.0-91-generic", 1, true, .recovers),
        ("5.10.0-27-cloud-amd64", 1, false, .recovers),
        ("5.4.0-150-generic", nil, false, .fails),
        ("garbage", 0, false, .uncertain),
    ] as [(String, Int?, Bool, CollisionOutcome)])
    func decidesWhetherACollisionRecovers(release: String, ignoreInvalidRST: Int?, drop: Bool, outcome: CollisionOutcome) {
        let audit = KernelAudit.audit(
            facts: KernelFacts(release: release, closeWaitTimeout: 60, ignoreInvalidRST: ignoreInvalidRST),
            rules: RulesFacts(invalidDrop: drop, source: "fixture", matchingRule: drop ? "-A PREROUTING -m conntrack --ctstate INVALID -j ISTIO_DROP" : nil),
            idleTimeoutSeconds: 3600)
        #expect(audit.outcome == outcome, "\(audit.reason)")
        if outcome == .fails && drop { #expect(audit.reason.contains("ISTIO_DROP")) }
        #expect(audit.closeWaitShorterThanIdleTimeout == true)
    }

    @Test func theRemedyFitsTheKernel() {
        func remedy(_ release: String, _ rst: Int?) -> String {
            KernelAudit.audit(facts: KernelFacts(release: release, ignoreInvalidRST: rst), rules: RulesFacts(), idleTimeoutSeconds: 3600).collisionRemedy
        }
        #expect(remedy("5.4.0", nil).contains("has no nf_conntrack_tcp_ignore_invalid_rst"))
        #expect(remedy("5.15.0", 0).contains("nf_conntrack_tcp_ignore_invalid_rst=1"))
        #expect(remedy("6.5.0", 0) == "none needed on this kernel")
    }
}

@Suite("Kernel texts")
struct KernelTextTests {
    @Test(arguments: [("1h", 3600.0), ("90s", 90), ("1h30m", 5400), ("500ms", 0.5), ("0s", 0), ("0", 0), ("2.5m", 150), ("\"45s\"", 45)])
    func readsGoDurations(text: String, seconds: Double) {
        #expect(DurationText.goDuration(text) == seconds)
    }

    @Test(arguments: ["", "1x", "h", "1h-", "ten"])
    func refusesMalformedDurations(text: String) {
        #expect(DurationText.goDuration(text) == nil)
    }

    /// What a hostile tenant or a typo puts where a duration belongs: each is refused,
    /// and none reaches an integer conversion (which would trap).
    @Test(arguments: [
        "99999999999999999h", "2562048h", "9223372037s", "1e19", "1e-320", "inf", "-inf", "nan", "0x1p3", "-5", "1..5",
        String(repeating: "9", count: 400), "+3s", "1h\u{0}",
    ])
    func refusesDurationsNoDeadlineCanHold(text: String) {
        #expect(DurationText.seconds(text) == nil, "\(text)")
    }

    @Test func acceptsDurationsUpToGosBound() throws {
        let longest = try #require(DurationText.seconds("2562047h"))
        #expect(longest == 9_223_369_200, "\(longest - 9_223_369_200)")
        #expect(DurationText.seconds("9223372036") == 9223372036)
        #expect(DurationText.seconds("0.000001") == 0.000001)
        #expect(DurationText.seconds(" 90 ") == 90)
    }

    @Test(arguments: [
        (Double.nan, 0), (.infinity, Int64.max), (-.infinity, Int64.min), (1e300, Int64.max), (9.3e18, Int64.max),
        (-1e300, Int64.min), (42.9, 42), (-42.9, -42), (1e-320, 0),
    ] as [(Double, Int64)])
    func convertsWithoutTrapping(value: Double, expected: Int64) {
        #expect(Int64(saturating: value) == expected)
    }

    @Test(arguments: [
        (Double.nan, 0), (.infinity, UInt64.max), (-1, 0), (1.9e19, UInt64.max), (9.3e18, 9_300_000_000_000_000_000), (3600.5, 3600),
    ] as [(Double, UInt64)])
    func convertsUnsignedWithoutTrapping(value: Double, expected: UInt64) {
        #expect(UInt64(saturating: value) == expected)
    }

    @Test func readsPortSysctlsAndReleases() throws {
        #expect(KernelText.portRange("32768\t60999\n") == 32768...60999)
        #expect(KernelText.portRange("60999 32768") == nil)
        #expect(KernelText.reservedPorts("8080,9000-9002\n") == [8080, 9000, 9001, 9002])
        #expect(KernelText.reservedPorts("") == [])
        #expect(KernelText.reservedPorts("9-x") == nil)
        let version = try #require(KernelText.version(ofRelease: "6.1.0-18-amd64"))
        #expect(version == (6, 1, 0))
        #expect(KernelText.version(ofRelease: "Linux") == nil)
    }

    @Test(arguments: [
        ("kernel/iptables-save-istio-invalid-drop.txt", true),
        ("kernel/nft-ruleset-istio-invalid-drop.txt", true),
        ("kernel/nft-ct-state-invalid-drop.txt", true),
        ("kernel/iptables-save-istio-no-drop.txt", false),
    ])
    func findsInvalidDropRules(fixture: String, found: Bool) throws {
        #expect((KernelText.invalidDropRule(in: try Fixture.text(fixture)) != nil) == found)
    }

    @Test func readsNstatCountersFromSnmpAndNetstat() throws {
        let snmp = NetstatParser.counters(try Fixture.bytes("kernel/proc-net-snmp.txt"))
        let netstat = NetstatParser.counters(try Fixture.bytes("kernel/proc-net-netstat.txt"))
        #expect(snmp["TcpActiveOpens"] != nil && snmp["TcpRtoMin"] == 200 && snmp["IpForwarding"] != nil)
        #expect(netstat["TcpExtTCPChallengeACK"] != nil && netstat["TcpExtTCPSYNChallenge"] != nil)
        #expect(snmp["TcpMaxConn"] == nil, "a gauge printing -1 is not a counter")
    }

    @Test func detectsSidecarsFromPortsAndProcesses() {
        let listener = { (port: UInt16, inode: UInt64) in
            TCPSocket(family: .ipv4, state: .listen, local: Endpoint(.v4(0), port), remote: Endpoint(.v4(0), 0), inode: inode)
        }
        let envoy = SidecarDetection.detect(listeners: [listener(15001, 1), listener(15006, 2)], owners: [1: [SocketOwner(pid: 9, command: "envoy", fd: 3)]])
        #expect(envoy?.profile == .istio && envoy?.evidence == "listening on 15001 and 15006 held by envoy (pid 9)")
        let linkerd = SidecarDetection.detect(listeners: [listener(4140, 1), listener(4143, 2)], owners: [:])
        #expect(linkerd?.profile == .linkerd && linkerd?.process == nil)
        #expect(SidecarDetection.detect(listeners: [listener(8080, 1)], owners: [:]) == nil)
        // Ambient: Istio's capture ports and ztunnel's HBONE 15008, held by ztunnel, or by
        // a process that is not Envoy; an Envoy with 15008 stays a sidecar.
        let ambientPorts = [listener(15001, 1), listener(15006, 2), listener(15008, 3)]
        let ztunnel = SidecarDetection.detect(listeners: ambientPorts, owners: [1: [SocketOwner(pid: 7, command: "ztunnel", fd: 9)]])
        #expect(ztunnel?.profile == .ambient && ztunnel?.evidence == "listening on 15001 and 15006 and 15008 held by ztunnel (pid 7)")
        let unnamed = SidecarDetection.detect(listeners: ambientPorts, owners: [:])
        #expect(unnamed?.profile == .istio, "an unknown holder stays a sidecar (sidecars with HBONE listen on 15008 too)")
        let sidecar = SidecarDetection.detect(listeners: ambientPorts, owners: [1: [SocketOwner(pid: 9, command: "envoy", fd: 3)]])
        #expect(sidecar?.profile == .istio)
        #expect(SidecarDetection.detect(listeners: [listener(15001, 1), listener(15006, 2)], owners: [1: [SocketOwner(pid: 7, command: "ztunnel", fd: 9)]])?.profile == .istio, "no HBONE listener, no ambient")
        #expect(SidecarProfile(spec: "ambient") == .ambient)
        #expect(SidecarProfile(spec: "ASM") == .istio)
        #expect(SidecarProfile(spec: "ports:4000,4001")?.capturePorts == [4000, 4001])
        #expect(SidecarProfile(spec: "ports:4000") == nil && SidecarProfile(spec: "envoy") == nil)
    }
}

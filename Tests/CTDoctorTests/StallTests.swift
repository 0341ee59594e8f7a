import Conntrack
import Diagnosis
import NetCore
import Sockets
import Testing

extension Pod {
    /// A connection the sidecar accepted for the app's `appPort`, dialled to
    /// `service`, that has been open `age` ms and carried `bytes` each way.
    mutating func accepted(
        appPort: UInt16, service: Endpoint, age: UInt32, bytes: UInt64 = 0, bytesSent: UInt64? = 0, inbound: Bool = false
    ) {
        let capture = inbound ? sidecar.inboundPort : sidecar.outboundPort
        let proxy = Endpoint(inbound ? service.address : proxyAddress, capture)
        let peer = Endpoint(app, appPort)
        let info = TCPInfo(
            lastDataSentMilliseconds: age, lastDataReceivedMilliseconds: age, lastAckReceivedMilliseconds: age,
            bytesAcked: bytes, bytesReceived: bytes, bytesSent: bytesSent.map { $0 + bytes })
        sockets.append(TCPSocket(family: .ipv4, state: .established, local: proxy, remote: peer, inode: next(), info: info))
        conntrack.append(ConntrackEntry(
            family: .ipv4, protocolNumber: 6,
            original: ConntrackTuple(source: app, destination: service.address, sourcePort: appPort, destinationPort: service.port),
            reply: ConntrackTuple(source: proxy.address, destination: app, sourcePort: capture, destinationPort: appPort),
            state: .tcp(.established), status: [.seenReply, .assured, .confirmed, .destinationNAT], timeout: 432_000))
    }
}

let smtpServer = Endpoint(IPAddress("10.96.0.25")!, 25)

@Suite("Stalled connections")
struct StallTests {
    @Test func aSilentConnectionToAServerFirstPortIsADeadlockUnderIstio() throws {
        var pod = Pod()
        pod.accepted(appPort: 40001, service: smtpServer, age: 8000)
        pod.accepted(appPort: 40002, service: smtpServer, age: 30000)
        let report = pod.diagnose()
        let group = try #require(report.stalls.first)
        #expect(report.stalls.count == 1)
        #expect(group.port == 25 && group.application?.name == "SMTP" && group.direction == .outbound)
        #expect(group.connections.map(\.socket.remote.port) == [40002, 40001], "oldest first")
        #expect(group.connections.first?.originalDestination == smtpServer)
        let finding = try #require(report.findings.first { $0.id == "stalled-server-first" })
        #expect(finding.severity == .error)
        #expect(finding.summary.contains("2 connections to port 25 (SMTP)"))
        #expect(finding.summary.contains("deadlock"))
        #expect(finding.evidence.contains { $0.contains("dialled 10.96.0.25:25") })
        #expect(finding.remedy.contains("tcp-"))
        #expect(report.verdict.contains("2 connections stalled") && report.verdict.contains("port 25 (SMTP)"))
    }

    @Test func underLinkerdItIsATenSecondDelayAndTheFixIsOpaquePorts() throws {
        var pod = Pod(sidecar: .linkerd, process: "linkerd2-proxy")
        pod.accepted(appPort: 40001, service: Endpoint(IPAddress("10.96.0.7")!, 3306), age: 6000)
        let report = pod.diagnose()
        let finding = try #require(report.findings.first { $0.id == "stalled-server-first" })
        #expect(finding.severity == .warning)
        #expect(finding.summary.contains("MySQL") && finding.summary.contains("10 s"))
        #expect(finding.remedy.contains("config.linkerd.io/opaque-ports"))
    }

    @Test func pooledMemcacheConnectionsWaitOutLinkerdsDetection() throws {
        var pod = Pod(sidecar: .linkerd, process: "linkerd2-proxy")
        pod.accepted(appPort: 40001, service: Endpoint(IPAddress("10.96.0.8")!, 11211), age: 6000)
        let finding = try #require(pod.diagnose().findings.first { $0.id.hasPrefix("stalled") })
        #expect(finding.id == "stalled-silent-clients" && finding.severity == .warning)
    }

    @Test func onlySilentEstablishedCaptureSocketsPastTheThresholdCount() {
        var pod = Pod()
        pod.accepted(appPort: 40001, service: smtpServer, age: 3000)  // younger than 5 s
        pod.accepted(appPort: 40002, service: smtpServer, age: 9000, bytes: 20)  // carried data
        pod.accepted(appPort: 40003, service: smtpServer, age: 9000, bytesSent: 1)  // proxy sent bytes not yet acked
        pod.halfClosed(appPort: 40004)  // FIN_WAIT2, not ESTABLISHED
        pod.accepted(appPort: 40005, service: smtpServer, age: 9000)
        pod.sockets[pod.sockets.count - 1].local.port = 8080  // not a capture port
        pod.accepted(appPort: 40006, service: smtpServer, age: 9000)
        pod.sockets[pod.sockets.count - 1].info = nil  // /proc/net/tcp: no tcp_info, no verdict
        #expect(pod.diagnose().stalls.isEmpty)

        var options = DiagnosisOptions()
        options.stallAfterSeconds = 2
        #expect(pod.diagnose(options).stalls.flatMap(\.connections).map(\.socket.remote.port) == [40001])
    }

    @Test func withoutASidecarNothingIsStalled() {
        var pod = Pod()
        pod.accepted(appPort: 40001, service: smtpServer, age: 9000)
        pod.sockets.removeAll { $0.state == .listen }
        let report = pod.diagnose()
        #expect(report.stalls.isEmpty && !report.findings.contains { $0.id.hasPrefix("stalled") })
    }

    @Test func anUnknownPortIsInformationUntilDeclaredServerFirst() throws {
        var pod = Pod()
        pod.accepted(appPort: 40001, service: Endpoint(IPAddress("10.96.0.9")!, 7000), age: 9000)
        let unknown = try #require(pod.diagnose().findings.first { $0.id.hasPrefix("stalled") })
        #expect(unknown.id == "stalled-connections" && unknown.severity == .info)
        #expect(unknown.remedy.contains("--server-first 7000"))

        var options = DiagnosisOptions()
        options.catalog.additions[7000] = ApplicationProtocol("legacy-rpc", .server)
        let declared = try #require(pod.diagnose(options).findings.first { $0.id.hasPrefix("stalled") })
        #expect(declared.id == "stalled-server-first" && declared.severity == .error)
        #expect(declared.summary.contains("legacy-rpc, from --server-first 7000"))
    }

    @Test func aKnownClientFirstProtocolIsNotBlamedOnDetection() throws {
        var pod = Pod()
        pod.accepted(appPort: 40001, service: Endpoint(IPAddress("10.96.0.6")!, 6379), age: 9000)
        let finding = try #require(pod.diagnose().findings.first { $0.id.hasPrefix("stalled") })
        #expect(finding.id == "stalled-connections" && finding.severity == .info)
        #expect(finding.remedy.contains("Redis is client-first"))
    }

    @Test func inboundStallsAreGroupedByTheServersPort() throws {
        var pod = Pod()
        let pod3306 = Endpoint(IPAddress("10.66.0.9")!, 3306)
        pod.accepted(appPort: 50001, service: pod3306, age: 7000, inbound: true)
        pod.accepted(appPort: 50002, service: smtpServer, age: 7000)
        let report = pod.diagnose()
        #expect(report.stalls.map(\.port) == [25, 3306], "server-first groups by port")
        let inbound = try #require(report.stalls.first { $0.port == 3306 })
        #expect(inbound.direction == .inbound && inbound.application?.name == "MySQL")
    }

    @Test func aStallWithoutItsConntrackEntryHasNoPortToName() throws {
        var pod = Pod()
        pod.accepted(appPort: 40001, service: smtpServer, age: 9000)
        pod.conntrack.removeAll()
        let group = try #require(pod.diagnose().stalls.first)
        #expect(group.port == nil && group.application == nil)
        #expect(pod.diagnose().findings.contains { $0.id == "stalled-connections" && $0.summary.contains("an unknown port") })
    }
}

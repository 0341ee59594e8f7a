import Conntrack
import NetCore
import Sockets

/// A connection the sidecar accepted that has carried no byte either way for longer
/// than the stall threshold.
public struct StalledConnection: Sendable, Hashable {
    /// The proxy's accepted socket (local: the capture port).
    public var socket: TCPSocket
    public var direction: CaptureDirection
    /// Where the client connected to before REDIRECT, from the conntrack entry.
    public var originalDestination: Endpoint?
    /// How long it has been silent (for a connection that never carried data: its age).
    public var silentMilliseconds: UInt64
}

/// Stalled connections to one original destination port.
public struct StallGroup: Sendable, Hashable {
    public var port: UInt16?
    public var direction: CaptureDirection
    public var application: ApplicationProtocol?
    public var evidence: ProtocolEvidence?
    public var connections: [StalledConnection]
}

/// Finds connections a protocol-sniffing sidecar is holding: accepted, ESTABLISHED, and
/// silent both ways past a threshold. A server-first protocol there is the deadlock
/// (Istio, ASM) or the 10 s detection delay (Linkerd): the proxy waits for the client's
/// first bytes, the client for the server's greeting.
public enum StallAnalysis {
    public static let defaultThresholdSeconds = 5.0

    /// Whether a capture socket is a stall candidate: ESTABLISHED, no bytes received or
    /// acknowledged, silent at least `thresholdMilliseconds`. Needs tcp_info.
    public static func isSilent(_ socket: TCPSocket, thresholdMilliseconds: UInt64) -> Bool {
        guard socket.state == .established, let info = socket.info else { return false }
        guard info.bytesReceived == 0, info.bytesAcked == 0, (info.bytesSent ?? 0) == 0 else { return false }
        let silent = UInt64(min(info.lastDataReceivedMilliseconds, info.lastDataSentMilliseconds))
        return silent >= thresholdMilliseconds
    }

    public static func analyse(
        sockets: [TCPSocket], conntrack: [ConntrackEntry], profile: SidecarProfile, catalog: ProtocolCatalog,
        thresholdMilliseconds: UInt64
    ) -> [StallGroup] {
        let byReplyTuple = ReplyTupleKey.index(tcpEntries: conntrack)
        let stalled = sockets.filter {
            profile.captures($0.local.port) && isSilent($0, thresholdMilliseconds: thresholdMilliseconds)
        }.map { socket in
            let entry = byReplyTuple[ReplyTupleKey(source: socket.local, destination: socket.remote)]
            let info = socket.info!
            return StalledConnection(
                socket: socket,
                direction: socket.local.port == profile.outboundPort ? .outbound : .inbound,
                originalDestination: entry?.original.destinationEndpoint,
                silentMilliseconds: UInt64(min(info.lastDataReceivedMilliseconds, info.lastDataSentMilliseconds)))
        }
        var groups: [StallGroup] = []
        for (key, members) in Dictionary(grouping: stalled, by: { StallKey(port: $0.originalDestination?.port, direction: $0.direction) }) {
            let found = key.port.flatMap { catalog.byPort($0) }
            groups.append(StallGroup(
                port: key.port, direction: key.direction, application: found?.0, evidence: found?.1,
                connections: members.sorted { $0.silentMilliseconds > $1.silentMilliseconds }))
        }
        return groups.sorted { ($0.application?.isServerFirst == true ? 0 : 1, $0.port ?? 0) < ($1.application?.isServerFirst == true ? 0 : 1, $1.port ?? 0) }
    }

    struct StallKey: Hashable {
        var port: UInt16?
        var direction: CaptureDirection
    }
}

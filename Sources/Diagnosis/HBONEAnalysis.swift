import Sockets

/// Ambient's HBONE tunnels (15008): mTLS HTTP/2 CONNECT connections between ztunnels,
/// pooled and kept open. They arrive by TPROXY, so no NAT entry of theirs can leak them;
/// what is worth knowing is how many sit idle, each holding a socket in the pod's
/// namespace and a conntrack entry (istio/ztunnel#1629 counted ~550k sockets on a node).
public enum HBONEAnalysis {
    /// Idle this long or more, a tunnel is reported.
    public static let longIdleMilliseconds: UInt64 = 10 * 60 * 1000

    public static func isLongIdle(_ socket: TCPSocket) -> Bool {
        guard socket.state == .established, let info = socket.info else { return false }
        return UInt64(info.idleMilliseconds) >= longIdleMilliseconds
    }

    /// The long-idle tunnels on the profile's HBONE port, longest idle first.
    public static func longIdle(in sockets: [TCPSocket], profile: SidecarProfile) -> [TCPSocket] {
        guard let port = profile.hbonePort else { return [] }
        return sockets.filter { $0.local.port == port && isLongIdle($0) }
            .sorted { ($0.info?.idleMilliseconds ?? 0) > ($1.info?.idleMilliseconds ?? 0) }
    }
}

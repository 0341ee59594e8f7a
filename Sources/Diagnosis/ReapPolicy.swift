import Conntrack
import NetCore
import Sockets

/// What `leaks --reap` does with one socket, and why.
public struct ReapDecision: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        /// Verified leaked just now: destroy it (or, in a dry run, say it would).
        case destroy
        /// Not destroyed: it no longer qualifies, or never did.
        case skip
    }

    public var leak: LeakRecord
    public var action: Action
    /// One sentence: what qualified it, or what did not.
    public var reason: String
}

/// Which sidecar sockets may be destroyed. Pure: the classification and a fresh look at
/// the socket and its flow in, a decision out; the I/O is the caller's.
///
/// Only a socket that is certainly leaked qualifies: the proxy's socket on a capture port,
/// still in FIN_WAIT2 and the same socket (inode and cookie) as when it was classified,
/// its conntrack entry still gone (so the app's FIN can never reach it), and idle for at
/// least the minimum. Everything else — at risk, healthy, a socket the proxy or app
/// moved on, a flow conntrack knows again — is refused.
public enum ReapPolicy {
    public static let defaultMinimumIdleMilliseconds: UInt64 = 120_000

    /// The leaks worth re-verifying: classified leaked on a capture port.
    public static func candidates(_ leaks: [LeakRecord], profile: SidecarProfile) -> [LeakRecord] {
        leaks.filter {
            $0.classification == .leaked && $0.provenance == .acceptedFromListener && profile.capturePorts.contains($0.socket.local.port)
        }
    }

    /// The decision for one candidate, given the socket as it is now (nil: gone) and
    /// its flow's conntrack entry now (nil: still forgotten).
    /// - Parameter heldByProxy: whether the proxy process holds the socket's inode (from
    ///   its descriptors), nil when they could not be read.
    public static func decide(
        _ leak: LeakRecord, now current: TCPSocket?, entryNow: ConntrackEntry?, minimumIdleMilliseconds: UInt64,
        profile: SidecarProfile, heldByProxy: Bool?
    ) -> ReapDecision {
        func skip(_ reason: String) -> ReapDecision { ReapDecision(leak: leak, action: .skip, reason: reason) }
        guard leak.classification == .leaked else { return skip("classified \(leak.classification.rawValue), not leaked") }
        guard leak.basis == .conntrack else { return skip("leaked by inference from idle time; conntrack not read") }
        guard leak.provenance == .acceptedFromListener else {
            return skip("not shown to come from the capture listener (\(leak.provenance.rawValue))")
        }
        switch heldByProxy {
        case false?: return skip("held by another process than the proxy")
        case nil: return skip("the proxy's descriptors could not be read, so that it holds the socket is not proven")
        case true?: break
        }
        guard profile.capturePorts.contains(leak.socket.local.port) else {
            return skip("local port \(leak.socket.local.port) is not a capture port of \(profile.mesh.rawValue)")
        }
        guard let current else { return skip("gone since it was classified (closed by the proxy, or reaped)") }
        guard current.inode == leak.socket.inode, current.cookie == leak.socket.cookie,
            current.local == leak.socket.local, current.remote == leak.socket.remote
        else { return skip("the tuple now belongs to another socket") }
        guard current.state == .finWait2 else { return skip("now \(current.state.name), no longer FIN_WAIT2") }
        if let entryNow {
            return skip("conntrack knows the flow again (\(entryNow.tcpState?.name ?? "an entry")): the app's FIN can reach the proxy")
        }
        guard let idle = current.info.map({ UInt64($0.idleMilliseconds) }) else {
            return skip("no tcp_info, so its idle time is unknown")
        }
        guard idle >= minimumIdleMilliseconds else {
            return skip("idle \(idle / 1000) s, under the minimum of \(minimumIdleMilliseconds / 1000) s")
        }
        return ReapDecision(
            leak: leak, action: .destroy,
            reason: "FIN_WAIT2 on capture port \(current.local.port), conntrack entry gone, idle \(idle / 1000) s")
    }
}

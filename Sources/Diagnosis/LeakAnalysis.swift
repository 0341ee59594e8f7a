import Conntrack
import NetCore
import Sockets

/// Which side of the pod a captured socket faces.
public enum CaptureDirection: String, Sendable, Hashable {
    /// The app's own outbound connection, REDIRECTed to the outbound port; the socket's
    /// peer is the app (podIP:ephemeral), in this namespace.
    case outbound
    /// A client's connection to the app, REDIRECTed to the inbound port; the peer is
    /// the remote client.
    case inbound
}

/// What became of a half-closed flow.
public enum LeakClass: String, Sendable, Hashable, Comparable {
    /// Conntrack has forgotten the flow: when the app closes, its FIN is not NATed back
    /// to the proxy, so the proxy's socket stays in FIN_WAIT2 until its idle timeout.
    case leaked
    /// Conntrack still knows the flow, but forgets it before the proxy gives up on the
    /// socket: an app that closes after that leaks it.
    case atRisk = "at-risk"
    /// The entry outlives the socket, or the close is already under way.
    case healthy
    /// Conntrack could not be read, and the socket has been idle too briefly for its
    /// entry to have certainly expired.
    case unknown

    public static func < (lhs: LeakClass, rhs: LeakClass) -> Bool {
        let order: [LeakClass] = [.leaked, .atRisk, .unknown, .healthy]
        return order.firstIndex(of: lhs)! < order.firstIndex(of: rhs)!
    }
}

/// How a FIN_WAIT2 socket on a capture port is known to be the proxy's, and not a
/// socket another process bound to that port to connect out.
public enum SocketProvenance: String, Sendable, Hashable {
    /// Its local address and port are a capture listener's (or fall under a wildcard
    /// listener's) and its owner uid is the listener's: what accept() hands out, since
    /// an accepted socket inherits the listener's uid.
    case acceptedFromListener = "accepted-from-listener"
    /// The input holds no capture listener on that port to compare with (a
    /// grep-filtered paste): presumed the proxy's, never acted on.
    case listenerNotSeen = "listener-not-seen"
}

/// What a classification stands on.
public enum ClassificationBasis: String, Sendable, Hashable {
    /// The flow's conntrack entry was looked up.
    case conntrack
    /// Conntrack was unreadable: inferred from tcp_info's idle time against the
    /// close_wait timeout (no packet either way for longer means no packet refreshed the
    /// entry, so it has expired).
    case idleTime = "idle-time"
}

/// One proxy socket left in FIN_WAIT2 after forwarding a half-close, and its flow.
public struct LeakRecord: Sendable, Hashable {
    /// The proxy's socket (local: the capture port).
    public var socket: TCPSocket
    public var direction: CaptureDirection
    /// Why the socket counts as the proxy's (reap acts only on `acceptedFromListener`).
    public var provenance: SocketProvenance
    public var classification: LeakClass
    public var basis: ClassificationBasis
    /// Why this class, in one sentence.
    public var reason: String
    /// The flow's conntrack entry, nil once forgotten.
    public var entry: ConntrackEntry?
    /// A new connection attempt that reuses this flow's reply tuple right now (SYN_SENT):
    /// the app picked the leaked socket's port and is colliding with it.
    public var collidingEntry: ConntrackEntry?
    /// The app's end of an outbound flow, when it is in this namespace: CLOSE_WAIT (the
    /// app has not closed) or LAST_ACK (it closed and its FIN is unanswered).
    public var appSocket: TCPSocket?
    /// Where the app was connecting to, before REDIRECT: from the entry, or from the
    /// app's socket once the entry is gone.
    public var originalDestination: Endpoint?
    /// The process holding the socket: found by its inode, or — when only the capture
    /// listener's owner is known — that process (`ownerInferred`).
    public var owner: SocketOwner?
    public var ownerInferred: Bool
    /// Milliseconds since the socket last sent or received anything (tcp_info).
    public var idleMilliseconds: UInt64?
    /// Milliseconds until the proxy's idle timeout closes the socket; nil when the
    /// timeout is disabled (the socket stays until the proxy restarts).
    public var reapedInMilliseconds: UInt64?

    /// The app's port this socket holds hostage (the peer port of an outbound socket).
    public var heldPort: Endpoint { socket.remote }
}

/// Finds the proxy sockets stuck after a half-close and classifies each by its
/// conntrack entry.
public enum LeakAnalysis {
    /// - Parameters:
    ///   - idleTimeoutMilliseconds: the proxy's TCP idle timeout; 0 means disabled.
    /// States of the app's end of a flow the proxy half-closed: it got the FIN, and may
    /// have closed since.
    static let appSideStates: TCPStateSet = [.closeWait, .lastAck, .finWait1, .closing]

    public static func analyse(
        sockets: [TCPSocket],
        conntrack: [ConntrackEntry],
        owners: [UInt64: [SocketOwner]],
        profile: SidecarProfile,
        sidecarProcess: SocketOwner?,
        idleTimeoutMilliseconds: UInt64,
        conntrackReadable: Bool = true,
        closeWaitSeconds: Int? = nil
    ) -> [LeakRecord] {
        let byReplyTuple = ReplyTupleKey.index(tcpEntries: conntrack)
        let listeners = captureListeners(in: sockets, profile: profile)
        let suspects = suspects(in: sockets, profile: profile).compactMap { socket in
            provenance(of: socket, listeners: listeners).map { (socket, $0) }
        }
        // Only the suspects' peers matter; a busy pod has thousands of other app sockets
        // in these states, so index just the ports asked about.
        let peerPorts = Set(suspects.map(\.0.remote.port))
        // Several app sockets can share a local endpoint: connect() reuses an ephemeral
        // port for different destinations. Only one of them went through the proxy (two
        // on one redirected tuple would clash in conntrack): the one whose destination is
        // the flow's original destination while its entry lives; once conntrack forgot
        // the flow nothing here says which, and the record names none rather than a guess.
        let appSockets = Dictionary(
            grouping: sockets.lazy.filter { appSideStates.contains($0.state) && peerPorts.contains($0.local.port) },
            by: \.local.unmapped)

        let records = suspects.map { socket, provenance in
            let direction: CaptureDirection = socket.local.port == profile.outboundPort ? .outbound : .inbound
            let key = ReplyTupleKey(source: socket.local, destination: socket.remote)
            let found = byReplyTuple[key]
            // A SYN_SENT entry on this tuple is not the half-closed flow but a new
            // connect() that picked the same port: the old entry is gone.
            let colliding = found.flatMap { isNewAttempt($0) ? $0 : nil }
            let entry = colliding == nil ? found : nil
            let candidates = direction == .outbound ? appSockets[socket.remote.unmapped] ?? [] : []
            let appSocket = appEnd(among: candidates, originalDestination: entry.map { $0.original.destinationEndpoint })
            let idle = socket.info.map { UInt64($0.idleMilliseconds) }
            let reapedIn: UInt64? =
                idleTimeoutMilliseconds == 0 ? nil : idleTimeoutMilliseconds - min(idleTimeoutMilliseconds, idle ?? 0)
            let (classification, reason) = conntrackReadable
                ? classify(entry: entry, colliding: colliding, reapedIn: reapedIn, appSocket: appSocket, appSocketsSharingPort: candidates.count)
                : classifyByIdleTime(idle, closeWaitSeconds: closeWaitSeconds)
            return LeakRecord(
                socket: socket,
                direction: direction,
                provenance: provenance,
                classification: classification,
                basis: conntrackReadable ? .conntrack : .idleTime,
                reason: reason,
                entry: entry,
                collidingEntry: colliding,
                appSocket: appSocket,
                originalDestination: entry.map { $0.original.destinationEndpoint } ?? appSocket?.remote,
                owner: owners[socket.inode]?.first ?? sidecarProcess,
                ownerInferred: owners[socket.inode] == nil && sidecarProcess != nil,
                idleMilliseconds: idle,
                reapedInMilliseconds: reapedIn
            )
        }
        // Records are large: order their indices, then copy each record once.
        let order = records.indices.sorted {
            (records[$0].classification, records[$0].socket.remote) < (records[$1].classification, records[$1].socket.remote)
        }
        return order.map { records[$0] }
    }

    /// FIN_WAIT2 sockets on a capture port that a process still holds. Orphans (inode
    /// 0: the proxy closed them) are reaped by the kernel's tcp_fin_timeout instead.
    public static func suspects(in sockets: [TCPSocket], profile: SidecarProfile) -> [TCPSocket] {
        sockets.filter { $0.state == .finWait2 && profile.captures($0.local.port) && $0.inode != 0 }
    }

    /// The capture listeners, by port.
    static func captureListeners(in sockets: [TCPSocket], profile: SidecarProfile) -> [UInt16: [TCPSocket]] {
        Dictionary(grouping: sockets.filter { $0.state == .listen && profile.captures($0.local.port) }, by: \.local.port)
    }

    /// Whether `socket` came out of a capture listener: nil when a listener on its port
    /// is known and the socket cannot be its (another local address, another owner uid):
    /// a socket some process bound to 127.0.0.1:15006 to connect out is no proxy socket,
    /// however it looks.
    static func provenance(of socket: TCPSocket, listeners: [UInt16: [TCPSocket]]) -> SocketProvenance? {
        // Only a listener of the socket's own family could have accepted it: an IPv4
        // listener says nothing of an IPv6 socket whose listener row the input lacks.
        let candidates = (listeners[socket.local.port] ?? []).filter { $0.family == socket.family }
        guard !candidates.isEmpty else { return .listenerNotSeen }
        let local = socket.local.unmapped.address
        let accepted = candidates.contains { listener in
            let bound = listener.local.unmapped.address
            return (bound == local || bound.isUnspecified) && listener.uid == socket.uid
        }
        return accepted ? .acceptedFromListener : nil
    }

    /// FIN_WAIT2 sockets on a capture port that are not the proxy's: another process's
    /// sockets bound to that port. Not leaks, and never reaped.
    public static func foreign(in sockets: [TCPSocket], profile: SidecarProfile) -> [TCPSocket] {
        let listeners = captureListeners(in: sockets, profile: profile)
        return suspects(in: sockets, profile: profile).filter { provenance(of: $0, listeners: listeners) == nil }
    }

    /// Orphaned FIN_WAIT2 sockets on capture ports (not leaks: the kernel reaps them).
    public static func orphans(in sockets: [TCPSocket], profile: SidecarProfile) -> Int {
        sockets.filter { $0.state == .finWait2 && profile.captures($0.local.port) && $0.inode == 0 }.count
    }

    static func isNewAttempt(_ entry: ConntrackEntry) -> Bool {
        switch entry.tcpState {
        case .synSent?, .synSent2?, .synReceived?: true
        default: false
        }
    }

    /// The app's end of a proxy socket among the app sockets on its peer's endpoint: the
    /// only one, or the one that dialled the flow's original destination when conntrack
    /// still says it; nil when that cannot be told.
    static func appEnd(among candidates: [TCPSocket], originalDestination: Endpoint?) -> TCPSocket? {
        if candidates.count == 1 { return candidates[0] }
        guard let originalDestination else { return nil }
        let matching = candidates.filter { $0.remote.unmapped == originalDestination.unmapped }
        return matching.count == 1 ? matching[0] : nil
    }

    static func classify(
        entry: ConntrackEntry?, colliding: ConntrackEntry?, reapedIn: UInt64?, appSocket: TCPSocket?, appSocketsSharingPort: Int = 1
    ) -> (LeakClass, String) {
        guard let entry else {
            var reason = "conntrack has no entry for the flow any more, so the app's FIN can no longer reach the proxy"
            if colliding != nil {
                reason += "; a new connection from the same port is colliding with the socket right now"
            } else if appSocket?.state == .lastAck {
                reason += "; the app already closed and its FIN went unanswered (its socket is in LAST_ACK)"
            } else if appSocket == nil && appSocketsSharingPort > 1 {
                reason += "; \(appSocketsSharingPort) app sockets are on its peer's address and port (connect() reuses a port for other destinations): which one dialled through the proxy, and so the flow's original destination, is not known"
            }
            return (.leaked, reason)
        }
        guard entry.tcpState == .closeWait, let secondsLeft = entry.timeout else {
            return (.healthy, "conntrack state \(entry.state?.name ?? "?"): the close is proceeding")
        }
        let reapedSeconds = reapedIn.map { Double($0) / 1000 }
        if let reapedSeconds, Double(secondsLeft) >= reapedSeconds {
            return (.healthy, "the conntrack entry (\(secondsLeft) s left) outlives the proxy's idle timeout (\(Int(saturating: reapedSeconds)) s left)")
        }
        let proxy = reapedSeconds.map { "the proxy keeps the socket \(Int(saturating: $0)) s" } ?? "the proxy's idle timeout is disabled"
        return (.atRisk, "conntrack forgets the flow in \(secondsLeft) s while \(proxy): if the app closes after that, the socket leaks")
    }

    /// Seconds past the close_wait timeout before an idle socket's entry counts as
    /// certainly expired: the timer starts at the flow's last packet, which tcp_info's
    /// idle time measures from the socket's side a moment later.
    public static let idleInferenceMarginSeconds = 5

    /// Without conntrack: a half-closed flow whose last packet either way is older than
    /// the close_wait timeout (+ the margin) has lost its entry, because only a packet
    /// would have refreshed it; anything younger cannot be told.
    static func classifyByIdleTime(_ idle: UInt64?, closeWaitSeconds: Int?) -> (LeakClass, String) {
        guard let closeWaitSeconds else {
            return (.unknown, "conntrack is unreadable here and so is the close_wait timeout: nothing to compare the idle time with")
        }
        guard let idle else { return (.unknown, "conntrack is unreadable here and the socket has no tcp_info: its idle time is unknown") }
        let threshold = UInt64(closeWaitSeconds + idleInferenceMarginSeconds) * 1000
        if idle > threshold {
            return (.leaked, "inferred from idle time: no packet either way for \(humanDuration(milliseconds: idle)), longer than the close_wait timeout (\(closeWaitSeconds) s) + \(idleInferenceMarginSeconds) s, so no packet refreshed its conntrack entry and it has expired")
        }
        return (.unknown, "conntrack is unreadable here, and the socket has been idle \(humanDuration(milliseconds: idle)), not yet past the close_wait timeout (\(closeWaitSeconds) s) + \(idleInferenceMarginSeconds) s")
    }
}

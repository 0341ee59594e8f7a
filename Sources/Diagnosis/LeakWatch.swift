import Conntrack
import NetCore
import Sockets

/// One thing `ctdoctor watch` saw happen.
public struct WatchEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Conntrack destroyed a sidecar flow's entry while the proxy's socket was still
        /// half-closed in FIN_WAIT2: from now on the app's FIN cannot reach it.
        case leakBorn = "leak-born"
        /// Already leaked when watching began, or found by a resynchronisation after lost
        /// events: its birth was not seen.
        case leakFound = "leak-found"
        /// A leaked socket is gone (the proxy's idle timeout, a reap, a restart).
        case leakEnded = "leak-ended"
        /// The kernel dropped events (ENOBUFS): what happened meanwhile was re-read.
        case eventsLost = "events-lost"
        /// A new connect() landed on a leaked socket's tuple: conntrack tracked a SYN whose
        /// reply tuple is the leaked socket's, so it is redirected onto that socket.
        case collision
        /// That connect got through (on kernels with the v6.2 fix the app's RST resets the
        /// leaked socket and a retransmitted SYN connects).
        case collisionRecovered = "collision-recovered"
        /// Its entry was destroyed before it ever connected: the connect failed.
        case collisionFailed = "collision-failed"
        /// An accepted connection on a capture port silent both ways past --stall-after: on
        /// a server-first port, a sniffing proxy holding the server's greeting back.
        case stall
        /// That connection spoke or closed; `afterSeconds` is how long it was silent.
        case stallEnded = "stall-ended"
        /// A node watch (--all-netns, --pod) began watching a namespace: a pod appeared,
        /// or the watch started.
        case namespaceAdded = "namespace-added"
        /// A watched namespace is gone from the node (its pod was deleted); its leaks
        /// ended with it.
        case namespaceGone = "namespace-gone"
        /// A namespace could not be watched, or stopped being watchable: the detail says
        /// why; the others are still watched, and it is tried again later.
        case namespaceFailed = "namespace-failed"
    }

    public var kind: Kind
    /// Seconds since the Unix epoch.
    public var time: Double
    /// The proxy's end of the flow and the app's.
    public var proxy: Endpoint?
    public var app: Endpoint?
    /// Where the app meant to connect (the entry's original destination), when known.
    public var originalDestination: Endpoint?
    public var cookie: UInt64?
    /// leak-ended: how long the leak lived, from its birth (or from when it was found).
    public var lifetimeSeconds: Double?
    /// events-lost: how many times the kernel reported an overrun so far.
    public var overruns: Int?
    /// collision-recovered and collision-failed: seconds since the collision began; stall:
    /// how long it has been silent; stall-ended: how long it was.
    public var afterSeconds: Double?
    /// collision-recovered and collision-failed: how much the namespace's TCP counters
    /// that a collision moves (CollisionPrediction.counterNames: challenge ACKs sent, SYN
    /// challenges, SYN retransmits) grew while it lasted; namespace-wide, so other
    /// traffic's share is in it too. Nil when they could not be read.
    public var counterSteps: [String: UInt64]?
    /// stall and stall-ended: the protocol of the port the client dialled, when known.
    public var application: ApplicationProtocol?
    public var detail: String

    public init(
        kind: Kind, time: Double, proxy: Endpoint? = nil, app: Endpoint? = nil, originalDestination: Endpoint? = nil,
        cookie: UInt64? = nil, lifetimeSeconds: Double? = nil, overruns: Int? = nil, afterSeconds: Double? = nil,
        application: ApplicationProtocol? = nil, detail: String
    ) {
        self.application = application
        self.afterSeconds = afterSeconds
        self.kind = kind
        self.time = time
        self.proxy = proxy
        self.app = app
        self.originalDestination = originalDestination
        self.cookie = cookie
        self.lifetimeSeconds = lifetimeSeconds
        self.overruns = overruns
        self.detail = detail
    }
}

/// The state `watch` keeps between events: the leaked sockets it knows, by cookie.
/// Pure: the caller feeds it destroyed entries, the sockets it looked up, and the
/// sockets present at each sweep, and it says what happened.
public struct LeakWatch: Sendable {
    public let capturePorts: Set<UInt16>

    struct Tracked: Sendable {
        var socket: TCPSocket
        var since: Double
        var originalDestination: Endpoint?
    }

    var tracked: [UInt64: Tracked] = [:]
    /// The tracked leaks by the reply tuple a new flow onto them would have.
    var cookieByKey: [ReplyTupleKey: UInt64] = [:]
    /// Collisions under way, by that tuple, with when they began.
    var collisions: [ReplyTupleKey: Double] = [:]

    public init(capturePorts: Set<UInt16>) {
        self.capturePorts = capturePorts
    }

    /// The same state, watching `capturePorts` from now on: a namespace watched again
    /// after a failure keeps the leaks it knew, so they are neither found a second time
    /// nor lost.
    public func watching(_ capturePorts: Set<UInt16>) -> LeakWatch {
        var moved = LeakWatch(capturePorts: capturePorts)
        moved.tracked = tracked
        moved.cookieByKey = cookieByKey
        moved.collisions = collisions
        return moved
    }

    /// The leaked sockets known now.
    public var leakedSockets: [TCPSocket] { tracked.values.map(\.socket) }

    /// The proxy socket a destroyed entry may have left behind: a TCP flow a capture
    /// port answered (REDIRECT), destroyed before the close finished (TIME_WAIT and
    /// CLOSE entries ended cleanly).
    public func suspect(_ entry: ConntrackEntry) -> ReplyTupleKey? {
        guard entry.protocolNumber == IPProtocolName.tcp, capturePorts.contains(entry.reply.sourcePort) else { return nil }
        if let state = entry.tcpState, state == .timeWait || state == .close { return nil }
        return ReplyTupleKey(replyOf: entry)
    }

    /// A destroyed entry and its proxy socket as looked up just after: a leak is born
    /// when that socket is still in FIN_WAIT2.
    public mutating func destroyed(_ entry: ConntrackEntry, proxySocket: TCPSocket?, at time: Double) -> WatchEvent? {
        guard let socket = proxySocket, socket.state == .finWait2, let cookie = socket.cookie, tracked[cookie] == nil else { return nil }
        track(socket, cookie: cookie, since: time, originalDestination: entry.original.destinationEndpoint)
        return WatchEvent(
            kind: .leakBorn, time: time, proxy: socket.local, app: socket.remote, originalDestination: entry.original.destinationEndpoint,
            cookie: cookie,
            detail: "conntrack destroyed the flow (\(entry.tcpState?.name ?? entry.protocolName)) while the proxy's socket was in FIN_WAIT2: the app's FIN can no longer reach it")
    }

    /// A leak seen by a full read (at the start, or after lost events) and not yet known.
    public mutating func found(_ socket: TCPSocket, originalDestination: Endpoint?, at time: Double, why: String) -> WatchEvent? {
        guard let cookie = socket.cookie, tracked[cookie] == nil else { return nil }
        track(socket, cookie: cookie, since: time, originalDestination: originalDestination)
        return WatchEvent(
            kind: .leakFound, time: time, proxy: socket.local, app: socket.remote, originalDestination: originalDestination, cookie: cookie,
            detail: why)
    }

    /// The cookies of the leaks known now: what a socket snapshot taken next can judge.
    public var trackedCookies: Set<UInt64> { Set(tracked.keys) }

    /// The known leaks whose socket is no longer among `present` (FIN_WAIT2 sockets on
    /// the capture ports, by cookie), each ended with its lifetime. `among` limits the
    /// judgement to the leaks known when `present` was read: one born from events read
    /// after that snapshot is not in it, yet not gone.
    public mutating func sweep(
        present: Set<UInt64>, among: Set<UInt64>? = nil, at time: Double,
        why: String = "the proxy's socket is gone (its idle timeout, a reap or a restart)"
    ) -> [WatchEvent] {
        let ended = tracked.filter { !present.contains($0.key) && among?.contains($0.key) != false }.sorted { $0.key < $1.key }
        return ended.map { cookie, leak in
            tracked[cookie] = nil
            // A newer leak on the same tuple owns the key now: keep its mapping.
            if cookieByKey[Self.key(of: leak.socket)] == cookie { cookieByKey[Self.key(of: leak.socket)] = nil }
            return WatchEvent(
                kind: .leakEnded, time: time, proxy: leak.socket.local, app: leak.socket.remote,
                originalDestination: leak.originalDestination, cookie: cookie, lifetimeSeconds: max(0, time - leak.since),
                detail: why)
        }
    }

    mutating func track(_ socket: TCPSocket, cookie: UInt64, since: Double, originalDestination: Endpoint?) {
        tracked[cookie] = Tracked(socket: socket, since: since, originalDestination: originalDestination)
        cookieByKey[Self.key(of: socket)] = cookie
    }

    /// The reply tuple of a flow that would land on this socket.
    static func key(of socket: TCPSocket) -> ReplyTupleKey { ReplyTupleKey(source: socket.local, destination: socket.remote) }

    /// A new entry (conntrack's NEW event): a SYN onto a leaked socket's tuple is a
    /// collision as it happens.
    public mutating func created(_ entry: ConntrackEntry, at time: Double) -> WatchEvent? {
        guard entry.protocolNumber == IPProtocolName.tcp else { return nil }
        let key = ReplyTupleKey(replyOf: entry)
        guard let cookie = cookieByKey[key], let leak = tracked[cookie], collisions[key] == nil else { return nil }
        collisions[key] = time
        return WatchEvent(
            kind: .collision, time: time, proxy: leak.socket.local, app: leak.socket.remote,
            originalDestination: entry.original.destinationEndpoint, cookie: cookie,
            detail: "a new connect() from \(entry.original.sourceEndpoint) to \(entry.original.destinationEndpoint) is redirected onto the leaked socket: its SYN meets a challenge ACK")
    }

    /// An updated entry: a collision whose flow reached ESTABLISHED has recovered.
    public mutating func updated(_ entry: ConntrackEntry, at time: Double) -> WatchEvent? {
        let key = ReplyTupleKey(replyOf: entry)
        guard entry.protocolNumber == IPProtocolName.tcp, let began = collisions[key], entry.tcpState == .established else { return nil }
        collisions[key] = nil
        return WatchEvent(
            kind: .collisionRecovered, time: time, proxy: key.source, app: key.destination,
            originalDestination: entry.original.destinationEndpoint, afterSeconds: max(0, time - began),
            detail: "the connect got through: the app's RST reset the leaked socket and a retransmitted SYN connected")
    }

    /// A destroyed entry of a collision. On a kernel that recovers, the app's RST closes
    /// the colliding entry (CLOSE) and the retransmitted SYN opens another on the same
    /// tuple: the collision stays pending for it. An entry destroyed still in SYN_SENT
    /// never got an answer: the connect failed.
    public mutating func collisionDestroyed(_ entry: ConntrackEntry, at time: Double) -> WatchEvent? {
        let key = ReplyTupleKey(replyOf: entry)
        guard entry.protocolNumber == IPProtocolName.tcp, let began = collisions[key] else { return nil }
        guard entry.tcpState == .synSent || entry.tcpState == .synSent2 else { return nil }
        collisions[key] = nil
        return WatchEvent(
            kind: .collisionFailed, time: time, proxy: key.source, app: key.destination,
            originalDestination: entry.original.destinationEndpoint, afterSeconds: max(0, time - began),
            detail: "the colliding flow's entry ended in SYN_SENT, never answered: the connect failed")
    }

    /// How long a collision may stay without an outcome: past the kernel's default
    /// SYN_SENT timeout (120 s), the connect cannot still be under way.
    public static let collisionOutcomeSeconds = 180.0

    /// Collisions with no outcome after `collisionOutcomeSeconds`, ended as failed.
    public mutating func expireCollisions(at time: Double) -> [WatchEvent] {
        let stale = collisions.filter { time - $0.value >= Self.collisionOutcomeSeconds }.sorted { $0.key < $1.key }
        return stale.map { key, began in
            collisions[key] = nil
            return WatchEvent(
                kind: .collisionFailed, time: time, proxy: key.source, app: key.destination, afterSeconds: time - began,
                detail: "no flow on the collided tuple connected within \(Int(Self.collisionOutcomeSeconds)) s")
        }
    }
}

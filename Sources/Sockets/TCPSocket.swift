import NetCore

/// A TCP socket's state (the TCP_* enum in include/net/tcp_states.h). One endpoint's
/// view, unlike conntrack's state of the whole flow.
public enum TCPState: UInt8, Sendable, Hashable, CaseIterable, Comparable {
    case established = 1  // TCP_ESTABLISHED
    case synSent = 2  // TCP_SYN_SENT
    case synReceived = 3  // TCP_SYN_RECV
    case finWait1 = 4  // TCP_FIN_WAIT1
    /// Our FIN is acknowledged; waiting for the peer's. Without an orphan timer (the
    /// socket still has an owner, as a proxy's half-closed socket does) this can last
    /// forever.
    case finWait2 = 5  // TCP_FIN_WAIT2
    case timeWait = 6  // TCP_TIME_WAIT
    case close = 7  // TCP_CLOSE
    case closeWait = 8  // TCP_CLOSE_WAIT
    case lastAck = 9  // TCP_LAST_ACK
    case listen = 10  // TCP_LISTEN
    case closing = 11  // TCP_CLOSING
    case newSynReceived = 12  // TCP_NEW_SYN_RECV
    case boundInactive = 13  // TCP_BOUND_INACTIVE (6.8+), a pseudo-state of sock_diag requests

    /// The kernel's name, as /proc and ctdoctor print it.
    public var name: String {
        switch self {
        case .established: "ESTABLISHED"
        case .synSent: "SYN_SENT"
        case .synReceived: "SYN_RECV"
        case .finWait1: "FIN_WAIT1"
        case .finWait2: "FIN_WAIT2"
        case .timeWait: "TIME_WAIT"
        case .close: "CLOSE"
        case .closeWait: "CLOSE_WAIT"
        case .lastAck: "LAST_ACK"
        case .listen: "LISTEN"
        case .closing: "CLOSING"
        case .newSynReceived: "NEW_SYN_RECV"
        case .boundInactive: "BOUND_INACTIVE"
        }
    }

    /// The name ss(8) prints.
    public var ssName: String {
        switch self {
        case .established: "ESTAB"
        case .synSent: "SYN-SENT"
        case .synReceived, .newSynReceived: "SYN-RECV"
        case .finWait1: "FIN-WAIT-1"
        case .finWait2: "FIN-WAIT-2"
        case .timeWait: "TIME-WAIT"
        case .close, .boundInactive: "UNCONN"
        case .closeWait: "CLOSE-WAIT"
        case .lastAck: "LAST-ACK"
        case .listen: "LISTEN"
        case .closing: "CLOSING"
        }
    }

    /// Reads a state in ctdoctor's, the kernel's or ss's spelling, any case:
    /// "FIN_WAIT2", "fin-wait-2", "ESTAB", "established".
    public init?(name: some StringProtocol) {
        let key = String(name.uppercased().filter { $0 != "-" && $0 != "_" })
        let found = Self.allCases.first {
            $0.name.filter { $0 != "_" } == key || $0.ssName.filter { $0 != "-" } == key
        }
        guard let found else { return nil }
        self = found
    }

    public static func < (lhs: TCPState, rhs: TCPState) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Bound and nothing more: neither listening nor connected. sock_diag reports such a
    /// socket as CLOSE, and only when BOUND_INACTIVE (a pseudo-state, Linux 6.8+) is asked.
    public var isOnlyBound: Bool { self == .close || self == .boundInactive }
}

/// Which kernel timer is pending on a socket (the `tr` column of /proc/net/tcp,
/// idiag_timer in sock_diag).
public enum SocketTimerKind: UInt8, Sendable, Hashable, CaseIterable {
    case off = 0
    case retransmit = 1
    /// keepalive, or the FIN_WAIT2 timer of an orphaned socket.
    case keepalive = 2
    case timeWait = 3
    case zeroWindowProbe = 4

    public var name: String {
        switch self {
        case .off: "off"
        case .retransmit: "on"
        case .keepalive: "keepalive"
        case .timeWait: "timewait"
        case .zeroWindowProbe: "persist"
        }
    }
}

/// One TCP socket, from /proc/net/tcp{,6}, sock_diag or ss output.
public struct TCPSocket: Sendable, Hashable {
    public var family: AddressFamily
    public var state: TCPState
    public var local: Endpoint
    public var remote: Endpoint
    /// Bytes waiting to be read (for LISTEN: connections waiting in accept()).
    public var receiveQueue: UInt32
    /// Bytes not yet acknowledged by the peer (for LISTEN: the backlog limit).
    public var sendQueue: UInt32
    public var timer: SocketTimerKind
    /// Milliseconds until the timer fires.
    public var timerExpiresMilliseconds: UInt64
    public var retransmits: UInt32
    public var uid: UInt32
    /// 0 for sockets without a file (TIME_WAIT, request sockets).
    public var inode: UInt64
    /// The kernel's socket cookie (sock_diag only): stable identity for SOCK_DESTROY.
    public var cookie: UInt64?
    /// tcp_info, when read through sock_diag.
    public var info: TCPInfo?
    /// The device the socket is bound to (SO_BINDTODEVICE, or a link-local address's
    /// scope): sock_diag's idiag_if, ss's `addr%dev`. nil when unbound or unknown
    /// (/proc/net/tcp does not say).
    public var boundDevice: BoundDevice?
    /// IPV6_V6ONLY of an IPv6 socket (INET_DIAG_SKV6ONLY, ss -e's `v6only:`): whether a
    /// `[::]` listener also takes IPv4. nil for IPv4 sockets and sources that do not say.
    public var v6Only: Bool?

    public init(
        family: AddressFamily,
        state: TCPState,
        local: Endpoint,
        remote: Endpoint,
        receiveQueue: UInt32 = 0,
        sendQueue: UInt32 = 0,
        timer: SocketTimerKind = .off,
        timerExpiresMilliseconds: UInt64 = 0,
        retransmits: UInt32 = 0,
        uid: UInt32 = 0,
        inode: UInt64 = 0,
        cookie: UInt64? = nil,
        info: TCPInfo? = nil
    ) {
        self.family = family
        self.state = state
        self.local = local
        self.remote = remote
        self.receiveQueue = receiveQueue
        self.sendQueue = sendQueue
        self.timer = timer
        self.timerExpiresMilliseconds = timerExpiresMilliseconds
        self.retransmits = retransmits
        self.uid = uid
        self.inode = inode
        self.cookie = cookie
        self.info = info
    }
}

/// A network device a socket is bound to. sock_diag gives its index, ss pastes its
/// name; the live reader resolves the name inside the socket's namespace.
public struct BoundDevice: Sendable, Hashable, CustomStringConvertible {
    public var index: UInt32?
    public var name: String?

    public init(index: UInt32? = nil, name: String? = nil) {
        self.index = index
        self.name = name
    }

    public var description: String { name ?? index.map { "if\($0)" } ?? "?" }
}

/// The parts of the kernel's struct tcp_info (include/uapi/linux/tcp.h) that diagnosis
/// uses. Times are milliseconds since the event; the kernel keeps no "last ack sent".
public struct TCPInfo: Sendable, Hashable {
    public var lastDataSentMilliseconds: UInt32
    public var lastDataReceivedMilliseconds: UInt32
    public var lastAckReceivedMilliseconds: UInt32
    public var roundTripMicroseconds: UInt32
    public var totalRetransmits: UInt32
    /// RFC 4898 tcpEStatsAppHCThruOctetsAcked: bytes the peer acknowledged.
    public var bytesAcked: UInt64
    /// RFC 4898 tcpEStatsAppHCThruOctetsReceived.
    public var bytesReceived: UInt64
    /// Bytes sent including retransmits; nil before kernel 4.19.
    public var bytesSent: UInt64?

    public init(
        lastDataSentMilliseconds: UInt32,
        lastDataReceivedMilliseconds: UInt32,
        lastAckReceivedMilliseconds: UInt32,
        roundTripMicroseconds: UInt32 = 0,
        totalRetransmits: UInt32 = 0,
        bytesAcked: UInt64 = 0,
        bytesReceived: UInt64 = 0,
        bytesSent: UInt64? = nil
    ) {
        self.lastDataSentMilliseconds = lastDataSentMilliseconds
        self.lastDataReceivedMilliseconds = lastDataReceivedMilliseconds
        self.lastAckReceivedMilliseconds = lastAckReceivedMilliseconds
        self.roundTripMicroseconds = roundTripMicroseconds
        self.totalRetransmits = totalRetransmits
        self.bytesAcked = bytesAcked
        self.bytesReceived = bytesReceived
        self.bytesSent = bytesSent
    }

    /// How long the connection has been silent both ways: the most recent of data sent,
    /// data received and ack received.
    public var idleMilliseconds: UInt32 {
        min(lastDataSentMilliseconds, lastDataReceivedMilliseconds, lastAckReceivedMilliseconds)
    }
}

/// A set of socket states, as a bit mask: the form sock_diag's idiag_states takes.
public struct TCPStateSet: Sendable, Hashable, ExpressibleByArrayLiteral {
    public var mask: UInt32

    public init(mask: UInt32) { self.mask = mask }
    public init(arrayLiteral states: TCPState...) { self.init(states) }
    public init(_ states: some Sequence<TCPState>) {
        mask = states.reduce(0) { $0 | 1 << UInt32($1.rawValue) }
    }

    public static let all = TCPStateSet(TCPState.allCases)

    /// Every state the kernel's socket hashes hold (listening, connecting, connected,
    /// closing), which is what /proc/net/tcp lists (and `ss -tan` before iproute2 6.8,
    /// which added bound sockets to `-a` as UNCONN): all but the sockets that
    /// are only bound (CLOSE, asked for as BOUND_INACTIVE). Those the kernel finds by
    /// walking the node-wide bind hash, every namespace's bound sockets, on top of the
    /// socket hash, so a listing asks for them only when told to.
    public static let hashed = TCPStateSet(TCPState.allCases.filter { !$0.isOnlyBound })

    public func contains(_ state: TCPState) -> Bool { mask & 1 << UInt32(state.rawValue) != 0 }

    /// Whether a socket the kernel reported in `state` is one of these: a bound-only
    /// socket comes back as CLOSE when BOUND_INACTIVE was asked for.
    public func admits(_ state: TCPState) -> Bool {
        contains(state) || state.isOnlyBound && (contains(.close) || contains(.boundInactive))
    }
    public func union(_ other: TCPStateSet) -> TCPStateSet { TCPStateSet(mask: mask | other.mask) }
}

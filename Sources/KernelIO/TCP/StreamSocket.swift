import NetCore
import Synchronization
import SystemPackage

/// A blocking TCP socket, for putting real connections into the states under test (the
/// integration tests, the lab, the benchmark's socket filler), and for watch's /metrics.
///
/// Like netlink sockets, a TCP socket belongs to the namespace it was created in: create
/// it inside `NetworkNamespace.run`. The descriptor closes on `close()` or deinit.
public final class StreamSocket: @unchecked Sendable {
    /// Guarded so that a close on one thread and a shutdown on another (the lab stops
    /// blocked threads that way) never act on a descriptor number already reused.
    private let state: Mutex<Int32>
    private var descriptor: Int32 { state.withLock { $0 } }

    init(descriptor: Int32) { state = Mutex(descriptor) }

    deinit { close() }

    /// A listening socket bound to `endpoint` with SO_REUSEADDR.
    /// - Parameters:
    ///   - device: bind to this network device (SO_BINDTODEVICE).
    ///   - v6Only: set IPV6_V6ONLY on an IPv6 listener (else the sysctl's default).
    public static func listen(on endpoint: Endpoint, backlog: Int32 = 4096, device: String? = nil, v6Only: Bool? = nil) throws -> StreamSocket {
        StreamSocket(descriptor: try makeListener(endpoint, backlog: backlog, device: device, v6Only: v6Only))
    }

    /// A connected socket; blocks until the handshake completes or fails.
    /// - Parameters:
    ///   - source: an address (and port, 0 for any) to bind before connecting.
    ///   - timeoutMilliseconds: give up after this long (SO_SNDTIMEO bounds a blocking
    ///     connect); the error is then ETIMEDOUT.
    public static func connect(to endpoint: Endpoint, from source: Endpoint? = nil, timeoutMilliseconds: Int? = nil) throws -> StreamSocket {
        StreamSocket(descriptor: try makeConnection(endpoint, source: source, timeoutMilliseconds: timeoutMilliseconds))
    }

    /// A connected socket whose port the kernel picked as connect() picks it (see
    /// `probe`), bound to `source`'s address: how an app's socket gets its port.
    public static func connect(to endpoint: Endpoint, fromAddress source: IPAddress) throws -> StreamSocket {
        StreamSocket(descriptor: try makeConnection(endpoint, source: Endpoint(source, 0), portByConnect: true))
    }

    /// How a probing connect stood when the probe stopped waiting.
    public enum ProbeOutcome: Sendable, Hashable {
        /// The handshake completed.
        case connected
        /// Refused or reset (an RST answered the SYN).
        case refused
        /// No answer in time: the SYN was dropped or met a socket that would not
        /// complete it (a leaked FIN_WAIT2 socket answers with a challenge ACK).
        case pending
    }

    /// Starts a connect from `source` whose port the kernel picks as for an app's
    /// unbound socket (IP_BIND_ADDRESS_NO_PORT: a hashed offset per destination, the
    /// range's low-end parity first), waits up to `waitMilliseconds`, then closes it;
    /// a socket closed before its handshake sends nothing.
    /// - Returns: the port the kernel picked and how the connect stood.
    public static func probe(
        to endpoint: Endpoint, fromAddress source: IPAddress, waitMilliseconds: Int32
    ) throws -> (port: UInt16, outcome: ProbeOutcome) {
        let (port, state) = try probeConnection(endpoint, source: Endpoint(source, 0), waitMilliseconds: waitMilliseconds)
        switch state {
        case .connected: return (port, .connected)
        case .refused: return (port, .refused)
        case .pending: return (port, .pending)
        }
    }

    /// Blocks until a connection arrives.
    public func accept() throws -> StreamSocket {
        StreamSocket(descriptor: try acceptConnection(descriptor))
    }

    /// Bounds every later blocking read and write (SO_RCVTIMEO, SO_SNDTIMEO): past it they
    /// fail with EAGAIN, so a peer that stops reading or writing cannot hold a thread.
    public func setTimeouts(milliseconds: Int) throws {
        try setIOTimeouts(descriptor, milliseconds: milliseconds)
    }

    /// Writes all of `bytes`.
    /// - Parameter deadline: give up (ETIMEDOUT) once it passes, however the peer reads.
    public func send(_ bytes: [UInt8], deadline: ContinuousClock.Instant? = nil) throws {
        try sendAll(descriptor, bytes, deadline: deadline)
    }

    /// Reads up to `maximum` bytes; an empty result means the peer sent FIN.
    public func receive(maximum: Int = 65536) throws -> [UInt8] {
        try receiveSome(descriptor, maximum: maximum)
    }

    /// shutdown(SHUT_WR): sends FIN, keeps reading. This is what a proxy does to forward
    /// a half-close, and what leaves this side in FIN_WAIT2.
    public func shutdownWrite() throws {
        try systemCall("shutdown(SHUT_WR)") { shutdownSocket(descriptor, write: true) }
    }

    /// shutdown(SHUT_RDWR): wakes any thread blocked reading or accepting on it.
    public func shutdownBoth() {
        state.withLock { fd in if fd >= 0 { _ = shutdownSocketBoth(fd) } }
    }

    /// Makes close() send RST instead of FIN (SO_LINGER with a zero timeout).
    public func setAbortiveClose() throws {
        try setLingerZero(descriptor)
    }

    /// Closes the descriptor; the kernel continues the TCP close on its own.
    public func close() {
        state.withLock { fd in
            if fd >= 0 { closeDescriptor(fd) }
            fd = -1
        }
    }

    public var isClosed: Bool { descriptor < 0 }

    /// Waits until reading would not block (data, FIN or error); false on timeout.
    public func waitReadable(milliseconds: Int32) throws -> Bool {
        try pollReadable(descriptor, milliseconds: milliseconds)
    }

    public func localEndpoint() throws -> Endpoint { try socketName(descriptor, peer: false) }
    public func peerEndpoint() throws -> Endpoint { try socketName(descriptor, peer: true) }

    /// The destination the client dialled before iptables REDIRECT/DNAT rewrote it
    /// (SO_ORIGINAL_DST), as Envoy reads it on its outbound listener.
    public func originalDestination() throws -> Endpoint { try originalDestinationOf(descriptor) }

    /// The socket's inode, the key /proc/net/tcp and sock_diag report it under.
    public func inode() throws -> UInt64 { try inodeOf(descriptor) }
}

/// Raises this process's open-file limit toward `wanted` (never above the hard limit);
/// returns the soft limit now in force.
@discardableResult
public func raiseOpenFileLimit(to wanted: UInt64) -> UInt64 {
    raiseNoFileLimit(wanted)
}

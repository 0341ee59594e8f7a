import Dispatch
import KernelIO
import NetCore
import Synchronization

/// Runs `body` on a thread of its own (blocking socket I/O, few connections).
func startThread(_ label: String, _ body: @escaping @Sendable () -> Void) {
    DispatchQueue(label: label).async(execute: body)
}

/// A minimal sidecar-like TCP proxy: accepts REDIRECTed connections on 15001, reads
/// each one's original destination (SO_ORIGINAL_DST), connects there from 127.0.0.6,
/// and copies bytes both ways. When one side sends FIN it forwards the half-close with
/// shutdown(SHUT_WR) on the other and keeps reading — what Envoy's TcpProxy does, and
/// what leaves its app-facing socket in FIN_WAIT2 when the upstream closes first.
public final class LabProxy: @unchecked Sendable {
    /// Whether the proxy sniffs the protocol before connecting upstream.
    public enum Detection: Sendable {
        /// Connect upstream at once (a port declared TCP).
        case none
        /// Wait for the client's first bytes — forever (Istio since 1.9, ASM) or until a
        /// timeout after which it proxies anyway (Linkerd: 10 s) — except on `opaque` ports.
        case waitForClient(timeoutSeconds: Double?, opaque: Set<UInt16>)
    }

    let namespace: NetworkNamespace
    let listener: StreamSocket
    let detection: Detection
    private let held = Mutex<[StreamSocket]>([])
    private let stopped = Atomic<Bool>(false)

    public init(namespace: NetworkNamespace, port: UInt16 = LabNamespace.outboundPort, detection: Detection = .none) throws {
        self.namespace = namespace
        self.detection = detection
        listener = try namespace.run {
            try StreamSocket.listen(on: Endpoint(.loopbackV4, port))
        }
    }

    public func start() {
        startThread("ctdoctor.lab.proxy") { [self] in
            while let downstream = try? listener.accept() {
                held.withLock { $0.append(downstream) }
                startThread("ctdoctor.lab.proxy.connection") { [self] in self.serve(downstream) }
            }
        }
    }

    /// Protocol detection: waits until the client has sent something, or the timeout
    /// passes, or the proxy stops.
    func awaitClientBytes(_ downstream: StreamSocket, timeoutSeconds: Double?) {
        let deadline = timeoutSeconds.map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
        while !stopped.load(ordering: .relaxed) {
            if (try? downstream.waitReadable(milliseconds: 100)) == true { return }
            if let deadline, ContinuousClock.now >= deadline { return }
        }
    }

    func serve(_ downstream: StreamSocket) {
        guard let destination = try? downstream.originalDestination() else {
            downstream.close()
            return
        }
        if case .waitForClient(let timeout, let opaque) = detection, !opaque.contains(destination.port) {
            awaitClientBytes(downstream, timeoutSeconds: timeout)
            if stopped.load(ordering: .relaxed) { return }
        }
        guard let upstream = try? namespace.run({
                try StreamSocket.connect(to: destination, from: Endpoint(LabNamespace.proxySource, 0))
            })
        else {
            downstream.close()
            return
        }
        held.withLock { $0.append(upstream) }
        let finished = DispatchGroup()
        for (from, to) in [(downstream, upstream), (upstream, downstream)] {
            finished.enter()
            startThread("ctdoctor.lab.proxy.pump") {
                while let bytes = try? from.receive(), !bytes.isEmpty {
                    if (try? to.send(bytes)) == nil { break }
                }
                // FIN from one side: forward the half-close, keep the other direction.
                try? to.shutdownWrite()
                finished.leave()
            }
        }
        finished.notify(queue: .global()) {
            downstream.close()
            upstream.close()
        }
    }

    /// Stops accepting and wakes every blocked thread.
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        listener.shutdownBoth()
        held.withLock { sockets in sockets.forEach { $0.shutdownBoth() } }
    }
}

/// The upstream service at 10.96.0.10:80. A request line "CLOSE" is answered and then
/// the upstream closes first (the half-close the proxy forwards); anything else is
/// echoed until the client closes.
public final class LabUpstream: @unchecked Sendable {
    let listener: StreamSocket
    /// Sent on accept, before reading anything: a server-first protocol's greeting.
    let greeting: [UInt8]?
    private let held = Mutex<[StreamSocket]>([])

    public init(namespace: NetworkNamespace, on endpoint: Endpoint = Endpoint(LabNamespace.serviceAddress, 80), greeting: String? = nil) throws {
        self.greeting = greeting.map { Array($0.utf8) }
        listener = try namespace.run { try StreamSocket.listen(on: endpoint) }
    }

    public func start() {
        startThread("ctdoctor.lab.upstream") { [self] in
            while let connection = try? listener.accept() {
                held.withLock { $0.append(connection) }
                let greeting = self.greeting
                startThread("ctdoctor.lab.upstream.connection") {
                    if let greeting, (try? connection.send(greeting)) == nil {
                        connection.close()
                        return
                    }
                    while let bytes = try? connection.receive(), !bytes.isEmpty {
                        if bytes.starts(with: Array("CLOSE".utf8)) {
                            try? connection.send(Array("bye\n".utf8))
                            connection.close()
                            return
                        }
                        if (try? connection.send(bytes)) == nil { break }
                    }
                    connection.close()
                }
            }
        }
    }

    public func stop() {
        listener.shutdownBoth()
        held.withLock { sockets in sockets.forEach { $0.shutdownBoth() } }
    }
}

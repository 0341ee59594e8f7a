import Glibc
import KernelIO
import NetCore
import Synchronization

/// `watch --listen`: an HTTP endpoint on threads of its own, so that a scrape never waits
/// for the watch and the watch never waits for a scrape. Each connection is served on its
/// own thread, at most `maximumConnections` at once (more are closed unanswered), and
/// each is bounded: its request head must arrive within 2 s and its response be taken
/// within 5 s, so a client that connects and stalls, or reads a byte at a time, costs a
/// thread for seconds, never the endpoint. What to answer is the caller's (Export's
/// MetricsHTTP for /metrics).
public final class HTTPEndpoint: Sendable {
    /// The response to a request head: the head as far as it arrived, and whether it
    /// arrived whole.
    public typealias Responder = @Sendable (_ head: ArraySlice<UInt8>, _ complete: Bool) -> [UInt8]

    public static let maximumConnections = 8

    /// Where it listens (the port the kernel picked when 0 was asked for).
    public let address: Endpoint
    private let listener: StreamSocket
    private let accepting: WorkerThread

    /// Listens on `endpoint` in ctdoctor's own network namespace.
    public init(listeningOn endpoint: Endpoint, respond: @escaping Responder) throws {
        let listener = try StreamSocket.listen(on: endpoint, backlog: 64)
        self.listener = listener
        address = try listener.localEndpoint()
        let state = Shared()
        self.state = state
        accepting = try WorkerThread(name: "http endpoint") { [state] in
            while !state.stopped.load(ordering: .relaxed) {
                let connection: StreamSocket
                do {
                    connection = try listener.accept()
                } catch {
                    // Out of descriptors or memory for a moment: try again, rather than
                    // stop serving while the watch goes on.
                    if state.stopped.load(ordering: .relaxed) { break }
                    usleep(100_000)
                    continue
                }
                guard state.serving.add(1, ordering: .relaxed).newValue <= Self.maximumConnections,
                    (try? WorkerThread.detached(name: "http connection") {
                        Self.serve(connection, respond: respond)
                        state.serving.subtract(1, ordering: .relaxed)
                    }) != nil
                else {
                    state.serving.subtract(1, ordering: .relaxed)
                    connection.close()
                    continue
                }
            }
        }
    }

    /// What the accepting thread and the connections share.
    final class Shared: Sendable {
        let stopped = Atomic<Bool>(false)
        let serving = Atomic<Int>(0)
    }
    private let state: Shared

    /// Stops accepting; connections being served end within their bounds.
    public func stop() {
        state.stopped.store(true, ordering: .relaxed)
        listener.shutdownBoth()
        accepting.join()
        listener.close()
    }

    static func serve(_ connection: StreamSocket, respond: Responder) {
        defer { connection.close() }
        guard (try? connection.setTimeouts(milliseconds: 1000)) != nil else { return }
        var head: [UInt8] = []
        var end: Int?
        let deadline = ContinuousClock.now + .seconds(2)
        while end == nil, head.count < HTTPRequestHead.limit, ContinuousClock.now < deadline {
            guard let chunk = try? connection.receive(maximum: HTTPRequestHead.limit - head.count), !chunk.isEmpty else { break }
            head += chunk
            end = HTTPRequestHead.end(head[...])
        }
        try? connection.send(respond(head[..<(end ?? head.count)], end != nil), deadline: .now + .seconds(5))
    }
}

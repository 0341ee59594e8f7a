import KernelIO
import NetCore

/// `watch --listen`: an HTTP endpoint on its own thread, so that a scrape never waits for
/// the watch and the watch never waits for a scrape. One connection at a time, each
/// bounded (2 s to send its request head, 2 s per write): a client that stalls delays the
/// next scrape at most that, and cannot hold the thread. What to answer is the caller's
/// (Export's MetricsHTTP for /metrics).
public final class HTTPEndpoint: Sendable {
    /// The response to a request head: the head as far as it arrived, and whether it
    /// arrived whole.
    public typealias Responder = @Sendable (_ head: ArraySlice<UInt8>, _ complete: Bool) -> [UInt8]

    /// Where it listens (the port the kernel picked when 0 was asked for).
    public let address: Endpoint
    private let listener: StreamSocket
    private let worker: WorkerThread

    /// Listens on `endpoint` in ctdoctor's own network namespace.
    public init(listeningOn endpoint: Endpoint, respond: @escaping Responder) throws {
        let listener = try StreamSocket.listen(on: endpoint, backlog: 16)
        self.listener = listener
        address = try listener.localEndpoint()
        worker = try WorkerThread(name: "http endpoint") {
            while let connection = try? listener.accept() {
                Self.serve(connection, respond: respond)
            }
        }
    }

    /// Stops accepting; the thread ends once the connection it serves, if any, is answered.
    public func stop() {
        listener.shutdownBoth()
        worker.join()
        listener.close()
    }

    static func serve(_ connection: StreamSocket, respond: Responder) {
        defer { connection.close() }
        guard (try? connection.setTimeouts(milliseconds: 2000)) != nil else { return }
        var head: [UInt8] = []
        var end: Int?
        let deadline = ContinuousClock.now + .seconds(2)
        while end == nil, head.count < HTTPRequestHead.limit, ContinuousClock.now < deadline {
            guard let chunk = try? connection.receive(maximum: HTTPRequestHead.limit - head.count), !chunk.isEmpty else { break }
            head += chunk
            end = HTTPRequestHead.end(head[...])
        }
        try? connection.send(respond(head[..<(end ?? head.count)], end != nil))
    }
}

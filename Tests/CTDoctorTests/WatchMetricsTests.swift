import Diagnosis
import Export
import KernelIO
import Live
import NetCore
import TestSupport
import Testing

/// watch's counters across the namespaces of a node (parsed back by prometheus_client, as
/// node_exporter's textfile collector and a scrape read them), and the /metrics answers.
@Suite("watch metrics and /metrics")
struct WatchMetricsTests {
    func event(_ kind: WatchEvent.Kind, lifetime: Double? = nil) -> WatchEvent {
        WatchEvent(kind: kind, time: 1, lifetimeSeconds: lifetime, detail: "")
    }

    @Test func eachNamespaceCountsItsOwnAndTheWatchedGaugeFollowsPodsComingAndGoing() throws {
        let metrics = WatchMetrics()
        metrics.watching(netns: "net:[1]", pod: "shop/cart")
        metrics.watching(netns: "net:[2]", pod: nil)
        metrics.record(event(.leakBorn), netns: "net:[1]", pod: "shop/cart")
        metrics.record(event(.leakBorn), netns: "net:[1]", pod: "shop/cart")
        metrics.record(event(.leakEnded, lifetime: 42), netns: "net:[1]", pod: "shop/cart")
        metrics.record(event(.collision), netns: "net:[2]", pod: nil)
        metrics.record(event(.collisionFailed), netns: "net:[2]", pod: nil)
        var parsed = try ParsedExposition(metrics.exposition())
        let cart = ["netns": "net:[1]", "pod": "shop/cart"]
        #expect(parsed.value("ctdoctor_watch_leaks_born", cart) == 2)
        #expect(parsed.value("ctdoctor_watch_leaks_born", ["netns": "net:[2]"]) == 0, "a watched namespace's counters exist at zero")
        #expect(parsed.value("ctdoctor_watch_collisions", ["netns": "net:[2]", "outcome": "failed"]) == 1)
        let lifetimes = try #require(parsed.families["ctdoctor_watch_leak_lifetime_seconds"])
        #expect(lifetimes.samples.contains { $0.labels["pod"] == "shop/cart" && $0.labels["le"] == "60.0" && $0.value == 1 })
        #expect(lifetimes.samples.contains { $0.labels["pod"] == "shop/cart" && $0.labels["le"] == "10.0" && $0.value == 0 })
        #expect(parsed.value("ctdoctor_watch_namespaces") == 2)
        metrics.record(event(.namespaceGone), netns: "net:[2]", pod: nil)
        metrics.record(event(.namespaceFailed), netns: "net:[3]", pod: nil)
        parsed = try ParsedExposition(metrics.exposition())
        #expect(parsed.value("ctdoctor_watch_namespaces") == 1)
        #expect(parsed.value("ctdoctor_watch_namespace_failures", ["netns": "net:[3]"]) == 1)
        // Within the grace the gone namespace's last values are still there to be read.
        #expect(parsed.value("ctdoctor_watch_collisions", ["netns": "net:[2]", "outcome": "seen"]) == 1)
    }

    @Test func aGoneNamespacesSeriesGoAfterTheGraceSoChurnDoesNotGrowThem() throws {
        let metrics = WatchMetrics(goneSeriesSeconds: 0)
        for pod in 0..<50 {
            metrics.watching(netns: "net:[\(pod)]", pod: "p\(pod)")
            metrics.record(event(.leakBorn), netns: "net:[\(pod)]", pod: "p\(pod)")
            metrics.record(event(.namespaceGone), netns: "net:[\(pod)]", pod: "p\(pod)")
        }
        metrics.watching(netns: "net:[99]", pod: "alive")
        let parsed = try ParsedExposition(metrics.exposition())
        let born = try #require(parsed.families["ctdoctor_watch_leaks_born"])
        #expect(born.samples.map { $0.labels["pod"] } == ["alive"])
        #expect(parsed.value("ctdoctor_watch_namespaces") == 1)
    }

    func answer(_ request: String, complete: Bool = true) -> (status: String, headers: [String], body: String) {
        let bytes = MetricsHTTP.response(toHead: Array(request.utf8)[...], complete: complete) { Array("x 1\n".utf8) }
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts[0].components(separatedBy: "\r\n")
        return (head[0], Array(head.dropFirst()), parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test func aScrapeGetsTheExpositionWithItsLengthAndTheRestAClearStatus() {
        let scrape = answer("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9850\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\nAccept-Encoding: gzip\r\n\r\n")
        #expect(scrape.status == "HTTP/1.1 200 OK" && scrape.body == "x 1\n")
        #expect(scrape.headers.contains("Content-Type: \(MetricsHTTP.metricsContentType)") && scrape.headers.contains("Content-Length: 4"))
        #expect(scrape.headers.contains("Connection: close"))
        #expect(answer("GET /metrics?debug=1 HTTP/1.0\n\n").body == "x 1\n", "a query and bare LFs are taken")
        let head = answer("HEAD /metrics HTTP/1.1\r\n\r\n")
        #expect(head.status == "HTTP/1.1 200 OK" && head.body.isEmpty && head.headers.contains("Content-Length: 4"))
        #expect(answer("GET /favicon.ico HTTP/1.1\r\n\r\n").status == "HTTP/1.1 404 Not Found")
        let post = answer("POST /metrics HTTP/1.1\r\n\r\n")
        #expect(post.status == "HTTP/1.1 405 Method Not Allowed" && post.headers.contains("Allow: GET, HEAD"))
        #expect(answer("GET /metrics HTTP/2.0\r\n\r\n").status == "HTTP/1.1 505 HTTP Version Not Supported")
        for broken in ["\r\n\r\n", "GET\r\n\r\n", "GET metrics HTTP/1.1\r\n\r\n", "G\u{1}T /metrics HTTP/1.1\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n"] {
            #expect(answer(broken).status == "HTTP/1.1 400 Bad Request", "\(broken.debugDescription)")
        }
        #expect(answer("GET /metrics HTTP/1.1\r\nHost: x", complete: false).status == "HTTP/1.1 400 Bad Request")
        let huge = "GET /metrics HTTP/1.1\r\nX: " + String(repeating: "a", count: HTTPRequestHead.limit)
        #expect(answer(String(huge.prefix(HTTPRequestHead.limit)), complete: false).status == "HTTP/1.1 431 Request Header Fields Too Large")
    }

    @Test func theHeadEndsAtItsBlankLineWhateverEndsItsLines() {
        #expect(HTTPRequestHead.end(Array("GET / HTTP/1.1\r\nA: b\r\n\r\nbody".utf8)[...]) == 24)
        #expect(HTTPRequestHead.end(Array("GET / HTTP/1.1\n\n".utf8)[...]) == 16)
        #expect(HTTPRequestHead.end(Array("GET / HTTP/1.1\r\nA: b\r\n".utf8)[...]) == nil)
        #expect(HTTPRequestHead.end(Array("\n".utf8)[...]) == nil)
    }
}

/// The /metrics endpoint on real loopback sockets: clients that connect and stall do not
/// hold back a scrape, and stopping it does not wait for them.
@Suite("the /metrics endpoint")
struct HTTPEndpointTests {
    @Test func aScrapeIsAnsweredWhileOtherClientsStallAndStopDoesNotWaitForThem() throws {
        let endpoint = try HTTPEndpoint(listeningOn: Endpoint(.v4(0x7F00_0001), 0)) { head, complete in
            MetricsHTTP.response(toHead: head, complete: complete) { Array("ctdoctor_watch_namespaces 3\n".utf8) }
        }
        // Four clients that connect and never send a request.
        let stalled = try (0..<4).map { _ in try StreamSocket.connect(to: endpoint.address, timeoutMilliseconds: 1000) }
        let scrape = try StreamSocket.connect(to: endpoint.address, timeoutMilliseconds: 1000)
        let asked = ContinuousClock.now
        try scrape.send(Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        var response: [UInt8] = []
        while try scrape.waitReadable(milliseconds: 3000) {
            let chunk = try scrape.receive()
            if chunk.isEmpty { break }
            response += chunk
        }
        let waited = ContinuousClock.now - asked
        let text = String(decoding: response, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n") && text.hasSuffix("\r\n\r\nctdoctor_watch_namespaces 3\n"), "\(text)")
        #expect(waited < .seconds(1), "the stalled clients held the scrape back \(waited)")
        // A stalled client is let go within its 2 s for the request head: the server closes.
        #expect(try stalled[0].waitReadable(milliseconds: 4000) && (try stalled[0].receive()).starts(with: Array("HTTP/1.1 400".utf8)))
        let stopping = ContinuousClock.now
        endpoint.stop()
        #expect(ContinuousClock.now - stopping < .seconds(1))
        #expect(throws: (any Error).self) { try StreamSocket.connect(to: endpoint.address, timeoutMilliseconds: 500) }
        stalled.forEach { $0.close() }
    }
}

import NetCore

/// The little of HTTP/1.1 (RFC 9112) that serving `/metrics` to Prometheus takes: a
/// request head read whole, its request line judged, and one response per connection
/// (`Connection: close`). Pure: bytes in, bytes out; the socket loop is Live's
/// HTTPEndpoint.
///
/// Written here rather than taken from a Swift HTTP server because each kept one costs
/// the debug image more than all of this: measured on this toolchain (static, stripped),
/// swift-nio's NIOHTTP1 adds 3.6 MB to the binary (1.35 MB gzipped, the release tarball's
/// whole margin under its 8 MB bound five times over), and Hummingbird and FlyingFox
/// import Foundation, which links Foundation's internationalisation and ICU back in
/// (+53 MB). A scrape endpoint answers one GET; it needs no routing, keep-alive, chunking
/// or TLS (put a proxy in front for those).
public enum MetricsHTTP {
    /// What Prometheus' text parser reads (exposition format 0.0.4).
    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The response to a request head (everything up to its blank line, or what arrived
    /// before the client stopped or the limit was reached).
    /// - Parameters:
    ///   - complete: false when the head never ended (too long, or the client stopped).
    ///   - exposition: the metrics, read only when they are asked for.
    public static func response(toHead head: ArraySlice<UInt8>, complete: Bool, exposition: () -> [UInt8]) -> [UInt8] {
        guard complete else {
            return head.count >= HTTPRequestHead.limit
                ? response(431, "Request Header Fields Too Large", body: "request head over \(HTTPRequestHead.limit) bytes\n")
                : response(400, "Bad Request", body: "incomplete request\n")
        }
        let lineEnd = head.firstIndex(of: 0x0A) ?? head.endIndex
        var line = head[head.startIndex..<lineEnd]
        if line.last == 0x0D { line = line.dropLast() }
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, let method = String(validating: parts[0], as: UTF8.self), isToken(parts[0]),
            let target = String(validating: parts[1], as: UTF8.self), target.first == "/",
            let version = String(validating: parts[2], as: UTF8.self), version.hasPrefix("HTTP/")
        else {
            return response(400, "Bad Request", body: "not an HTTP/1.x request line\n")
        }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { return response(505, "HTTP Version Not Supported", body: "HTTP/1.1 and 1.0 only\n") }
        let headOnly = method == "HEAD"
        guard method == "GET" || headOnly else {
            return response(405, "Method Not Allowed", headers: [("Allow", "GET, HEAD")], body: "GET /metrics\n")
        }
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        switch path {
        case "/metrics":
            return response(200, "OK", contentType: metricsContentType, body: exposition(), headOnly: headOnly)
        case "/":
            return response(200, "OK", body: Array("ctdoctor watch: its counters are at /metrics\n".utf8), headOnly: headOnly)
        default:
            return response(404, "Not Found", body: Array("only /metrics is served here\n".utf8), headOnly: headOnly)
        }
    }

    static func response(_ status: Int, _ reason: String, headers: [(String, String)] = [], body: String) -> [UInt8] {
        response(status, reason, headers: headers, body: Array(body.utf8))
    }

    static func response(
        _ status: Int, _ reason: String, contentType: String = "text/plain; charset=utf-8", headers: [(String, String)] = [],
        body: [UInt8], headOnly: Bool = false
    ) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return Array((text + "\r\n").utf8) + (headOnly ? [] : body)
    }

    /// RFC 9110's token: the characters a method may hold.
    static func isToken(_ bytes: ArraySlice<UInt8>) -> Bool {
        !bytes.isEmpty && bytes.allSatisfy { byte in
            (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte) || Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }
}

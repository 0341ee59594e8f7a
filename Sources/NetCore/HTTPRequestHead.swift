/// Where an HTTP/1.1 request head ends (RFC 9112 §2): what a server reads before it can
/// answer. Pure, for watch's /metrics endpoint (the routing is Export's MetricsHTTP).
public enum HTTPRequestHead {
    /// The longest request head taken: Prometheus sends a few hundred bytes.
    public static let limit = 8192

    /// The index after the head's blank line, nil while it has not arrived whole. A bare
    /// LF ending lines is accepted, as RFC 9112 §2.2 allows.
    public static func end(_ bytes: ArraySlice<UInt8>) -> Int? {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == 0x0A {
                let next = index + 1
                if next < bytes.endIndex, bytes[next] == 0x0A { return next + 1 }
                if next + 1 < bytes.endIndex, bytes[next] == 0x0D, bytes[next + 1] == 0x0A { return next + 2 }
            }
            index += 1
        }
        return nil
    }
}

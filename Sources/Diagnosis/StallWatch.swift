import NetCore
import Sockets

/// The stalls `watch` follows: accepted connections on the capture ports silent both ways
/// past the threshold (a sniffing proxy waiting for a client that waits for the server's
/// greeting), each reported once when first seen and again when it ends. Pure: the caller
/// hands it each scan's silent sockets and, for the new ones, where the client dialled.
public struct StallWatch: Sendable {
    /// The most stalls followed at once: past it, new ones are not reported (a pod with
    /// this many silent accepted connections has its finding from diagnose already).
    public static let capacity = 10_000

    struct Followed: Sendable {
        var socket: TCPSocket
        var since: Double
        var originalDestination: Endpoint?
        var application: ApplicationProtocol?
    }

    var followed: [UInt64: Followed] = [:]
    public let catalog: ProtocolCatalog

    public init(catalog: ProtocolCatalog) {
        self.catalog = catalog
    }

    /// The silent sockets not followed yet: the caller looks up where they were dialled.
    public func unknown(among silent: [TCPSocket]) -> [TCPSocket] {
        silent.filter { $0.cookie.map { followed[$0] == nil } ?? false }
    }

    /// One scan: `silent` are the stall candidates now (ESTABLISHED on a capture port,
    /// nothing sent or received, silent past the threshold), `destinations` where the new
    /// ones were dialled (their conntrack entries' original destination).
    public mutating func scan(silent: [TCPSocket], destinations: [UInt64: Endpoint], at time: Double) -> [WatchEvent] {
        let now = Set(silent.compactMap(\.cookie))
        var events: [WatchEvent] = []
        for (cookie, stall) in followed.sorted(by: { $0.key < $1.key }) where !now.contains(cookie) {
            followed[cookie] = nil
            events.append(WatchEvent(
                kind: .stallEnded, time: time, proxy: stall.socket.local, app: stall.socket.remote,
                originalDestination: stall.originalDestination, cookie: cookie, afterSeconds: max(0, time - stall.since),
                application: stall.application, detail: "the connection spoke, or closed"))
        }
        for socket in silent.sorted(by: { ($0.cookie ?? 0) < ($1.cookie ?? 0) }) {
            guard let cookie = socket.cookie, followed[cookie] == nil, followed.count < Self.capacity, let info = socket.info else { continue }
            let silentSeconds = Double(min(info.lastDataReceivedMilliseconds, info.lastDataSentMilliseconds)) / 1000
            let destination = destinations[cookie]
            let application = destination.flatMap { catalog.byPort($0.port)?.0 }
            followed[cookie] = Followed(socket: socket, since: time - silentSeconds, originalDestination: destination, application: application)
            events.append(WatchEvent(
                kind: .stall, time: time, proxy: socket.local, app: socket.remote, originalDestination: destination, cookie: cookie,
                afterSeconds: silentSeconds, application: application, detail: Self.explanation(application, port: destination?.port, silentSeconds: silentSeconds)))
        }
        return events
    }

    static func explanation(_ application: ApplicationProtocol?, port: UInt16?, silentSeconds: Double) -> String {
        let silent = "accepted and silent both ways for \(Int(silentSeconds)) s"
        guard let port else { return "\(silent) (where the client dialled is unknown: its conntrack entry is gone)" }
        guard let application else { return "\(silent) on port \(port), whose protocol is not known: a proxy sniffing it may be waiting for the client's first bytes" }
        if application.isServerFirst {
            return "\(silent): \(application.name) on port \(port) speaks first, and a proxy that waits for the client's bytes to detect the protocol holds its greeting back (declare the port TCP, or opaque for Linkerd)"
        }
        return "\(silent) on port \(port) (\(application.name), the client speaks first): the client has not sent yet"
    }
}

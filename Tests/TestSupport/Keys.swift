import Conntrack
import NetCore
import Sockets

/// What identifies a flow across sources that do not all carry ids or exact timeouts.
public struct FlowKey: Hashable, Comparable, CustomStringConvertible {
    public var text: String
    public init(_ entry: ConntrackEntry) {
        text = [
            entry.family.name, String(entry.protocolNumber), entry.state?.name ?? "-",
            "\(entry.original)", "\(entry.reply)", "mark=\(entry.mark)", "zone=\(entry.zone)",
            entry.status.contains(.seenReply) ? "replied" : "unreplied",
        ].joined(separator: " ")
    }
    public static func < (lhs: FlowKey, rhs: FlowKey) -> Bool { lhs.text < rhs.text }
    public var description: String { text }
}

/// What ss and /proc agree on for one socket.
public struct SocketKey: Hashable, Comparable, CustomStringConvertible {
    public var state: TCPState
    public var local: Endpoint
    public var remote: Endpoint
    public init(_ socket: TCPSocket) {
        state = socket.state
        local = socket.local
        // ss prints an unconnected peer as "0.0.0.0:*" / "[::]:*".
        remote = socket.remote
    }
    public static func < (lhs: SocketKey, rhs: SocketKey) -> Bool { lhs.description < rhs.description }
    public var description: String { "\(state.name) \(local) \(remote)" }
}


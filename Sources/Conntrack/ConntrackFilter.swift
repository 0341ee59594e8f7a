/// Which entries a listing keeps. Every field narrows; an empty filter keeps all.
public struct ConntrackFilter: Sendable, Equatable {
    public var protocolNumber: UInt8?
    /// Keep entries in any of these states; empty keeps every state.
    public var states: [ConntrackState]
    /// Keep entries with this port on either side of either tuple.
    public var port: UInt16?
    /// Keep only entries whose destination was rewritten (DNAT, REDIRECT).
    public var destinationNATOnly: Bool
    /// Keep entries whose reply comes from this port: 15001 selects flows a sidecar's
    /// outbound listener captured.
    public var replySourcePort: UInt16?

    public init(
        protocolNumber: UInt8? = nil,
        states: [ConntrackState] = [],
        port: UInt16? = nil,
        destinationNATOnly: Bool = false,
        replySourcePort: UInt16? = nil
    ) {
        self.protocolNumber = protocolNumber
        self.states = states
        self.port = port
        self.destinationNATOnly = destinationNATOnly
        self.replySourcePort = replySourcePort
    }

    public static let all = ConntrackFilter()

    public var isEmpty: Bool { self == .all }

    @inlinable
    public func matches(_ entry: ConntrackEntry) -> Bool {
        if let protocolNumber, entry.protocolNumber != protocolNumber { return false }
        if !states.isEmpty {
            guard let state = entry.state, states.contains(state) else { return false }
        }
        if let port {
            let tuples = (entry.original, entry.reply)
            guard
                tuples.0.sourcePort == port || tuples.0.destinationPort == port
                    || tuples.1.sourcePort == port || tuples.1.destinationPort == port
            else { return false }
        }
        if destinationNATOnly && !entry.status.contains(.destinationNAT) {
            return false
        }
        if let replySourcePort, entry.reply.sourcePort != replySourcePort { return false }
        return true
    }
}

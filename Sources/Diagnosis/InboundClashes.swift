import Conntrack
import NetCore

/// An inbound flow whose reply tuple clashed on the redirect port.
///
/// Inbound REDIRECT funnels every pod port into one (15006, 4143): a client that
/// connects from the same source port to two of the pod's ports makes two flows whose
/// reply tuples are the same (pod:15006 → client:port). NAT resolves the clash as the
/// second flow is confirmed by giving it another port on the client's side of the reply
/// tuple, so the proxy accepts a connection from a client port that client never used
/// (istio/istio#38982). Where the clash is with a socket the proxy still holds (a leaked
/// FIN_WAIT2), the new SYN meets that socket instead: challenge ACKs, and an entry left in
/// SYN_SENT [UNREPLIED] (linkerd/linkerd2#15505).
public struct InboundClash: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        /// The reply tuple's client port differs from the one the client sent from.
        case remapped
        /// A SYN toward the redirect port that nothing answered.
        case unreplied
    }

    public var kind: Kind
    public var entry: ConntrackEntry
    /// The client, as it connected (original tuple's source).
    public var client: Endpoint { entry.original.sourceEndpoint }
    /// The pod port it dialled, before REDIRECT.
    public var podPort: UInt16 { entry.original.destinationPort }
    /// The client port the proxy sees (the reply tuple's destination port).
    public var seenClientPort: UInt16 { entry.reply.destinationPort }
}

public enum InboundClashAnalysis {
    /// SYN_SENT entries younger than this are connects in flight, not stuck ones: the
    /// default nf_conntrack_tcp_timeout_syn_sent is 120 s, so the timeout left says the age.
    public static let unrepliedAfterSeconds: UInt32 = 3

    /// The clashes among `conntrack`'s entries toward the profile's inbound port.
    public static func clashes(in conntrack: [ConntrackEntry], profile: SidecarProfile, synSentTimeout: Int? = nil) -> [InboundClash] {
        let inbound = profile.inboundPort
        let fullTimeout = UInt32(clamping: synSentTimeout ?? 120)
        var found: [InboundClash] = []
        for entry in conntrack where entry.protocolNumber == IPProtocolName.tcp && entry.reply.sourcePort == inbound {
            // REDIRECT rewrote the destination, and the reply goes back to the client's
            // address: only the port moved.
            guard entry.original.destinationPort != inbound, entry.reply.destination == entry.original.source else { continue }
            if entry.tcpState == .synSent, !entry.status.contains(.seenReply),
                let left = entry.timeout, fullTimeout >= left, fullTimeout - left >= unrepliedAfterSeconds
            {
                found.append(InboundClash(kind: .unreplied, entry: entry))
            } else if entry.reply.destinationPort != entry.original.sourcePort {
                found.append(InboundClash(kind: .remapped, entry: entry))
            }
        }
        return found.sorted { ($0.kind.rawValue, $0.client, $0.podPort) < ($1.kind.rawValue, $1.client, $1.podPort) }
    }

    /// The model for the next clash: a client that keeps `live` flows open to this pod
    /// re-uses one of their source ports toward another pod port with about
    /// live / N′ chance per connect (N′: the client's first-pass ports), since its kernel
    /// only keeps ports unique per destination.
    public static let model = "P(a new inbound connect clashes) ≈ (the client's live flows to other pod ports behind the same redirect port) / N′, N′ its first-pass source ports"
}

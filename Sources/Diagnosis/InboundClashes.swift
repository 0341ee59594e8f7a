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
    ///
    /// - Parameters:
    ///   - synSentTimeout: the namespace's nf_conntrack_tcp_timeout_syn_sent; without it
    ///     (a copied table) an unanswered SYN's age cannot be told, and none is judged.
    ///   - excluding: entries already reported otherwise (a leak's colliding connect).
    public static func clashes(
        in conntrack: [ConntrackEntry], profile: SidecarProfile, synSentTimeout: Int?, excluding: Set<ConntrackEntry> = []
    ) -> [InboundClash] {
        let inbound = profile.inboundPort
        let fullTimeout = synSentTimeout.map { UInt32(clamping: $0) }
        var found: [InboundClash] = []
        for entry in conntrack where entry.protocolNumber == IPProtocolName.tcp && entry.reply.sourcePort == inbound {
            // REDIRECT rewrote the destination, and the reply goes back to the client's
            // address: only the port moved.
            guard entry.original.destinationPort != inbound, entry.reply.destination == entry.original.source else { continue }
            guard !excluding.contains(entry) else { continue }
            if entry.tcpState == .synSent, !entry.status.contains(.seenReply) {
                // A retransmitted SYN restarts the timeout: the age is a lower bound.
                if let fullTimeout, let left = entry.timeout, fullTimeout >= left, fullTimeout - left >= unrepliedAfterSeconds {
                    found.append(InboundClash(kind: .unreplied, entry: entry))
                }
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

    /// One client's exposure: its live flows into the funnel and the pod ports they came
    /// in on. Only a client that dials two or more of the pod's ports can clash with itself.
    public struct Exposure: Sendable, Hashable {
        public var client: IPAddress
        public var liveFlows: Int
        public var podPorts: [UInt16]
        /// The chance that its next connect to one of the pod's ports picks a source port
        /// a live flow to another of them holds: ≈ liveFlows / N′ (a flow to the same
        /// port never shares a source port with a new one, so it is an upper bound).
        public var perConnect: Double
    }

    /// Clients with live flows into the inbound redirect port on two or more pod ports.
    /// N′ is taken from this namespace's ip_local_port_range, as for remote clients'
    /// poisoned ports (their own range is not visible from here).
    public static func exposure(in conntrack: [ConntrackEntry], profile: SidecarProfile, portRange: ClosedRange<UInt16>) -> [Exposure] {
        var flows: [IPAddress: (count: Int, ports: Set<UInt16>)] = [:]
        for entry in conntrack where entry.protocolNumber == IPProtocolName.tcp && entry.reply.sourcePort == profile.inboundPort {
            guard entry.original.destinationPort != profile.inboundPort, entry.tcpState == .established else { continue }
            flows[entry.original.source, default: (0, [])].count += 1
            flows[entry.original.source]?.ports.insert(entry.original.destinationPort)
        }
        let firstPass = max(1, (Int(portRange.upperBound) - Int(portRange.lowerBound)) / 2 + 1)
        return flows.filter { $0.value.ports.count >= 2 }
            .map { Exposure(client: $0.key, liveFlows: $0.value.count, podPorts: $0.value.ports.sorted(), perConnect: Double($0.value.count) / Double(firstPass)) }
            .sorted { ($0.perConnect, $1.client) > ($1.perConnect, $0.client) }
    }
}

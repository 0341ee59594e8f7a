import NetCore
import SystemPackage

/// A socket for single packets: UDP datagrams, or raw IPv4 payloads of one protocol (a
/// hand-built TCP segment) with the kernel writing the IP header. Labs use it to make
/// conntrack see what real clients send: a resolver retrying a dead endpoint, two SYNs of
/// one flow racing on two CPUs.
public final class PacketSocket: @unchecked Sendable {
    private let descriptor: Int32

    /// - Parameters:
    ///   - protocolNumber: nil for UDP; an IP protocol for a raw socket (needs CAP_NET_RAW).
    ///   - source: the address (and UDP port) to send from; nil lets routing choose.
    public init(raw protocolNumber: UInt8? = nil, source: Endpoint? = nil) throws {
        descriptor = try makePacketSocket(raw: protocolNumber.map(Int32.init), source: source)
    }

    deinit { closeDescriptor(descriptor) }

    /// Sends one packet; the errno a refusal carried (EPERM when netfilter dropped it),
    /// nil when it left.
    @discardableResult
    public func send(_ bytes: [UInt8], to endpoint: Endpoint) throws -> Errno? {
        try sendPacket(descriptor, bytes, to: endpoint)
    }
}

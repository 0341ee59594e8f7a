import Netlink

/// Which conntrack events the kernel hands a watch's event socket. Every event a watch
/// judges (a sidecar flow destroyed, a connect onto a leaked socket's tuple, its outcome)
/// is a TCP flow whose reply comes from a capture port (REDIRECT rewrote its destination
/// to the proxy's), so the rest of a node's churn can stay in the kernel.
public enum ConntrackEventFilter: String, Sendable, CaseIterable {
    /// TCP events whose reply tuple's source port is a capture port.
    case ports
    /// TCP events: as far as libnetfilter_conntrack's `nfct_filter` goes. It tests the
    /// protocol, TCP state, addresses and mark, never a port, so a node's TCP churn (most
    /// of it) still reaches the reader.
    case tcp
    /// Every event: to compare, or to rule the filter out.
    case off

    /// Past this many ports the comparisons would outgrow cBPF's one-byte jumps; such a
    /// watch (custom profiles by the hundred) falls back to the TCP filter.
    public static let mostPorts = 200

    /// The cBPF program that keeps what this filter selects; nil for `off`. Each event is
    /// one ctnetlink message per datagram: its attributes start after the netlink and
    /// nfgenmsg headers, and the reply tuple nests the protocol number and ports.
    public func program(capturePorts: Set<UInt16>) -> SocketFilterProgram? {
        if self == .off { return nil }
        var program = SocketFilterProgram()
        program.loadConstant(UInt32(NetlinkConstant.headerSize + Ctnetlink.familyHeaderSize))
        program.findAttribute(Ctnetlink.tupleReply, nested: false, else: .reject)
        program.findAttribute(Ctnetlink.tupleProto, nested: true, else: .reject)
        program.rememberOffset()
        program.findAttribute(Ctnetlink.protoNumber, nested: true, else: .reject)
        program.loadPayload(bytes: 1)
        guard self == .ports, (1...Self.mostPorts).contains(capturePorts.count) else {
            program.jump(ifEqualTo: UInt32(IPProtocolName.tcp), then: .accept, else: .reject)
            return program.finished()
        }
        program.jump(ifEqualTo: UInt32(IPProtocolName.tcp), then: nil, else: .reject)
        program.recallOffset()
        program.findAttribute(Ctnetlink.protoSourcePort, nested: true, else: .reject)
        program.loadPayload(bytes: 2)
        // Falling past the last comparison is the reject verdict.
        for port in capturePorts.sorted() { program.jump(ifEqualTo: UInt32(port), then: .accept, else: nil) }
        return program.finished() ?? Self.tcp.program(capturePorts: [])
    }
}

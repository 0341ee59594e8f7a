import Netlink

/// Which conntrack events the kernel hands a watch's event socket. Every event a watch
/// judges is a TCP flow whose reply comes from a capture port (REDIRECT rewrote its
/// destination to the proxy's), and of a sidecar's own flows only three moments matter: a
/// new flow (it may land on a leaked socket's tuple), an update that reached ESTABLISHED
/// (a collision recovered), and a destroy before the close finished (a leak may be born, or
/// a collision failed). The rest of a node's churn, and the rest of each sidecar flow's
/// life (SYN_RECV, FIN_WAIT, TIME_WAIT updates; clean TIME_WAIT and CLOSE destroys), can
/// stay in the kernel.
public enum ConntrackEventFilter: String, Sendable, CaseIterable {
    /// The capture ports' TCP flows, at the three moments above.
    case ports
    /// TCP events: as far as filtering by protocol goes. libnetfilter_conntrack's
    /// `nfct_filter` tests protocol, TCP state, addresses and mark, never a port or whether
    /// a message is a new entry, an update or a destroy.
    case tcp
    /// Every event: to compare, or to rule the filter out.
    case off

    /// Past this many ports the comparisons would outgrow cBPF's one-byte jumps; such a
    /// watch (custom profiles by the hundred) falls back to the TCP filter.
    public static let mostPorts = 200

    /// Scratch words: the reply tuple's CTA_TUPLE_PROTO, and the flow's TCP state.
    static let tupleSlot = SocketFilterProgram.Slot(0)
    static let stateSlot = SocketFilterProgram.Slot(1)

    /// Where nlmsghdr's native-endian fields put the bytes tested: the low byte of
    /// nlmsg_type (ctnetlink's message: IPCTNL_MSG_CT_NEW or _DELETE) and the byte of
    /// nlmsg_flags that holds NLM_F_CREATE.
    static let littleEndian = UInt16(1).littleEndian == 1
    static let messageByte: UInt32 = littleEndian ? 4 : 5
    static let createFlagByte: UInt32 = littleEndian ? 7 : 6
    static let createFlagBit = UInt32(NetlinkConstant.create >> 8)

    /// The cBPF program that keeps what this filter selects; nil for `off`. Each event is
    /// one ctnetlink message per datagram: its attributes start after the netlink and
    /// nfgenmsg headers, the reply tuple nests the protocol number and ports, and
    /// CTA_PROTOINFO nests the TCP state (in a destroy always; in a new entry and in an
    /// update when the state changed).
    public func program(capturePorts: Set<UInt16>) -> SocketFilterProgram? {
        if self == .off { return nil }
        let attributes = UInt32(NetlinkConstant.headerSize + Ctnetlink.familyHeaderSize)
        var program = SocketFilterProgram()
        program.loadConstant(attributes)
        program.findAttribute(Ctnetlink.tupleReply, nested: false, else: .reject)
        program.findAttribute(Ctnetlink.tupleProto, nested: true, else: .reject)
        program.store(in: Self.tupleSlot)
        program.findAttribute(Ctnetlink.protoNumber, nested: true, else: .reject)
        program.loadPayload(bytes: 1)
        let ports = capturePorts.sorted()
        guard self == .ports, (1...Self.mostPorts).contains(ports.count) else {
            program.jump(ifEqualTo: UInt32(IPProtocolName.tcp), then: .accept, else: .reject)
            return program.finished()
        }
        program.jump(ifEqualTo: UInt32(IPProtocolName.tcp), then: nil, else: .reject)
        program.load(from: Self.tupleSlot)
        program.findAttribute(Ctnetlink.protoSourcePort, nested: true, else: .reject)
        program.loadPayload(bytes: 2)
        for port in ports.dropLast() { program.jump(ifEqualTo: UInt32(port), then: .label("sidecar"), else: nil) }
        program.jump(ifEqualTo: UInt32(ports[ports.count - 1]), then: nil, else: .reject)

        // A sidecar flow: which moment of its life is this?
        program.mark("sidecar")
        program.loadConstant(attributes)
        // Without a TCP state there is nothing to refuse it on: the reader judges it.
        program.findAttribute(Ctnetlink.protoInfo, nested: false, else: .accept)
        program.findAttribute(Ctnetlink.protoInfoTCP, nested: true, else: .accept)
        program.findAttribute(Ctnetlink.protoInfoState, nested: true, else: .accept)
        program.loadPayload(bytes: 1)
        program.store(in: Self.stateSlot)
        program.loadByte(at: Self.messageByte)
        program.jump(ifEqualTo: UInt32(Ctnetlink.messageDelete), then: .label("destroyed"), else: nil)
        // IPCTNL_MSG_CT_NEW: a new entry carries NLM_F_CREATE and is kept; an update only
        // when it reached ESTABLISHED.
        program.loadByte(at: Self.createFlagByte)
        program.jump(ifAnyOf: Self.createFlagBit, then: .accept, else: nil)
        program.load(from: Self.stateSlot)
        program.jump(ifEqualTo: UInt32(ConntrackTCPState.established.rawValue), then: .accept, else: .reject)
        // A destroy after the close finished ended cleanly; any other may leave a leak.
        program.mark("destroyed")
        program.load(from: Self.stateSlot)
        program.jump(ifEqualTo: UInt32(ConntrackTCPState.timeWait.rawValue), then: .reject, else: nil)
        program.jump(ifEqualTo: UInt32(ConntrackTCPState.close.rawValue), then: .reject, else: .accept)
        return program.finished() ?? Self.tcp.program(capturePorts: [])
    }
}

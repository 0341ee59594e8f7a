import NetCore
import Netlink

/// Builds ctnetlink requests. Pure: values in, bytes out.
public enum ConntrackRequest {
    /// A dump of the whole table (IPCTNL_MSG_CT_GET with NLM_F_DUMP).
    /// - Parameter family: restrict to one address family; nil dumps IPv4 and IPv6.
    public static func dump(sequence: UInt32, family: AddressFamily? = nil) -> [UInt8] {
        var builder = NetlinkRequestBuilder(
            type: Ctnetlink.type(Ctnetlink.messageGet),
            flags: NetlinkConstant.request | NetlinkConstant.dump,
            sequence: sequence)
        appendFamilyHeader(&builder, family: family)
        return builder.finish()
    }

    /// Creates an entry (IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL), as
    /// `conntrack -I` does. Used to fill tables for tests and the benchmark.
    /// - Parameter redirectTo: when set, the entry is DNATed to this endpoint the way
    ///   iptables REDIRECT does it (CTA_NAT_DST), so the kernel sets DST_NAT itself.
    public static func create(
        _ entry: ConntrackEntry,
        sequence: UInt32,
        redirectTo: Endpoint? = nil,
        acknowledge: Bool = false
    ) -> [UInt8] {
        var flags = NetlinkConstant.request | NetlinkConstant.create | NetlinkConstant.exclusive
        if acknowledge { flags |= NetlinkConstant.ack }
        var builder = NetlinkRequestBuilder(type: Ctnetlink.type(Ctnetlink.messageNew), flags: flags, sequence: sequence)
        appendFamilyHeader(&builder, family: entry.family)
        appendTuple(&builder, Ctnetlink.tupleOriginal, entry.original, protocolNumber: entry.protocolNumber)
        // The kernel wants the reply tuple even when CTA_NAT_DST will rewrite it (EINVAL
        // without); it then derives the rewritten one itself.
        appendTuple(&builder, Ctnetlink.tupleReply, entry.reply, protocolNumber: entry.protocolNumber)
        if let target = redirectTo { appendNATDestination(&builder, target) }
        if let timeout = entry.timeout { builder.attributeBE(Ctnetlink.timeout, timeout) }
        // ctnetlink marks a new entry CONFIRMED before applying CTA_STATUS, and a status
        // word that would clear it is refused with EBUSY; besides it, only SEEN_REPLY and
        // ASSURED may be set from userspace.
        let settable = entry.status.intersection([.seenReply, .assured]).union(.confirmed)
        builder.attributeBE(Ctnetlink.status, settable.rawValue)
        if entry.mark != 0 { builder.attributeBE(Ctnetlink.mark, entry.mark) }
        if entry.zone != 0 { builder.attributeBE(Ctnetlink.zone, entry.zone) }
        if case .tcp(let state) = entry.state { appendTCPState(&builder, state) }
        return builder.finish()
    }

    /// Moves an existing entry, named by its original tuple, to TCP state `state`
    /// (IPCTNL_MSG_CT_NEW without NLM_F_CREATE, as `conntrack -U` does): the kernel then
    /// announces an UPDATE. Used by the tests of the event filters.
    public static func update(_ entry: ConntrackEntry, to state: ConntrackTCPState, sequence: UInt32) -> [UInt8] {
        var builder = NetlinkRequestBuilder(
            type: Ctnetlink.type(Ctnetlink.messageNew), flags: NetlinkConstant.request | NetlinkConstant.ack, sequence: sequence)
        appendFamilyHeader(&builder, family: entry.family)
        appendTuple(&builder, Ctnetlink.tupleOriginal, entry.original, protocolNumber: entry.protocolNumber)
        appendTCPState(&builder, state)
        return builder.finish()
    }

    /// CTA_PROTOINFO / CTA_PROTOINFO_TCP / CTA_PROTOINFO_TCP_STATE.
    static func appendTCPState(_ builder: inout NetlinkRequestBuilder, _ state: ConntrackTCPState) {
        builder.beginNested(Ctnetlink.protoInfo)
        builder.beginNested(Ctnetlink.protoInfoTCP)
        builder.attribute(Ctnetlink.protoInfoState, [state.rawValue])
        builder.endNested()
        builder.endNested()
    }

    static func appendFamilyHeader(_ builder: inout NetlinkRequestBuilder, family: AddressFamily?) {
        // struct nfgenmsg: family, NFNETLINK_V0, res_id (big-endian, 0).
        builder.appendBytes([family?.rawValue ?? 0, 0, 0, 0])
    }

    static func appendTuple(
        _ builder: inout NetlinkRequestBuilder,
        _ type: UInt16,
        _ tuple: ConntrackTuple,
        protocolNumber: UInt8,
        includeAddresses: Bool = true,
        includePorts: Bool = true
    ) {
        builder.beginNested(type)
        if includeAddresses {
            builder.beginNested(Ctnetlink.tupleIP)
            switch (tuple.source, tuple.destination) {
            case (.v4(let source), .v4(let destination)):
                builder.attributeBE(Ctnetlink.ipV4Source, source)
                builder.attributeBE(Ctnetlink.ipV4Destination, destination)
            default:
                builder.attribute(Ctnetlink.ipV6Source, tuple.source.bytes)
                builder.attribute(Ctnetlink.ipV6Destination, tuple.destination.bytes)
            }
            builder.endNested()
        }
        builder.beginNested(Ctnetlink.tupleProto)
        builder.attribute(Ctnetlink.protoNumber, [protocolNumber])
        if includePorts {
            if let icmp = tuple.icmp {
                let v6 = protocolNumber == IPProtocolName.icmpv6
                builder.attributeBE(v6 ? Ctnetlink.protoICMPv6ID : Ctnetlink.protoICMPID, icmp.id)
                builder.attribute(v6 ? Ctnetlink.protoICMPv6Type : Ctnetlink.protoICMPType, [icmp.type])
                builder.attribute(v6 ? Ctnetlink.protoICMPv6Code : Ctnetlink.protoICMPCode, [icmp.code])
            } else if IPProtocolName.hasPorts(protocolNumber) {
                builder.attributeBE(Ctnetlink.protoSourcePort, tuple.sourcePort)
                builder.attributeBE(Ctnetlink.protoDestinationPort, tuple.destinationPort)
            }
        }
        builder.endNested()
        builder.endNested()
    }

    /// CTA_NAT_DST { CTA_NAT_V4_MINIP/MAXIP or V6, CTA_NAT_PROTO { PORT_MIN, PORT_MAX } }
    /// (enum ctattr_nat / ctattr_protonat).
    static func appendNATDestination(_ builder: inout NetlinkRequestBuilder, _ target: Endpoint) {
        let natDestination: UInt16 = 13  // CTA_NAT_DST
        builder.beginNested(natDestination)
        switch target.address {
        case .v4(let value):
            builder.attributeBE(1, value)  // CTA_NAT_V4_MINIP
            builder.attributeBE(2, value)  // CTA_NAT_V4_MAXIP
        case .v6:
            builder.attribute(4, target.address.bytes)  // CTA_NAT_V6_MINIP
            builder.attribute(5, target.address.bytes)  // CTA_NAT_V6_MAXIP
        }
        builder.beginNested(3)  // CTA_NAT_PROTO
        builder.attributeBE(1, target.port)  // CTA_PROTONAT_PORT_MIN
        builder.attributeBE(2, target.port)  // CTA_PROTONAT_PORT_MAX
        builder.endNested()
        builder.endNested()
    }
}

import Conntrack
import NetCore
import Netlink
import SystemPackage

/// Netlink replies shaped the way the kernel sends them, for scripted transports.
/// Attribute numbers are those of include/uapi/linux/netfilter/nfnetlink_conntrack.h.
public enum KernelReplies {
    /// One datagram holding a dump reply message per entry (type CT_NEW, NLM_F_MULTI).
    /// - Parameter interruptedFrom: index of the first message flagged NLM_F_DUMP_INTR.
    public static func conntrack(_ entries: [ConntrackEntry], interruptedFrom: Int? = nil) -> [UInt8] {
        var datagram: [UInt8] = []
        for (index, entry) in entries.enumerated() {
            var flags = NetlinkConstant.multi
            if let interruptedFrom, index >= interruptedFrom { flags |= NetlinkConstant.dumpInterrupted }
            datagram += conntrackMessage(entry, flags: flags)
        }
        return datagram
    }

    public static func conntrackMessage(_ entry: ConntrackEntry, flags: UInt16 = NetlinkConstant.multi) -> [UInt8] {
        var builder = NetlinkRequestBuilder(type: 1 << 8, flags: flags, sequence: 0)
        builder.appendBytes([entry.family.rawValue, 0, 0, 0])
        tuple(&builder, 1, entry.original, entry.protocolNumber)  // CTA_TUPLE_ORIG
        tuple(&builder, 2, entry.reply, entry.protocolNumber)  // CTA_TUPLE_REPLY
        builder.attributeBE(3, entry.status.rawValue)  // CTA_STATUS
        if case .tcp(let state) = entry.state {
            builder.beginNested(4)  // CTA_PROTOINFO
            builder.beginNested(1)  // CTA_PROTOINFO_TCP
            builder.attribute(1, [state.rawValue])  // CTA_PROTOINFO_TCP_STATE
            builder.endNested()
            builder.endNested()
        }
        if let timeout = entry.timeout { builder.attributeBE(7, timeout) }  // CTA_TIMEOUT
        builder.attributeBE(8, entry.mark)  // CTA_MARK
        if let counters = entry.counters {
            for (type, packets, bytes) in [
                (UInt16(9), counters.originalPackets, counters.originalBytes),
                (UInt16(10), counters.replyPackets, counters.replyBytes),
            ] {
                builder.beginNested(type)  // CTA_COUNTERS_ORIG / _REPLY
                builder.attributeBE(1, packets)
                builder.attributeBE(2, bytes)
                builder.endNested()
            }
        }
        builder.attributeBE(11, entry.use ?? 1)  // CTA_USE
        if let id = entry.id { builder.attributeBE(12, id) }  // CTA_ID
        if entry.zone != 0 { builder.attributeBE(18, entry.zone) }  // CTA_ZONE
        if let start = entry.startNanoseconds {
            builder.beginNested(20)  // CTA_TIMESTAMP
            builder.attributeBE(1, start)  // CTA_TIMESTAMP_START
            builder.endNested()
        }
        if !entry.labels.isEmpty {
            // CTA_LABELS: a 16-byte bitmap of host-order longs (little-endian here).
            var bitmap = [UInt8](repeating: 0, count: 16)
            for label in entry.labels { bitmap[label / 8] |= 1 << (label % 8) }
            builder.attribute(22, bitmap)
        }
        return builder.finish()
    }

    private static func tuple(_ builder: inout NetlinkRequestBuilder, _ type: UInt16, _ tuple: ConntrackTuple, _ protocolNumber: UInt8) {
        builder.beginNested(type)
        builder.beginNested(1)  // CTA_TUPLE_IP
        switch (tuple.source, tuple.destination) {
        case (.v4(let source), .v4(let destination)):
            builder.attributeBE(1, source)
            builder.attributeBE(2, destination)
        default:
            builder.attribute(3, tuple.source.bytes)
            builder.attribute(4, tuple.destination.bytes)
        }
        builder.endNested()
        builder.beginNested(2)  // CTA_TUPLE_PROTO
        builder.attribute(1, [protocolNumber])
        builder.attributeBE(2, tuple.sourcePort)
        builder.attributeBE(3, tuple.destinationPort)
        builder.endNested()
        builder.endNested()
    }

    /// NLMSG_DONE with status 0.
    public static func done() -> [UInt8] {
        var builder = NetlinkRequestBuilder(type: NetlinkConstant.done, flags: NetlinkConstant.multi, sequence: 0)
        builder.appendLE(Int32(0))
        return builder.finish()
    }

    /// NLMSG_ERROR carrying -errno.
    public static func error(_ errno: Errno) -> [UInt8] {
        var builder = NetlinkRequestBuilder(type: NetlinkConstant.error, flags: 0, sequence: 0)
        builder.appendLE(-errno.rawValue)
        builder.appendBytes(repeatElement(0, count: 16))  // the offending request's header
        return builder.finish()
    }

    /// A plain TCP entry for scripts: app:port → 10.96.0.1:80, REDIRECTed to 15001.
    public static func sampleEntry(id: UInt32, port: UInt16, state: ConntrackTCPState = .established) -> ConntrackEntry {
        let app = IPAddress.v4(0x0A01_0005)
        return ConntrackEntry(
            family: .ipv4, protocolNumber: 6,
            original: ConntrackTuple(source: app, destination: .v4(0x0A60_0001), sourcePort: port, destinationPort: 80),
            reply: ConntrackTuple(source: .loopbackV4, destination: app, sourcePort: 15001, destinationPort: port),
            state: .tcp(state), status: [.seenReply, .assured, .confirmed, .destinationNAT],
            timeout: 300, id: id, use: 1)
    }
}

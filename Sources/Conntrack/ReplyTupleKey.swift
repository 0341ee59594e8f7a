import NetCore
import Netlink

/// A TCP flow's reply tuple as the socket that answers it sees it: for a sidecar's
/// accepted socket, source is its own address (127.0.0.1:15001) and destination the
/// app's (podIP:ephemeral). IPv4-mapped addresses, as a dual-stack listener reports
/// them, are unmapped, because conntrack tracks those flows as IPv4.
public struct ReplyTupleKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var source: Endpoint
    public var destination: Endpoint

    public init(source: Endpoint, destination: Endpoint) {
        self.source = source.unmapped
        self.destination = destination.unmapped
    }

    /// The key of an entry's reply tuple.
    public init(replyOf entry: ConntrackEntry) {
        self.init(source: entry.reply.sourceEndpoint, destination: entry.reply.destinationEndpoint)
    }

    public var description: String { "\(source) -> \(destination)" }

    /// TCP entries by their reply tuple: what a sidecar's accepted socket looks up. Only
    /// TCP, because the key has no protocol (a UDP flow on the same ports must not win);
    /// the first of two entries on one tuple is kept.
    public static func index(tcpEntries entries: [ConntrackEntry]) -> [ReplyTupleKey: ConntrackEntry] {
        Dictionary(
            entries.lazy.filter { $0.protocolNumber == IPProtocolName.tcp }.map { (ReplyTupleKey(replyOf: $0), $0) },
            uniquingKeysWith: { first, _ in first })
    }

    public static func < (lhs: ReplyTupleKey, rhs: ReplyTupleKey) -> Bool {
        (lhs.source, lhs.destination) < (rhs.source, rhs.destination)
    }
}

extension ConntrackRequest {
    /// A GET that carries only CTA_TUPLE_REPLY. ctnetlink looks it up in the hash by
    /// that tuple: a few microseconds whatever the table size. (NFCT_Q_GET cannot do
    /// this: libnetfilter_conntrack always adds an empty CTA_TUPLE_ORIG, which the
    /// kernel prefers.)
    /// - Parameter acknowledged: ask for an ACK after the entry, so that a lone request
    ///   knows when its answer is complete (batched lookups count their replies instead).
    public static func getByReply(
        _ key: ReplyTupleKey, protocolNumber: UInt8 = IPProtocolName.tcp, acknowledged: Bool = false, sequence: UInt32
    ) -> [UInt8] {
        let builder = replyTupleRequest(Ctnetlink.messageGet, key, protocolNumber: protocolNumber, acknowledged: acknowledged, sequence: sequence)
        return builder.finish()
    }

    /// Sets an existing entry's timeout, finding it by reply tuple: IPCTNL_MSG_CT_NEW
    /// without NLM_F_CREATE updates instead of creating. What raising
    /// nf_conntrack_tcp_timeout_close_wait does to a half-closed flow, for one flow.
    public static func setTimeout(replyOf key: ReplyTupleKey, seconds: UInt32, sequence: UInt32) -> [UInt8] {
        var builder = replyTupleRequest(Ctnetlink.messageNew, key, acknowledged: true, sequence: sequence)
        builder.attributeBE(Ctnetlink.timeout, seconds)
        return builder.finish()
    }

    /// Deletes the entry with this reply tuple (IPCTNL_MSG_CT_DELETE), as
    /// `conntrack -D` does: the benchmark and tests use it to make a flow's entry vanish
    /// the way an expired one does.
    /// - Parameter id: the entry's CTA_ID as last read: the kernel then deletes only that
    ///   entry, and answers ENOENT if the tuple now names another.
    public static func delete(replyOf key: ReplyTupleKey, protocolNumber: UInt8 = IPProtocolName.tcp, id: UInt32? = nil, sequence: UInt32) -> [UInt8] {
        var builder = replyTupleRequest(Ctnetlink.messageDelete, key, protocolNumber: protocolNumber, acknowledged: true, sequence: sequence)
        if let id { builder.attributeBE(Ctnetlink.id, id) }
        return builder.finish()
    }

    /// A request naming its entry by reply tuple alone, before any further attributes.
    private static func replyTupleRequest(
        _ message: UInt16, _ key: ReplyTupleKey, protocolNumber: UInt8 = IPProtocolName.tcp, acknowledged: Bool, sequence: UInt32
    ) -> NetlinkRequestBuilder {
        var builder = NetlinkRequestBuilder(
            type: Ctnetlink.type(message), flags: NetlinkConstant.request | (acknowledged ? NetlinkConstant.ack : 0),
            sequence: sequence)
        appendFamilyHeader(&builder, family: key.source.address.family)
        appendTuple(
            &builder, Ctnetlink.tupleReply,
            ConntrackTuple(
                source: key.source.address, destination: key.destination.address,
                sourcePort: key.source.port, destinationPort: key.destination.port),
            protocolNumber: protocolNumber)
        return builder
    }
}

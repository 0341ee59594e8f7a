/// ctnetlink numbers from include/uapi/linux/netfilter/nfnetlink_conntrack.h and
/// nfnetlink.h. Each keeps its C name in a comment; cited once here, used by name.
enum Ctnetlink {
    static let subsystem: UInt16 = 1  // NFNL_SUBSYS_CTNETLINK
    static let messageNew: UInt16 = 0  // IPCTNL_MSG_CT_NEW
    static let messageGet: UInt16 = 1  // IPCTNL_MSG_CT_GET
    static let messageDelete: UInt16 = 2  // IPCTNL_MSG_CT_DELETE

    static func type(_ message: UInt16) -> UInt16 { subsystem << 8 | message }

    /// Size of struct nfgenmsg, the fixed header before attributes.
    static let familyHeaderSize = 4

    // enum ctattr_type
    static let tupleOriginal: UInt16 = 1  // CTA_TUPLE_ORIG
    static let tupleReply: UInt16 = 2  // CTA_TUPLE_REPLY
    static let status: UInt16 = 3  // CTA_STATUS
    static let protoInfo: UInt16 = 4  // CTA_PROTOINFO
    static let timeout: UInt16 = 7  // CTA_TIMEOUT
    static let mark: UInt16 = 8  // CTA_MARK
    static let countersOriginal: UInt16 = 9  // CTA_COUNTERS_ORIG
    static let countersReply: UInt16 = 10  // CTA_COUNTERS_REPLY
    static let use: UInt16 = 11  // CTA_USE
    static let id: UInt16 = 12  // CTA_ID
    static let zone: UInt16 = 18  // CTA_ZONE
    static let timestamp: UInt16 = 20  // CTA_TIMESTAMP (nested; with nf_conntrack_timestamp=1)
    static let labels: UInt16 = 22  // CTA_LABELS (a bitmap, NF_CT_LABELS_MAX_SIZE bytes)
    static let markMask: UInt16 = 21  // CTA_MARK_MASK
    static let filter: UInt16 = 25  // CTA_FILTER
    static let statusMask: UInt16 = 26  // CTA_STATUS_MASK

    // enum ctattr_tstamp
    static let timestampStart: UInt16 = 1  // CTA_TIMESTAMP_START: ns since the epoch, be64

    // enum ctattr_tuple
    static let tupleIP: UInt16 = 1  // CTA_TUPLE_IP
    static let tupleProto: UInt16 = 2  // CTA_TUPLE_PROTO
    static let tupleZone: UInt16 = 3  // CTA_TUPLE_ZONE

    // enum ctattr_ip
    static let ipV4Source: UInt16 = 1  // CTA_IP_V4_SRC
    static let ipV4Destination: UInt16 = 2  // CTA_IP_V4_DST
    static let ipV6Source: UInt16 = 3  // CTA_IP_V6_SRC
    static let ipV6Destination: UInt16 = 4  // CTA_IP_V6_DST

    // enum ctattr_l4proto
    static let protoNumber: UInt16 = 1  // CTA_PROTO_NUM
    static let protoSourcePort: UInt16 = 2  // CTA_PROTO_SRC_PORT
    static let protoDestinationPort: UInt16 = 3  // CTA_PROTO_DST_PORT
    static let protoICMPID: UInt16 = 4  // CTA_PROTO_ICMP_ID
    static let protoICMPType: UInt16 = 5  // CTA_PROTO_ICMP_TYPE
    static let protoICMPCode: UInt16 = 6  // CTA_PROTO_ICMP_CODE
    static let protoICMPv6ID: UInt16 = 7  // CTA_PROTO_ICMPV6_ID
    static let protoICMPv6Type: UInt16 = 8  // CTA_PROTO_ICMPV6_TYPE
    static let protoICMPv6Code: UInt16 = 9  // CTA_PROTO_ICMPV6_CODE

    // enum ctattr_protoinfo, and the state attribute inside each protocol's nest
    static let protoInfoTCP: UInt16 = 1  // CTA_PROTOINFO_TCP
    static let protoInfoDCCP: UInt16 = 2  // CTA_PROTOINFO_DCCP
    static let protoInfoSCTP: UInt16 = 3  // CTA_PROTOINFO_SCTP
    static let protoInfoState: UInt16 = 1  // CTA_PROTOINFO_{TCP,DCCP,SCTP}_STATE

    // enum ctattr_counters
    static let counterPackets: UInt16 = 1  // CTA_COUNTERS_PACKETS (u64)
    static let counterBytes: UInt16 = 2  // CTA_COUNTERS_BYTES (u64)
    static let counter32Packets: UInt16 = 3  // CTA_COUNTERS32_PACKETS
    static let counter32Bytes: UInt16 = 4  // CTA_COUNTERS32_BYTES

    // enum ctattr_filter and its flag bits (CTA_FILTER_FLAG(x) = 1 << x's position)
    static let filterOriginalFlags: UInt16 = 1  // CTA_FILTER_ORIG_FLAGS
    static let filterReplyFlags: UInt16 = 2  // CTA_FILTER_REPLY_FLAGS
    static let filterFlagIPSource: UInt32 = 1 << 0  // CTA_FILTER_F_CTA_IP_SRC
    static let filterFlagIPDestination: UInt32 = 1 << 1  // CTA_FILTER_F_CTA_IP_DST
    static let filterFlagProtoNumber: UInt32 = 1 << 3  // CTA_FILTER_F_CTA_PROTO_NUM
    static let filterFlagSourcePort: UInt32 = 1 << 4  // CTA_FILTER_F_CTA_PROTO_SRC_PORT
    static let filterFlagDestinationPort: UInt32 = 1 << 5  // CTA_FILTER_F_CTA_PROTO_DST_PORT
}

extension Ctnetlink {
    static let messageGetStatisticsPerCPU: UInt16 = 4  // IPCTNL_MSG_CT_GET_STATS_CPU
    static let messageGetStatistics: UInt16 = 5  // IPCTNL_MSG_CT_GET_STATS

    // enum ctattr_stats_global
    static let statisticsGlobalEntries: UInt16 = 1  // CTA_STATS_GLOBAL_ENTRIES
    static let statisticsGlobalMaximum: UInt16 = 2  // CTA_STATS_GLOBAL_MAX_ENTRIES
}

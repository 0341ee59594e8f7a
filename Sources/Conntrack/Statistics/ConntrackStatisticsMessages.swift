import NetCore
import Netlink

extension ConntrackRequest {
    /// Every CPU's counters (IPCTNL_MSG_CT_GET_STATS_CPU, a dump: one message per
    /// possible CPU), as `conntrack -S` asks.
    public static func statisticsPerCPU(sequence: UInt32) -> [UInt8] {
        var builder = NetlinkRequestBuilder(
            type: Ctnetlink.type(Ctnetlink.messageGetStatisticsPerCPU),
            flags: NetlinkConstant.request | NetlinkConstant.dump, sequence: sequence)
        appendFamilyHeader(&builder, family: nil)
        return builder.finish()
    }

    /// The namespace's entry count and the node's maximum (IPCTNL_MSG_CT_GET_STATS), as
    /// `conntrack -C` asks. Not a dump: one reply, then the ACK this asks for ends it.
    public static func statistics(sequence: UInt32) -> [UInt8] {
        var builder = NetlinkRequestBuilder(
            type: Ctnetlink.type(Ctnetlink.messageGetStatistics),
            flags: NetlinkConstant.request | NetlinkConstant.ack, sequence: sequence)
        appendFamilyHeader(&builder, family: nil)
        return builder.finish()
    }
}

/// Decodes ctnetlink's statistics replies. Pure: bytes in, values out; lengths checked
/// before every read, unknown attributes skipped.
public enum ConntrackStatisticsDecoder {
    /// Whether a message is one CPU's counters.
    public static func carriesCPUStatistics(_ message: NetlinkMessage) -> Bool {
        message.subsystem == UInt8(Ctnetlink.subsystem) && UInt16(message.command) == Ctnetlink.messageGetStatisticsPerCPU
    }

    /// Whether a message is the global count and maximum.
    public static func carriesGlobalStatistics(_ message: NetlinkMessage) -> Bool {
        message.subsystem == UInt8(Ctnetlink.subsystem) && UInt16(message.command) == Ctnetlink.messageGetStatistics
    }

    /// One CPU's counters: the CPU number rides in nfgenmsg's res_id (big-endian).
    public static func decodeCPU(_ buffer: [UInt8], _ message: NetlinkMessage) throws(NetlinkFramingError) -> ConntrackCPUStatistics {
        let payload = message.payload
        guard payload.count >= Ctnetlink.familyHeaderSize else {
            throw NetlinkFramingError(offset: payload.lowerBound, reason: "statistics message shorter than nfgenmsg")
        }
        let cpu = Int(buffer.uint16BE(at: payload.lowerBound + 2))
        var counters = ConntrackCounterValues()
        var attributes = NetlinkAttributeReader(buffer, range: (payload.lowerBound + Ctnetlink.familyHeaderSize)..<payload.upperBound)
        while let attribute = try attributes.next() {
            guard let counter = ConntrackCounter.allCases.first(where: { $0.attribute == attribute.type }) else { continue }
            counters[counter] = UInt64(try ConntrackMessageDecoder.u32(buffer, attribute))
        }
        return ConntrackCPUStatistics(cpu: cpu, counters: counters)
    }

    /// The namespace's entry count and the node's maximum; either is nil when absent
    /// (CTA_STATS_GLOBAL_MAX_ENTRIES came with 4.9).
    public static func decodeGlobal(_ buffer: [UInt8], _ message: NetlinkMessage) throws(NetlinkFramingError) -> (entries: Int?, maximum: Int?) {
        let payload = message.payload
        guard payload.count >= Ctnetlink.familyHeaderSize else {
            throw NetlinkFramingError(offset: payload.lowerBound, reason: "statistics message shorter than nfgenmsg")
        }
        var entries: Int?
        var maximum: Int?
        var attributes = NetlinkAttributeReader(buffer, range: (payload.lowerBound + Ctnetlink.familyHeaderSize)..<payload.upperBound)
        while let attribute = try attributes.next() {
            switch attribute.type {
            case Ctnetlink.statisticsGlobalEntries: entries = Int(try ConntrackMessageDecoder.u32(buffer, attribute))
            case Ctnetlink.statisticsGlobalMaximum: maximum = Int(try ConntrackMessageDecoder.u32(buffer, attribute))
            default: continue
            }
        }
        return (entries, maximum)
    }
}

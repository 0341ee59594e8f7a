import Conntrack
import NetCore

/// Conntrack entries as an aligned table, with conntrack -L's flags.
public enum ConntrackRendering {
    public static func tableColumns() -> [TextTable.Column] {
        [
            .init("Proto"), .init("State"), .init("Timeout", .right), .init("Source"), .init("Destination"),
            .init("Reply-Source"), .init("Reply-Destination"), .init("Flags"),
        ]
    }

    /// One table row: tuples as endpoints, flags as conntrack -L prints them plus DNAT/SNAT.
    public static func tableRow(_ entry: ConntrackEntry) -> [String] {
        func end(_ tuple: ConntrackTuple, source: Bool) -> String {
            let address = source ? tuple.source : tuple.destination
            if let icmp = tuple.icmp {
                return source ? "\(address) type=\(icmp.type) code=\(icmp.code) id=\(icmp.id)" : address.description
            }
            if entry.hasKeys { return "\(address) key=0x\(String(source ? tuple.sourcePort : tuple.destinationPort, radix: 16))" }
            guard IPProtocolName.hasPorts(entry.protocolNumber) else { return address.description }
            return Endpoint(address, source ? tuple.sourcePort : tuple.destinationPort).description
        }
        var flags: [String] = []
        if !entry.status.contains(.seenReply) { flags.append("UNREPLIED") }
        if entry.status.contains(.assured) { flags.append("ASSURED") }
        if entry.status.contains(.destinationNAT) { flags.append("DNAT") }
        if entry.status.contains(.sourceNAT) || entry.isSourceNATed { flags.append("SNAT") }
        if entry.status.contains(.offload) { flags.append("OFFLOAD") }
        if entry.status.contains(.hardwareOffload) { flags.append("HW_OFFLOAD") }
        if entry.mark != 0 { flags.append("mark=\(entry.mark)") }
        if entry.zone != 0 { flags.append("zone=\(entry.zone)") }
        if let zone = entry.original.zone { flags.append("zone-orig=\(zone)") }
        if let zone = entry.reply.zone { flags.append("zone-reply=\(zone)") }
        return [
            entry.protocolName,
            entry.state?.name ?? "-",
            entry.timeout.map(String.init) ?? "-",
            end(entry.original, source: true),
            end(entry.original, source: false),
            end(entry.reply, source: true),
            end(entry.reply, source: false),
            flags.isEmpty ? "-" : flags.joined(separator: ","),
        ]
    }
}

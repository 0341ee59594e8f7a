import Conntrack
import JSON
import NetCore

/// Conntrack entries as an aligned table, with conntrack -L's flags.
public enum ConntrackRendering {
    public static func tableColumns() -> [TextTable.Column] {
        [
            .init("Proto"), .init("State"), .init("Timeout", .right), .init("Source"), .init("Destination"),
            .init("Reply-Source"), .init("Reply-Destination"), .init("Flags"),
        ]
    }

    /// One table row, written as bytes: tuples as endpoints, flags as conntrack -L
    /// prints them plus DNAT/SNAT. Every cell is ctdoctor's own text (numbers, addresses,
    /// names from fixed tables), so none needs escaping.
    public static func writeRow(_ entry: ConntrackEntry, to row: inout TableRow) {
        row.cell(bound: 32) { $0.write(text: entry.protocolName) }
        row.cell(bound: 32) { $0.write(text: entry.state?.name ?? "-") }
        row.cell(bound: 12) { out in if let timeout = entry.timeout { out.write(number: timeout) } else { out.write("-") } }
        let ports = IPProtocolName.hasPorts(entry.protocolNumber)
        for (tuple, source) in [(entry.original, true), (entry.original, false), (entry.reply, true), (entry.reply, false)] {
            row.cell(bound: 96) { writeEnd(tuple, source: source, ports: ports, keys: entry.hasKeys, to: &$0) }
        }
        row.cell(bound: 160) { writeFlags(entry, to: &$0) }
    }

    /// An endpoint as ss prints it (`10.0.0.1:80`, `[::1]:80`), an ICMP tuple's type,
    /// code and id, a GRE key, or the bare address of a portless protocol.
    static func writeEnd(_ tuple: ConntrackTuple, source: Bool, ports: Bool, keys: Bool, to out: inout OutputSpan<UInt8>) {
        let address = source ? tuple.source : tuple.destination
        let port = source ? tuple.sourcePort : tuple.destinationPort
        if let icmp = tuple.icmp {
            address.writeText(to: &out)
            guard source else { return }
            out.write(" type=")
            out.write(number: icmp.type)
            out.write(" code=")
            out.write(number: icmp.code)
            out.write(" id=")
            out.write(number: icmp.id)
            return
        }
        if keys {
            address.writeText(to: &out)
            out.write(" key=0x")
            out.write(hexadecimal: UInt64(port))
            return
        }
        guard ports else { return address.writeText(to: &out) }
        out.write(endpoint: Endpoint(address, port))
    }

    static func writeFlags(_ entry: ConntrackEntry, to out: inout OutputSpan<UInt8>) {
        var first = true
        func flag(_ text: String) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.write(text: text)
        }
        func flag(_ name: String, _ value: UInt32) {
            flag(name)
            out.append(UInt8(ascii: "="))
            out.write(number: value)
        }
        if !entry.status.contains(.seenReply) { flag("UNREPLIED") }
        if entry.status.contains(.assured) { flag("ASSURED") }
        if entry.status.contains(.destinationNAT) { flag("DNAT") }
        if entry.status.contains(.sourceNAT) || entry.isSourceNATed { flag("SNAT") }
        if entry.status.contains(.offload) { flag("OFFLOAD") }
        if entry.status.contains(.hardwareOffload) { flag("HW_OFFLOAD") }
        if entry.mark != 0 { flag("mark", entry.mark) }
        if entry.zone != 0 { flag("zone", UInt32(entry.zone)) }
        if let zone = entry.original.zone { flag("zone-orig", UInt32(zone)) }
        if let zone = entry.reply.zone { flag("zone-reply", UInt32(zone)) }
        if first { out.write("-") }
    }
}

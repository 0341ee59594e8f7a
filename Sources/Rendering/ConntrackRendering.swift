import Conntrack
import NetCore

/// Conntrack entries as JSON (schema `ctdoctor.conntrack.v1`, documented in
/// man/ctdoctor-conntrack.1 and README) and as an aligned table.
public enum ConntrackRendering {
    public static let schema = "ctdoctor.conntrack.v1"

    /// Appends one entry as a JSON object. Every key is always present (null when the
    /// source did not say), so consumers need no existence checks.
    public static func appendJSON(_ entry: ConntrackEntry, to out: inout [UInt8]) {
        out.append(ascii: "{\"family\":\"")
        out.append(ascii: entry.family == .ipv4 ? "ipv4" : "ipv6")
        out.append(ascii: "\",\"protocol\":")
        out.append(jsonString: entry.protocolName)
        out.append(ascii: ",\"protocol_number\":")
        out.append(number: entry.protocolNumber)
        out.append(ascii: ",\"state\":")
        if let state = entry.state { out.append(jsonString: state.name) } else { out.append(ascii: "null") }
        out.append(ascii: ",\"timeout\":")
        out.append(optionalNumber: entry.timeout)
        out.append(ascii: ",\"original\":")
        appendTuple(entry.original, to: &out)
        out.append(ascii: ",\"reply\":")
        appendTuple(entry.reply, to: &out)
        out.append(ascii: ",\"status\":[")
        var first = true
        for (bit, name) in ConntrackStatus.named where entry.status.contains(bit) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: name.utf8)
            out.append(UInt8(ascii: "\""))
        }
        out.append(ascii: "],\"dnat\":")
        out.append(ascii: entry.status.contains(.destinationNAT) || entry.isDestinationNATed ? "true" : "false")
        out.append(ascii: ",\"mark\":")
        out.append(number: entry.mark)
        out.append(ascii: ",\"zone\":")
        out.append(number: entry.zone)
        out.append(ascii: ",\"id\":")
        out.append(optionalNumber: entry.id)
        out.append(ascii: ",\"use\":")
        out.append(optionalNumber: entry.use)
        out.append(ascii: ",\"counters\":")
        if let counters = entry.counters {
            out.append(ascii: "{\"original\":{\"packets\":")
            out.append(decimal: counters.originalPackets)
            out.append(ascii: ",\"bytes\":")
            out.append(decimal: counters.originalBytes)
            out.append(ascii: "},\"reply\":{\"packets\":")
            out.append(decimal: counters.replyPackets)
            out.append(ascii: ",\"bytes\":")
            out.append(decimal: counters.replyBytes)
            out.append(ascii: "}}")
        } else {
            out.append(ascii: "null")
        }
        out.append(UInt8(ascii: "}"))
    }

    static func appendTuple(_ tuple: ConntrackTuple, to out: inout [UInt8]) {
        out.append(ascii: "{\"src\":")
        out.append(jsonAddress: tuple.source)
        out.append(ascii: ",\"dst\":")
        out.append(jsonAddress: tuple.destination)
        if let icmp = tuple.icmp {
            out.append(ascii: ",\"sport\":null,\"dport\":null,\"icmp\":{\"type\":")
            out.append(number: icmp.type)
            out.append(ascii: ",\"code\":")
            out.append(number: icmp.code)
            out.append(ascii: ",\"id\":")
            out.append(number: icmp.id)
            out.append(ascii: "}}")
        } else {
            out.append(ascii: ",\"sport\":")
            out.append(number: tuple.sourcePort)
            out.append(ascii: ",\"dport\":")
            out.append(number: tuple.destinationPort)
            out.append(ascii: ",\"icmp\":null}")
        }
    }

    /// The fields after the entries array in `--format json`: they are known only once
    /// the dump has ended. `notices` are the warnings also printed on standard error.
    public static func appendJSONTrailer(
        namespace: String, report: ConntrackReadReport, notices: [String], to out: inout [UInt8]
    ) {
        out.append(ascii: "],\"count\":")
        out.append(number: report.matched)
        out.append(ascii: ",\"namespace\":")
        out.append(jsonString: namespace)
        out.append(ascii: ",\"source\":")
        out.append(jsonString: report.source.name)
        out.append(ascii: ",\"consistent\":")
        out.append(ascii: report.consistent ? "true" : "false")
        out.append(ascii: ",\"passes\":")
        out.append(number: report.passes)
        out.append(ascii: ",\"notices\":")
        out.append(jsonStrings: notices)
        out.append(ascii: "}\n")
    }

    /// The whole answer of `--count` in JSON.
    public static func appendCountJSON(
        namespace: String, report: ConntrackReadReport, notices: [String], to out: inout [UInt8]
    ) {
        out.append(ascii: "{\"schema\":\"ctdoctor.conntrack.count.v1\",\"count\":")
        out.append(number: report.matched)
        out.append(ascii: ",\"namespace\":")
        out.append(jsonString: namespace)
        out.append(ascii: ",\"source\":")
        out.append(jsonString: report.source.name)
        out.append(ascii: ",\"consistent\":")
        out.append(ascii: report.consistent ? "true" : "false")
        out.append(ascii: ",\"notices\":")
        out.append(jsonStrings: notices)
        out.append(ascii: "}\n")
    }

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
            guard IPProtocolName.hasPorts(entry.protocolNumber) else { return address.description }
            return Endpoint(address, source ? tuple.sourcePort : tuple.destinationPort).description
        }
        var flags: [String] = []
        if !entry.status.contains(.seenReply) { flags.append("UNREPLIED") }
        if entry.status.contains(.assured) { flags.append("ASSURED") }
        if entry.status.contains(.destinationNAT) || entry.isDestinationNATed { flags.append("DNAT") }
        if entry.status.contains(.sourceNAT) || entry.isSourceNATed { flags.append("SNAT") }
        if entry.status.contains(.offload) { flags.append("OFFLOAD") }
        if entry.status.contains(.hardwareOffload) { flags.append("HW_OFFLOAD") }
        if entry.mark != 0 { flags.append("mark=\(entry.mark)") }
        if entry.zone != 0 { flags.append("zone=\(entry.zone)") }
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

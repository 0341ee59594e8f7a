import Conntrack
import NetCore

/// Conntrack entries as JSON (schema `ctdoctor.conntrack.v1`, documented in
/// man/ctdoctor-conntrack.1 and README) and as an aligned table.
public enum ConntrackRendering {
    public static let schema = "ctdoctor.conntrack.v1"

    /// An upper bound on one entry's JSON: fixed text ~350 bytes, four addresses of at
    /// most 47, every status name (~200), the longest state and protocol names,
    /// twenty-digit counters and start, and all 128 label bits (~500) fit under it.
    static let entryBound = 2048

    /// Appends one entry as a JSON object. Every key is always present (null when the
    /// source did not say), so consumers need no existence checks.
    public static func appendJSON(_ entry: ConntrackEntry, to out: inout [UInt8]) {
        out.appendRecord(bound: entryBound) { writeJSON(entry, to: &$0) }
    }

    static func writeJSON(_ entry: ConntrackEntry, to out: inout OutputSpan<UInt8>) {
        out.write(entry.family == .ipv4 ? "{\"family\":\"ipv4\",\"protocol\":" : "{\"family\":\"ipv6\",\"protocol\":")
        out.write(jsonString: entry.protocolName)
        out.write(",\"protocol_number\":")
        out.write(number: entry.protocolNumber)
        out.write(",\"state\":")
        if let state = entry.state { out.write(jsonString: state.name) } else { out.write("null") }
        out.write(",\"timeout\":")
        out.write(optionalNumber: entry.timeout)
        out.write(",\"original\":")
        let ports = entry.hasPorts
        writeTuple(entry.original, ports: ports, keys: entry.hasKeys, to: &out)
        out.write(",\"reply\":")
        writeTuple(entry.reply, ports: ports, keys: entry.hasKeys, to: &out)
        out.write(",\"status\":[")
        var first = true
        for (bit, name) in ConntrackStatus.named where entry.status.contains(bit) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "\""))
            out.write(name)
            out.append(UInt8(ascii: "\""))
        }
        out.write(entry.status.contains(.destinationNAT) ? "],\"dnat\":true,\"mark\":" : "],\"dnat\":false,\"mark\":")
        out.write(number: entry.mark)
        out.write(",\"zone\":")
        out.write(number: entry.zone)
        out.write(",\"id\":")
        out.write(optionalNumber: entry.id)
        out.write(",\"use\":")
        out.write(optionalNumber: entry.use)
        out.write(",\"start_ns\":")
        out.write(optionalNumber: entry.startNanoseconds)
        out.write(",\"age_seconds\":")
        out.write(optionalNumber: entry.ageSeconds)
        out.write(",\"labels\":[")
        for (index, label) in entry.labels.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.write(number: label)
        }
        out.write("]")
        out.write(",\"counters\":")
        if let counters = entry.counters {
            out.write("{\"original\":{\"packets\":")
            out.write(decimal: counters.originalPackets)
            out.write(",\"bytes\":")
            out.write(decimal: counters.originalBytes)
            out.write("},\"reply\":{\"packets\":")
            out.write(decimal: counters.replyPackets)
            out.write(",\"bytes\":")
            out.write(decimal: counters.replyBytes)
            out.write("}}")
        } else {
            out.write("null")
        }
        out.append(UInt8(ascii: "}"))
    }

    /// - Parameter ports: whether the protocol has ports (TCP, UDP, SCTP, DCCP,
    ///   UDP-Lite); null for the others, as README promises, rather than a made-up 0.
    /// - Parameter keys: GRE: `keys` is {src, dst}, null for every other protocol.
    static func writeTuple(_ tuple: ConntrackTuple, ports: Bool, keys: Bool = false, to out: inout OutputSpan<UInt8>) {
        out.write("{\"src\":")
        out.write(jsonAddress: tuple.source)
        out.write(",\"dst\":")
        out.write(jsonAddress: tuple.destination)
        if keys {
            out.write(",\"keys\":{\"src\":")
            out.write(number: tuple.sourcePort)
            out.write(",\"dst\":")
            out.write(number: tuple.destinationPort)
            out.write("},\"zone\":")
        } else {
            out.write(",\"keys\":null,\"zone\":")
        }
        out.write(optionalNumber: tuple.zone)
        if let icmp = tuple.icmp {
            out.write(",\"sport\":null,\"dport\":null,\"icmp\":{\"type\":")
            out.write(number: icmp.type)
            out.write(",\"code\":")
            out.write(number: icmp.code)
            out.write(",\"id\":")
            out.write(number: icmp.id)
            out.write("}}")
        } else if !ports {
            out.write(",\"sport\":null,\"dport\":null,\"icmp\":null}")
        } else {
            out.write(",\"sport\":")
            out.write(number: tuple.sourcePort)
            out.write(",\"dport\":")
            out.write(number: tuple.destinationPort)
            out.write(",\"icmp\":null}")
        }
    }

    /// The fields after the entries array in `--format json`: they are known only once
    /// the dump has ended. `notices` are the warnings also printed on standard error.
    public static func appendJSONTrailer(
        namespace: String, report: ConntrackReadReport, notices: [String], to out: inout [UInt8]
    ) {
        out.appendRecord(bound: metadataBound(namespace: namespace, notices: notices)) { out in
            out.write("],\"count\":")
            out.write(number: report.matched)
            writeMetadata(namespace: namespace, report: report, notices: notices, to: &out)
            out.write(",\"passes\":")
            out.write(number: report.passes)
            out.write("}\n")
        }
    }

    static func metadataBound(namespace: String, notices: [String]) -> Int {
        256 + OutputSpan<UInt8>.jsonStringBound(namespace) + notices.reduce(0) { $0 + OutputSpan<UInt8>.jsonStringBound($1) + 1 }
    }

    static func writeMetadata(namespace: String, report: ConntrackReadReport, notices: [String], to out: inout OutputSpan<UInt8>) {
        out.write(",\"namespace\":")
        out.write(jsonString: namespace)
        out.write(",\"source\":")
        out.write(jsonString: report.source.name)
        out.write(report.consistent ? ",\"consistent\":true" : ",\"consistent\":false")
        out.write(",\"notices\":")
        out.write(jsonStrings: notices)
    }

    /// The whole answer of `--count` in JSON.
    public static func appendCountJSON(
        namespace: String, report: ConntrackReadReport, notices: [String], to out: inout [UInt8]
    ) {
        out.appendRecord(bound: metadataBound(namespace: namespace, notices: notices)) { out in
            out.write("{\"schema\":\"ctdoctor.conntrack.count.v1\",\"count\":")
            out.write(number: report.matched)
            writeMetadata(namespace: namespace, report: report, notices: notices, to: &out)
            out.write("}\n")
        }
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

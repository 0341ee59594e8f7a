import Conntrack
import JSON
import NetCore

/// The `ctdoctor.conntrack.v1` ENTRY record (documented in man/ctdoctor-conntrack.1 and
/// README) and the listing around it: written by `conntrack`, read back from pasted
/// listings and snapshots. The writer and the reader sit side by side so that a field
/// added to one is seen missing from the other (`FormatRoundTripTests`).
public enum ConntrackRecord {
    public static let schema = "ctdoctor.conntrack.v1"
    public static let countSchema = "ctdoctor.conntrack.count.v1"
    /// What a `--format json` listing starts with, before its entries.
    public static let documentHead = "{\"schema\":\"\(schema)\",\"entries\":["

    /// An upper bound on one entry's JSON: fixed text ~350 bytes, four addresses of at
    /// most 47, every status name (~200), the longest state and protocol names,
    /// twenty-digit counters and start, and all 128 label bits (~500) fit under it.
    public static let entryBound = 2048

    /// Appends one entry as a JSON object. Every key is always present (null when the
    /// source did not say), so consumers need no existence checks.
    public static func appendJSON(_ entry: ConntrackEntry, to out: inout [UInt8]) {
        out.appendRecord(bound: entryBound) { writeJSON(entry, to: &$0) }
    }

    public static func writeJSON(_ entry: ConntrackEntry, to out: inout OutputSpan<UInt8>) {
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
            out.write(text: name)
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
            out.write(text: "{\"schema\":\"\(countSchema)\",\"count\":")
            out.write(number: report.matched)
            writeMetadata(namespace: namespace, report: report, notices: notices, to: &out)
            out.write("}\n")
        }
    }

    // MARK: Reading

    /// Reads one record back; each failure names its place in the document.
    public static func read(_ field: JSONField) throws(JSONError) -> ConntrackEntry {
        let protocolNumber: UInt8 = try field["protocol_number"].integer()
        var state: ConntrackState?
        if let name = try field["state"].optionalString() {
            guard let parsed = ConntrackState(protocolNumber: protocolNumber, name: name) else {
                throw field["state"].fail("\(name) is not a state of protocol \(protocolNumber)")
            }
            state = parsed
        }
        var status = ConntrackStatus()
        for item in try field["status"].array() {
            let name = try item.string()
            guard let bit = ConntrackStatus.named.first(where: { $0.1 == name })?.0 else { throw item.fail("\(name) is not a conntrack status bit") }
            status.insert(bit)
        }
        var counters: ConntrackCounters?
        let counterField = field["counters"]
        if !counterField.isNull {
            counters = ConntrackCounters(
                originalPackets: try counterField["original"]["packets"].integer(),
                originalBytes: try counterField["original"]["bytes"].integer(),
                replyPackets: try counterField["reply"]["packets"].integer(), replyBytes: try counterField["reply"]["bytes"].integer())
        }
        var entry = ConntrackEntry(
            family: try field["family"].family(), protocolNumber: protocolNumber, original: try tuple(field["original"]),
            reply: try tuple(field["reply"]), state: state, status: status, timeout: try field["timeout"].optionalInteger(),
            mark: try field["mark"].integer(), zone: try field["zone"].integer(), id: try field["id"].optionalInteger(),
            use: try field["use"].optionalInteger(), counters: counters)
        // Absent from records written before they were added: read as unknown and none.
        entry.startNanoseconds = try field["start_ns"].optionalInteger()
        entry.ageSeconds = try field["age_seconds"].optionalInteger()
        let labelField = field["labels"]
        if !labelField.isNull {
            entry.labels = try labelField.array().map { item throws(JSONError) in try item.integer(in: 0...127) }
        }
        return entry
    }

    static func tuple(_ field: JSONField) throws(JSONError) -> ConntrackTuple {
        var tuple = ConntrackTuple(
            source: try field["src"].address(), destination: try field["dst"].address(),
            sourcePort: try field["sport"].optionalInteger() ?? 0, destinationPort: try field["dport"].optionalInteger() ?? 0)
        // GRE keys live in the port fields; a direction's own zone only where it has one.
        let keys = field["keys"]
        if !keys.isNull {
            tuple.sourcePort = try keys["src"].integer()
            tuple.destinationPort = try keys["dst"].integer()
        }
        tuple.zone = try field["zone"].optionalInteger()
        let icmp = field["icmp"]
        if !icmp.isNull {
            tuple.icmp = ICMPKey(type: try icmp["type"].integer(), code: try icmp["code"].integer(), id: try icmp["id"].integer())
        }
        return tuple
    }
}

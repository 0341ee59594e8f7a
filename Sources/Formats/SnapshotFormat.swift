import Conntrack
import Diagnosis
import JSON
import NetCore
import Sockets

/// A namespace's facts frozen for offline analysis (`ctdoctor.snapshot.v1`): what a
/// diagnosis reads, with the whole socket and conntrack tables, so that any option
/// (another --sidecar, --stall-after…) gives the same findings offline as live.
public struct Snapshot: Sendable {
    public var input: DiagnosisInput
    /// Seconds since the Unix epoch when it was taken.
    public var capturedAt: Double
    /// The ctdoctor that took it.
    public var version: String

    public init(input: DiagnosisInput, capturedAt: Double, version: String) {
        self.input = input
        self.capturedAt = capturedAt
        self.version = version
    }
}

/// Writes and reads snapshot documents. Pure: values to bytes and back. Sockets and
/// conntrack entries use the documented `ctdoctor.sockets.v1` and
/// `ctdoctor.conntrack.v1` record shapes, so a snapshot is readable with jq like any
/// other ctdoctor output.
public enum SnapshotFormat {
    public static let schema = "ctdoctor.snapshot.v1"

    public static func encode(_ snapshot: Snapshot) -> [UInt8] {
        let input = snapshot.input
        let kernel = input.kernel
        var out: [UInt8] = []
        out.reserveCapacity(512 * (input.sockets.count + input.conntrack.count) + 4096)
        func append(_ value: JSONValue) { value.write(to: &out) }
        func text(_ string: String) { out += Array(string.utf8) }
        text("{\"schema\":\"\(schema)\",\"ctdoctor_version\":")
        append(.string(snapshot.version))
        text(",\"captured_at\":")
        append(.number(snapshot.capturedAt))
        text(",\"namespace\":")
        append(.string(input.namespace))
        text(",\"kernel\":")
        append(.object([
            ("release", .string(kernel.release)),
            ("nf_conntrack_tcp_timeout_close_wait", .integer(kernel.closeWaitTimeout)),
            ("nf_conntrack_tcp_timeout_syn_sent", .integer(kernel.synSentTimeout)),
            ("nf_conntrack_tcp_ignore_invalid_rst", .integer(kernel.ignoreInvalidRST)),
            ("nf_conntrack_tcp_be_liberal", .integer(kernel.beLiberal)),
            ("nf_conntrack_count", .integer(kernel.conntrackCount)),
            ("nf_conntrack_max", .integer(kernel.conntrackMax)),
            ("ip_local_port_range", kernel.portRange.map { .array([.integer(Int64($0.lowerBound)), .integer(Int64($0.upperBound))]) } ?? .null),
            ("ip_local_reserved_ports", .array(kernel.reservedPorts.sorted().map { .integer(Int64($0)) })),
            ("conntrack_statistics", kernel.conntrackCounters.map(ConntrackStatisticsRecord.json) ?? .null),
        ]))
        text(",\"counters\":")
        append(.object(input.counters.sorted { $0.key < $1.key }.map { ($0.key, .integer($0.value)) }))
        text(",\"rules\":")
        append(.object([
            ("invalid_drop", input.rules.invalidDrop.map { .bool($0) } ?? .null),
            ("source", .string(input.rules.source)),
            ("matching_rule", .string(input.rules.matchingRule)),
        ]))
        text(",\"sidecar_process\":")
        append(input.sidecarProcess.map { process in
            .object([
                ("pid", .integer(Int64(process.pid))), ("command", .string(process.command)),
                ("uptime_seconds", process.uptimeSeconds.map { .number($0) } ?? .null),
                ("idle_timeout_setting", .string(process.idleTimeoutSetting)),
                ("foreign_namespace", .string(process.foreignNamespace)),
            ])
        } ?? .null)
        text(",\"sockets\":{")
        JSONValue.writeMembers(socketSource(input.socketSource), to: &out)
        text(",\"items\":[")
        for (index, socket) in input.sockets.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            SocketRecord.appendJSON(socket, owners: input.owners[socket.inode].flatMap { socket.inode == 0 ? nil : $0 }, to: &out)
        }
        text("]},\"conntrack\":{")
        JSONValue.writeMembers(conntrackSource(input.conntrackSource), to: &out)
        text(",\"entries\":[")
        for (index, entry) in input.conntrack.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            ConntrackRecord.appendJSON(entry, to: &out)
        }
        text("]},\"notices\":")
        append(.strings(input.notices))
        text("}\n")
        return out
    }

    /// How each table says where it came from: `source` names the kind, the other
    /// members carry what that kind knows (why the /proc fallback, which file), so that
    /// the value reads back without parsing a sentence.
    static func socketSource(_ source: SocketSource) -> [(String, JSONValue)] {
        switch source {
        case .sockDiag: [("source", .string(source.name))]
        case .procFile(let reason): [("source", .string(source.name)), ("reason", .string(reason))]
        case .file(let format, let path, let hasTCPInfo):
            [("source", .string(source.name)), ("format", .string(format.rawValue)), ("path", .string(path)), ("tcp_info", .bool(hasTCPInfo))]
        }
    }

    static func conntrackSource(_ source: ConntrackProvenance) -> [(String, JSONValue)] {
        switch source {
        case .lookups(let count): [("source", .string(source.name)), ("lookups", .integer(count))]
        case .dump(.netlink), .unreadable: [("source", .string(source.name))]
        case .dump(.procFile(let reason)): [("source", .string(source.name)), ("reason", .string(reason))]
        case .file(let format, let path): [("source", .string(source.name)), ("format", .string(format.rawValue)), ("path", .string(path))]
        }
    }

    /// Reads a snapshot; `source` names it in errors.
    /// - Throws: `SnapshotError` naming what is wrong and where.
    public static func decode(_ bytes: [UInt8], source: String) throws(SnapshotError) -> Snapshot {
        do throws(JSONError) {
            // The two tables stream: each record becomes a value as it is read, and the
            // document keeps only the rest. The first record that fails is reported
            // after the schema check, so another document still says what it is.
            var tables = SnapshotReader.Tables()
            let document = JSONField(
                node: try JSONReader.parse(bytes, streaming: SnapshotReader.Tables.paths) { tables.read($0) }, path: .root)
            // The schema first, so another document says what it is instead of failing
            // on its first missing key.
            let found = try document["schema"].optionalString()
            guard found == schema else {
                if let found, found.hasPrefix("ctdoctor.snapshot.v") {
                    throw document["schema"].fail("\(found) is a snapshot format this ctdoctor does not read (it reads \(schema)): take the snapshot with the same ctdoctor version, or upgrade this one")
                }
                throw document["schema"].fail("\(found ?? "missing"), not \(schema): not a ctdoctor snapshot")
            }
            if let failure = tables.failure { throw failure }
            return try SnapshotReader.snapshot(document, tables: tables)
        } catch {
            throw SnapshotError(source: source, reason: error.reason)
        }
    }
}

/// A snapshot that could not be read, in one line.
public struct SnapshotError: Error, Sendable, CustomStringConvertible {
    public var source: String
    public var reason: String
    public var description: String { "\(source): \(reason)" }
}


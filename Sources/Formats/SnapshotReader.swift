import Conntrack
import Diagnosis
import JSON
import NetCore
import Sockets

/// What a snapshot's numbers can be on a real kernel; anything else is refused where it
/// stands, not carried into the diagnosis.
enum SnapshotLimits {
    /// Seconds since the epoch, up to the year 2100.
    static let capturedAt = 0.0...4_102_444_800
    /// A process cannot be older than a century.
    static let uptimeSeconds = 0.0...3_155_760_000
    /// Conntrack timeouts are ints of seconds (proc_dointvec_jiffies).
    static let sysctlSeconds = 0...Int(Int32.max)
    /// The 0/1 switches (ignore_invalid_rst, be_liberal).
    static let flag = 0...1
    /// nf_conntrack_count and nf_conntrack_max are unsigned ints.
    static let tableSize = 0...Int(UInt32.max)
}

/// Reads the parts of a snapshot into model values, checking what JSON types cannot
/// (address syntax, state names, ranges); each failure names its place in the document.
enum SnapshotReader {
    /// The socket and conntrack records, read one by one as the parser streams them.
    struct Tables {
        static let socketPath = "sockets.items"
        static let conntrackPath = "conntrack.entries"
        static let paths: Set<String> = [socketPath, conntrackPath]

        var sockets: [TCPSocket] = []
        var owners: [UInt64: [SocketOwner]] = [:]
        var entries: [ConntrackEntry] = []
        /// The first record that did not read; the rest are skipped.
        var failure: JSONError?

        mutating func read(_ item: JSONField) {
            guard failure == nil else { return }
            do throws(JSONError) {
                if item.path.text.hasPrefix(Self.socketPath) {
                    let (socket, processes) = try SocketRecord.read(item)
                    sockets.append(socket)
                    if let processes, socket.inode != 0 { owners[socket.inode] = processes }
                } else {
                    entries.append(try ConntrackRecord.read(item))
                }
            } catch {
                failure = error
            }
        }
    }

    static func snapshot(_ document: JSONField, tables: Tables) throws(JSONError) -> Snapshot {
        let sockets = tables.sockets
        let owners = tables.owners
        let entries = tables.entries
        let socketTable = document["sockets"]
        let conntrackTable = document["conntrack"]
        // Present and arrays, even though their items streamed past.
        _ = try socketTable["items"].array()
        _ = try conntrackTable["entries"].array()
        var counters: [String: UInt64] = [:]
        let counterField = document["counters"]
        for name in try counterField.object().keys {
            counters[name] = try counterField[name].integer(UInt64.self)
        }
        let process = document["sidecar_process"]
        let rules = document["rules"]
        let input = DiagnosisInput(
            namespace: try document["namespace"].string(),
            sockets: sockets, socketSource: try socketSource(socketTable),
            conntrack: entries, conntrackSource: try conntrackSource(conntrackTable), owners: owners,
            sidecarProcess: process.isNull ? nil : SidecarProcessFacts(
                pid: try process["pid"].integer(), command: try process["command"].string(),
                uptimeSeconds: try process["uptime_seconds"].optionalDouble(in: SnapshotLimits.uptimeSeconds),
                idleTimeoutSetting: try process["idle_timeout_setting"].optionalString(),
                // Snapshots before ambient detection do not say (absent: nil).
                foreignNamespace: try process["foreign_namespace"].optionalString()),
            kernel: try kernel(document["kernel"]), counters: counters,
            rules: RulesFacts(
                invalidDrop: try rules["invalid_drop"].optionalBool(), source: try rules["source"].string(),
                matchingRule: try rules["matching_rule"].optionalString()),
            notices: try document["notices"].array().map { field throws(JSONError) in try field.string() })
        return Snapshot(input: input, capturedAt: try document["captured_at"].double(in: SnapshotLimits.capturedAt), version: try document["ctdoctor_version"].string())
    }

    static func kernel(_ field: JSONField) throws(JSONError) -> KernelFacts {
        var range: ClosedRange<UInt16>?
        let rangeField = field["ip_local_port_range"]
        if !rangeField.isNull {
            let bounds = try rangeField.array().map { item throws(JSONError) in try item.integer(UInt16.self) }
            guard bounds.count == 2, bounds[0] <= bounds[1] else { throw rangeField.fail("expected [low, high]") }
            range = bounds[0]...bounds[1]
        }
        var facts = KernelFacts(
            release: try field["release"].optionalString(),
            closeWaitTimeout: try field["nf_conntrack_tcp_timeout_close_wait"].optionalInteger(in: SnapshotLimits.sysctlSeconds),
            ignoreInvalidRST: try field["nf_conntrack_tcp_ignore_invalid_rst"].optionalInteger(in: SnapshotLimits.flag),
            beLiberal: try field["nf_conntrack_tcp_be_liberal"].optionalInteger(in: SnapshotLimits.flag),
            conntrackCount: try field["nf_conntrack_count"].optionalInteger(in: SnapshotLimits.tableSize),
            conntrackMax: try field["nf_conntrack_max"].optionalInteger(in: SnapshotLimits.tableSize),
            portRange: range,
            reservedPorts: Set(try field["ip_local_reserved_ports"].array().map { item throws(JSONError) in try item.integer(UInt16.self) }),
            // Absent from snapshots written before inbound clashes were judged: unknown.
            synSentTimeout: try field["nf_conntrack_tcp_timeout_syn_sent"].optionalInteger(in: SnapshotLimits.sysctlSeconds))
        // Absent from snapshots written before the counters were read: unknown.
        facts.conntrackCounters = try ConntrackStatisticsRecord.read(field["conntrack_statistics"])
        return facts
    }

    static func socketSource(_ table: JSONField) throws(JSONError) -> SocketSource {
        let field = table["source"]
        let name = try field.string()
        if let legacy = Legacy.socketSource(name) { return legacy }
        switch name {
        case "sock_diag": return .sockDiag
        case "proc": return .procFile(reason: try table["reason"].string())
        case "file":
            let name = try table["format"].string()
            guard let format = SocketFileFormat(rawValue: name) else {
                throw table["format"].fail("\(name) is not a socket listing format (\(SocketFileFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return .file(format: format, path: try table["path"].string(), hasTCPInfo: try table["tcp_info"].bool())
        case let other: throw field.fail("\(other) is not sock_diag, proc or file")
        }
    }

    static func conntrackSource(_ table: JSONField) throws(JSONError) -> ConntrackProvenance {
        let field = table["source"]
        let name = try field.string()
        if let legacy = Legacy.conntrackSource(name) { return legacy }
        switch name {
        case "lookups": return .lookups(count: try table["lookups"].integer(in: 0...Int(UInt32.max)))
        case "netlink": return .dump(.netlink)
        case "proc": return .dump(.procFile(reason: try table["reason"].string()))
        case "unreadable": return .unreadable
        case "file":
            let name = try table["format"].string()
            guard let format = ConntrackFileFormat(rawValue: name) else {
                throw table["format"].fail("\(name) is not a conntrack listing format (\(ConntrackFileFormat.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return .file(format: format, path: try table["path"].string())
        case let other: throw field.fail("\(other) is not lookups, netlink, proc, unreadable or file")
        }
    }
}

/// Snapshots written before the sources became values (ctdoctor of 2026-12-01 and
/// earlier) named them in a sentence. A snapshot is taken live, so only these few were
/// ever written: read them, so that a snapshot kept from an incident still opens.
enum Legacy {
    static func socketSource(_ name: String) -> SocketSource? {
        let proc = "proc: "
        guard name.hasPrefix(proc) else { return nil }
        return .procFile(reason: String(name.dropFirst(proc.count)))
    }

    static func conntrackSource(_ name: String) -> ConntrackProvenance? {
        switch name {
        case "netlink dump": .dump(.netlink)
        // The reason was kept in the snapshot's notices only.
        case "/proc/net/nf_conntrack": .dump(.procFile(reason: ""))
        default: nil
        }
    }
}

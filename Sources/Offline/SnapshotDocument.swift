import Conntrack
import Diagnosis
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
                    entries.append(try EntryRecord.read(item))
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
            sockets: sockets, socketSource: SnapshotFormat.socketSource(try socketTable["source"].string()),
            conntrack: entries, conntrackSource: try conntrackTable["source"].string(), owners: owners,
            sidecarProcess: process.isNull ? nil : SidecarProcessFacts(
                pid: try process["pid"].integer(), command: try process["command"].string(),
                uptimeSeconds: try process["uptime_seconds"].optionalDouble(in: SnapshotLimits.uptimeSeconds),
                idleTimeoutSetting: try process["idle_timeout_setting"].optionalString()),
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
        return KernelFacts(
            release: try field["release"].optionalString(),
            closeWaitTimeout: try field["nf_conntrack_tcp_timeout_close_wait"].optionalInteger(in: SnapshotLimits.sysctlSeconds),
            ignoreInvalidRST: try field["nf_conntrack_tcp_ignore_invalid_rst"].optionalInteger(in: SnapshotLimits.flag),
            beLiberal: try field["nf_conntrack_tcp_be_liberal"].optionalInteger(in: SnapshotLimits.flag),
            conntrackCount: try field["nf_conntrack_count"].optionalInteger(in: SnapshotLimits.tableSize),
            conntrackMax: try field["nf_conntrack_max"].optionalInteger(in: SnapshotLimits.tableSize),
            portRange: range,
            reservedPorts: Set(try field["ip_local_reserved_ports"].array().map { item throws(JSONError) in try item.integer(UInt16.self) }))
    }
}

func address(_ field: JSONField) throws(JSONError) -> IPAddress {
    let text = try field.string()
    guard let address = IPAddress(text) else { throw field.fail("\(ParseError.quote(Array(text.utf8))) is not an IP address") }
    return address
}

func family(_ field: JSONField) throws(JSONError) -> AddressFamily {
    let text = try field.string()
    guard let family = AddressFamily.allCases.first(where: { $0.name == text }) else { throw field.fail("\(text) is not ipv4 or ipv6") }
    return family
}

/// A `ctdoctor.sockets.v1` SOCKET record, and its processes when it has them.
enum SocketRecord {
    static func read(_ field: JSONField) throws(JSONError) -> (TCPSocket, [SocketOwner]?) {
        let stateText = try field["state"].string()
        guard let state = TCPState(name: stateText) else { throw field["state"].fail("\(stateText) is not a TCP state") }
        let timerField = field["timer"]
        let timerKind = try timerField["kind"].string()
        guard let timer = SocketTimerKind.allCases.first(where: { $0.name == timerKind }) else {
            throw timerField["kind"].fail("\(timerKind) is not a timer kind")
        }
        func endpoint(_ endpoint: JSONField) throws(JSONError) -> Endpoint {
            Endpoint(try address(endpoint["address"]), try endpoint["port"].integer())
        }
        var socket = TCPSocket(
            family: try family(field["family"]), state: state, local: try endpoint(field["local"]), remote: try endpoint(field["peer"]),
            receiveQueue: try field["recv_q"].integer(), sendQueue: try field["send_q"].integer())
        socket.timer = timer
        socket.timerExpiresMilliseconds = try timerField["expires_ms"].integer()
        socket.retransmits = try field["retransmits"].integer()
        socket.uid = try field["uid"].integer()
        socket.inode = try field["inode"].integer()
        socket.cookie = try field["cookie"].optionalInteger()
        // Absent from records written before they were added: unknown.
        let device = field["bound_device"]
        if !device.isNull {
            socket.boundDevice = BoundDevice(index: try device["index"].optionalInteger(), name: try device["name"].optionalString())
        }
        socket.v6Only = try field["v6only"].optionalBool()
        let info = field["info"]
        if !info.isNull {
            socket.info = TCPInfo(
                lastDataSentMilliseconds: try info["last_data_sent_ms"].integer(),
                lastDataReceivedMilliseconds: try info["last_data_recv_ms"].integer(),
                lastAckReceivedMilliseconds: try info["last_ack_recv_ms"].integer(),
                roundTripMicroseconds: try info["rtt_us"].integer(), totalRetransmits: try info["total_retrans"].integer(),
                bytesAcked: try info["bytes_acked"].integer(), bytesReceived: try info["bytes_received"].integer(),
                bytesSent: try info["bytes_sent"].optionalInteger())
        }
        let processes = field["processes"].isNull ? nil : try field["processes"].array().map { process throws(JSONError) in
            SocketOwner(pid: try process["pid"].integer(), command: try process["command"].string(), fd: try process["fd"].integer())
        }
        return (socket, processes)
    }
}

/// A `ctdoctor.conntrack.v1` ENTRY record.
enum EntryRecord {
    static func read(_ field: JSONField) throws(JSONError) -> ConntrackEntry {
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
            family: try family(field["family"]), protocolNumber: protocolNumber, original: try tuple(field["original"]),
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
            source: try address(field["src"]), destination: try address(field["dst"]),
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

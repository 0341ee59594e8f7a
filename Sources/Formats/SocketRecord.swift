import JSON
import NetCore
import Sockets

/// The `ctdoctor.sockets.v1` SOCKET record and the listing around it: written by
/// `sockets` and snapshots, read back from pasted listings and snapshots.
public enum SocketRecord {
    public static let schema = "ctdoctor.sockets.v1"
    public static let countSchema = "ctdoctor.sockets.count.v1"
    /// What a `--format json` listing starts with, before its sockets.
    public static let documentHead = "{\"schema\":\"\(schema)\",\"sockets\":["

    /// Appends one socket as a JSON object; every key is always present.
    /// - Parameter owners: the owning processes, or nil when they were not looked up
    ///   (rendered as null, distinct from an empty list: looked up, none found).
    public static func appendJSON(_ socket: TCPSocket, owners: [SocketOwner]?, to out: inout [UInt8]) {
        out.appendRecord(bound: bound(socket, owners: owners)) { writeJSON(socket, owners: owners, to: &$0) }
    }

    /// The most bytes one record can take. Fixed text and numbers stay under 900 bytes;
    /// each owner adds its escaped name; a pasted device name can be any length.
    public static func bound(_ socket: TCPSocket, owners: [SocketOwner]?) -> Int {
        1024 + (owners ?? []).reduce(0) { $0 + 64 + OutputSpan<UInt8>.jsonStringBound($1.command) }
            + OutputSpan<UInt8>.jsonStringBound(socket.boundDevice?.name ?? "")
    }

    public static func writeJSON(_ socket: TCPSocket, owners: [SocketOwner]?, to out: inout OutputSpan<UInt8>) {
        out.write(socket.family == .ipv4 ? "{\"family\":\"ipv4\",\"state\":" : "{\"family\":\"ipv6\",\"state\":")
        out.write(jsonString: socket.state.name)
        out.write(",\"local\":")
        writeEndpoint(socket.local, to: &out)
        out.write(",\"peer\":")
        writeEndpoint(socket.remote, to: &out)
        out.write(",\"recv_q\":")
        out.write(number: socket.receiveQueue)
        out.write(",\"send_q\":")
        out.write(number: socket.sendQueue)
        out.write(",\"timer\":{\"kind\":")
        out.write(jsonString: socket.timer.name)
        out.write(",\"expires_ms\":")
        out.write(number: socket.timerExpiresMilliseconds)
        out.write("},\"retransmits\":")
        out.write(number: socket.retransmits)
        out.write(",\"uid\":")
        out.write(number: socket.uid)
        out.write(",\"inode\":")
        out.write(number: socket.inode)
        out.write(",\"cookie\":")
        out.write(optionalNumber: socket.cookie)
        out.write(",\"bound_device\":")
        if let device = socket.boundDevice {
            out.write("{\"index\":")
            out.write(optionalNumber: device.index)
            out.write(",\"name\":")
            if let name = device.name { out.write(jsonString: name) } else { out.write("null") }
            out.append(UInt8(ascii: "}"))
        } else {
            out.write("null")
        }
        out.write(socket.v6Only == nil ? ",\"v6only\":null" : socket.v6Only! ? ",\"v6only\":true" : ",\"v6only\":false")
        out.write(",\"info\":")
        if let info = socket.info {
            out.write("{\"last_data_sent_ms\":")
            out.write(number: info.lastDataSentMilliseconds)
            out.write(",\"last_data_recv_ms\":")
            out.write(number: info.lastDataReceivedMilliseconds)
            out.write(",\"last_ack_recv_ms\":")
            out.write(number: info.lastAckReceivedMilliseconds)
            out.write(",\"idle_ms\":")
            out.write(number: info.idleMilliseconds)
            out.write(",\"rtt_us\":")
            out.write(number: info.roundTripMicroseconds)
            out.write(",\"total_retrans\":")
            out.write(number: info.totalRetransmits)
            out.write(",\"bytes_acked\":")
            out.write(number: info.bytesAcked)
            out.write(",\"bytes_received\":")
            out.write(number: info.bytesReceived)
            out.write(",\"bytes_sent\":")
            out.write(optionalNumber: info.bytesSent)
            out.append(UInt8(ascii: "}"))
        } else {
            out.write("null")
        }
        out.write(",\"processes\":")
        if let owners {
            out.append(UInt8(ascii: "["))
            for (index, owner) in owners.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.write("{\"pid\":")
                out.write(number: owner.pid)
                out.write(",\"command\":")
                out.write(jsonString: owner.command)
                out.write(",\"fd\":")
                out.write(number: owner.fd)
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "]"))
        } else {
            out.write("null")
        }
        out.append(UInt8(ascii: "}"))
    }

    static func writeEndpoint(_ endpoint: Endpoint, to out: inout OutputSpan<UInt8>) {
        out.write("{\"address\":")
        out.write(jsonAddress: endpoint.address)
        out.write(",\"port\":")
        out.write(number: endpoint.port)
        out.append(UInt8(ascii: "}"))
    }

    /// The fields after the sockets array in `--format json`, or the whole `--count`
    /// answer: count, namespace, source, notices.
    public static func appendMetadata(
        count: Int, namespace: String, source: SocketSource, notices: [String], prefix: String, to out: inout [UInt8]
    ) {
        let bound = 256 + prefix.utf8.count + OutputSpan<UInt8>.jsonStringBound(namespace)
            + notices.reduce(0) { $0 + OutputSpan<UInt8>.jsonStringBound($1) + 1 }
        out.appendRecord(bound: bound) { out in
            out.write(text: prefix)
            out.write(number: count)
            out.write(",\"namespace\":")
            out.write(jsonString: namespace)
            out.write(",\"source\":")
            out.write(jsonString: source.name)
            out.write(",\"notices\":")
            out.write(jsonStrings: notices)
            out.write("}\n")
        }
    }

    /// The whole answer of `--count` in JSON (`ctdoctor.sockets.count.v1`).
    public static func appendCountJSON(count: Int, namespace: String, source: SocketSource, notices: [String], to out: inout [UInt8]) {
        appendMetadata(count: count, namespace: namespace, source: source, notices: notices, prefix: "{\"schema\":\"\(countSchema)\",\"count\":", to: &out)
    }

    // MARK: Reading

    /// Reads one record back, with its processes when it has them; each failure names
    /// its place in the document.
    public static func read(_ field: JSONField) throws(JSONError) -> (TCPSocket, [SocketOwner]?) {
        let stateText = try field["state"].string()
        guard let state = TCPState(name: stateText) else { throw field["state"].fail("\(stateText) is not a TCP state") }
        let timerField = field["timer"]
        let timerKind = try timerField["kind"].string()
        guard let timer = SocketTimerKind.allCases.first(where: { $0.name == timerKind }) else {
            throw timerField["kind"].fail("\(timerKind) is not a timer kind")
        }
        func endpoint(_ endpoint: JSONField) throws(JSONError) -> Endpoint {
            Endpoint(try endpoint["address"].address(), try endpoint["port"].integer())
        }
        var socket = TCPSocket(
            family: try field["family"].family(), state: state, local: try endpoint(field["local"]), remote: try endpoint(field["peer"]),
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

import NetCore
import Sockets

/// TCP sockets as JSON (schema `ctdoctor.sockets.v1`) and as an ss-style table.
public enum SocketRendering {
    public static let schema = "ctdoctor.sockets.v1"

    /// Appends one socket as a JSON object; every key is always present.
    /// - Parameter owners: the owning processes, or nil when they were not looked up
    ///   (rendered as null, distinct from an empty list: looked up, none found).
    public static func appendJSON(_ socket: TCPSocket, owners: [SocketOwner]?, to out: inout [UInt8]) {
        // Fixed text and numbers stay under 900 bytes; each owner adds its escaped name.
        // A pasted device name can be any length.
        let bound = 1024 + (owners ?? []).reduce(0) { $0 + 64 + OutputSpan<UInt8>.jsonStringBound($1.command) }
            + OutputSpan<UInt8>.jsonStringBound(socket.boundDevice?.name ?? "")
        out.appendRecord(bound: bound) { writeJSON(socket, owners: owners, to: &$0) }
    }

    static func writeJSON(_ socket: TCPSocket, owners: [SocketOwner]?, to out: inout OutputSpan<UInt8>) {
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
            out.write(prefix)
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

    public static func tableColumns(withProcesses: Bool) -> [TextTable.Column] {
        var columns: [TextTable.Column] = [
            .init("State"), .init("Recv-Q", .right), .init("Send-Q", .right), .init("Local Address:Port"),
            .init("Peer Address:Port"), .init("Inode", .right), .init("Idle", .right),
        ]
        if withProcesses { columns.append(.init("Process")) }
        return columns
    }

    /// The local endpoint as ss prints it, with the bound device: `0.0.0.0%lo:8080`.
    static func localText(_ socket: TCPSocket) -> String {
        let text = socket.local.description
        guard let device = socket.boundDevice, let colon = text.lastIndex(of: ":") else { return text }
        return "\(text[..<colon])%\(device)\(text[colon...])"
    }

    public static func tableRow(_ socket: TCPSocket, owners: [SocketOwner]?) -> [String] {
        var row = [
            socket.state.name,
            String(socket.receiveQueue),
            String(socket.sendQueue),
            localText(socket),
            socket.remote.port == 0 && socket.state == .listen ? "*:*" : socket.remote.description,
            String(socket.inode),
            // tcp_info's "last" times mean nothing for a listener.
            socket.state == .listen ? "-" : socket.info.map { humanDuration(milliseconds: UInt64($0.idleMilliseconds)) } ?? "-",
        ]
        if let owners {
            row.append(owners.isEmpty ? "" : usersField(owners))
        }
        return row
    }

    /// `users:(("envoy",pid=1,fd=42))`, as ss -p prints it.
    public static func usersField(_ owners: [SocketOwner]) -> String {
        "users:(" + owners.map { "(\"\($0.command)\",pid=\($0.pid),fd=\($0.fd))" }.joined(separator: ",") + ")"
    }
}

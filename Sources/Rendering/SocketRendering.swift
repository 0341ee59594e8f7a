import NetCore
import Sockets

/// TCP sockets as JSON (schema `ctdoctor.sockets.v1`) and as an ss-style table.
public enum SocketRendering {
    public static let schema = "ctdoctor.sockets.v1"

    /// Appends one socket as a JSON object; every key is always present.
    /// - Parameter owners: the owning processes, or nil when they were not looked up
    ///   (rendered as null, distinct from an empty list: looked up, none found).
    public static func appendJSON(_ socket: TCPSocket, owners: [SocketOwner]?, to out: inout [UInt8]) {
        out.append(ascii: "{\"family\":\"")
        out.append(ascii: socket.family == .ipv4 ? "ipv4" : "ipv6")
        out.append(ascii: "\",\"state\":")
        out.append(jsonString: socket.state.name)
        out.append(ascii: ",\"local\":")
        appendEndpoint(socket.local, to: &out)
        out.append(ascii: ",\"peer\":")
        appendEndpoint(socket.remote, to: &out)
        out.append(ascii: ",\"recv_q\":")
        out.append(number: socket.receiveQueue)
        out.append(ascii: ",\"send_q\":")
        out.append(number: socket.sendQueue)
        out.append(ascii: ",\"timer\":{\"kind\":")
        out.append(jsonString: socket.timer.name)
        out.append(ascii: ",\"expires_ms\":")
        out.append(number: socket.timerExpiresMilliseconds)
        out.append(ascii: "},\"retransmits\":")
        out.append(number: socket.retransmits)
        out.append(ascii: ",\"uid\":")
        out.append(number: socket.uid)
        out.append(ascii: ",\"inode\":")
        out.append(number: socket.inode)
        out.append(ascii: ",\"cookie\":")
        out.append(optionalNumber: socket.cookie)
        out.append(ascii: ",\"info\":")
        if let info = socket.info {
            out.append(ascii: "{\"last_data_sent_ms\":")
            out.append(number: info.lastDataSentMilliseconds)
            out.append(ascii: ",\"last_data_recv_ms\":")
            out.append(number: info.lastDataReceivedMilliseconds)
            out.append(ascii: ",\"last_ack_recv_ms\":")
            out.append(number: info.lastAckReceivedMilliseconds)
            out.append(ascii: ",\"idle_ms\":")
            out.append(number: info.idleMilliseconds)
            out.append(ascii: ",\"rtt_us\":")
            out.append(number: info.roundTripMicroseconds)
            out.append(ascii: ",\"total_retrans\":")
            out.append(number: info.totalRetransmits)
            out.append(ascii: ",\"bytes_acked\":")
            out.append(number: info.bytesAcked)
            out.append(ascii: ",\"bytes_received\":")
            out.append(number: info.bytesReceived)
            out.append(ascii: ",\"bytes_sent\":")
            out.append(optionalNumber: info.bytesSent)
            out.append(UInt8(ascii: "}"))
        } else {
            out.append(ascii: "null")
        }
        out.append(ascii: ",\"processes\":")
        if let owners {
            out.append(UInt8(ascii: "["))
            for (index, owner) in owners.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                out.append(ascii: "{\"pid\":")
                out.append(number: owner.pid)
                out.append(ascii: ",\"command\":")
                out.append(jsonString: owner.command)
                out.append(ascii: ",\"fd\":")
                out.append(number: owner.fd)
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "]"))
        } else {
            out.append(ascii: "null")
        }
        out.append(UInt8(ascii: "}"))
    }

    static func appendEndpoint(_ endpoint: Endpoint, to out: inout [UInt8]) {
        out.append(ascii: "{\"address\":")
        out.append(jsonAddress: endpoint.address)
        out.append(ascii: ",\"port\":")
        out.append(number: endpoint.port)
        out.append(UInt8(ascii: "}"))
    }

    public static func tableColumns(withProcesses: Bool) -> [TextTable.Column] {
        var columns: [TextTable.Column] = [
            .init("State"), .init("Recv-Q", .right), .init("Send-Q", .right), .init("Local Address:Port"),
            .init("Peer Address:Port"), .init("Inode", .right), .init("Idle", .right),
        ]
        if withProcesses { columns.append(.init("Process")) }
        return columns
    }

    public static func tableRow(_ socket: TCPSocket, owners: [SocketOwner]?) -> [String] {
        var row = [
            socket.state.name,
            String(socket.receiveQueue),
            String(socket.sendQueue),
            socket.local.description,
            socket.remote.port == 0 && socket.state == .listen ? "*:*" : socket.remote.description,
            String(socket.inode),
            socket.info.map { humanDuration(milliseconds: UInt64($0.idleMilliseconds)) } ?? "-",
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

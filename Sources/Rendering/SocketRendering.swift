import JSON
import NetCore
import Sockets

/// TCP sockets as an ss-style table.
public enum SocketRendering {
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

    /// One table row, written as bytes. The device and process names are outside text
    /// and go through the escaping cell; the rest is ctdoctor's own.
    public static func writeRow(_ socket: TCPSocket, owners: [SocketOwner]?, to row: inout TableRow) {
        row.cell(bound: 16) { $0.write(text: socket.state.name) }
        row.cell(bound: 12) { $0.write(number: socket.receiveQueue) }
        row.cell(bound: 12) { $0.write(number: socket.sendQueue) }
        if socket.boundDevice != nil {
            row.cell(localText(socket))
        } else {
            row.cell(bound: 56) { $0.write(endpoint: socket.local) }
        }
        if socket.remote.port == 0 && socket.state == .listen {
            row.cell(bound: 4) { $0.write("*:*") }
        } else {
            row.cell(bound: 56) { $0.write(endpoint: socket.remote) }
        }
        row.cell(bound: 24) { $0.write(number: socket.inode) }
        // tcp_info's "last" times mean nothing for a listener.
        if socket.state != .listen, let info = socket.info {
            row.cell(humanDuration(milliseconds: UInt64(info.idleMilliseconds)))
        } else {
            row.cell(bound: 1) { $0.write("-") }
        }
        if let owners { row.cell(owners.isEmpty ? "" : usersField(owners)) }
    }

    /// `users:(("envoy",pid=1,fd=42))`, as ss -p prints it.
    public static func usersField(_ owners: [SocketOwner]) -> String {
        "users:(" + owners.map { "(\"\($0.command)\",pid=\($0.pid),fd=\($0.fd))" }.joined(separator: ",") + ")"
    }
}

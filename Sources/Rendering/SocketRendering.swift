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

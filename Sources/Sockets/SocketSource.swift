/// Where a socket listing came from.
public enum SocketSource: Sendable, Equatable {
    /// sock_diag: includes tcp_info (idle times, byte counts) and socket cookies.
    case sockDiag
    /// /proc/net/tcp{,6}, read because sock_diag was unavailable; `reason` says why.
    /// No tcp_info: idle times are unknown.
    case procFile(reason: String)
    /// A listing given as a file (--sockets-file: a /proc/net/tcp copy or ss output);
    /// `description` says which and where. tcp_info only where ss -i printed it.
    case file(description: String)

    public var name: String {
        switch self {
        case .sockDiag: "sock_diag"
        case .procFile: "proc"
        case .file: "file"
        }
    }
}


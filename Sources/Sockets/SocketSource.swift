/// Where a socket listing came from.
public enum SocketSource: Sendable, Equatable, CustomStringConvertible {
    /// sock_diag: includes tcp_info (idle times, byte counts) and socket cookies.
    case sockDiag
    /// /proc/net/tcp{,6}, read because sock_diag was unavailable; `reason` says why.
    /// No tcp_info: idle times are unknown.
    case procFile(reason: String)
    /// A listing given as a file (--sockets-file: a /proc/net/tcp copy or ss output);
    /// tcp_info only where ss -i printed it.
    case file(format: SocketFileFormat, path: String, hasTCPInfo: Bool)

    public var name: String {
        switch self {
        case .sockDiag: "sock_diag"
        case .procFile: "proc"
        case .file: "file"
        }
    }

    /// What a report says it read: the name, and for a file which form and where.
    public var description: String {
        switch self {
        case .sockDiag, .procFile: name
        case .file(let format, let path, let hasTCPInfo): "\(format.rawValue) in \(path)\(hasTCPInfo ? "" : ", without tcp_info")"
        }
    }
}

/// The formats a copied socket listing is recognised in.
public enum SocketFileFormat: String, Sendable, CaseIterable {
    case procNetTCP = "/proc/net/tcp"
    case ctdoctorJSON = "ctdoctor sockets JSON"
    case ssOutput = "ss output"
}


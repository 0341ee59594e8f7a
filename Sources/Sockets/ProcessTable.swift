

/// A process holding a socket open, as `ss -p` shows it: users:(("envoy",pid=1,fd=42)).
public struct SocketOwner: Sendable, Hashable, Comparable {
    public var pid: Int32
    /// /proc/PID/comm: the first 15 bytes of the executable's name.
    public var command: String
    public var fd: Int32

    public init(pid: Int32, command: String, fd: Int32) {
        self.pid = pid
        self.command = command
        self.fd = fd
    }

    public static func < (lhs: SocketOwner, rhs: SocketOwner) -> Bool { (lhs.pid, lhs.fd) < (rhs.pid, rhs.fd) }
}

/// Which processes hold which socket inodes, from /proc/PID/fd.
///
/// Socket inodes are unique machine-wide, so one scan serves every namespace. Reading
/// another user's fd directory needs CAP_SYS_PTRACE (or the same uid); processes that
/// cannot be read are counted, never silently dropped from the answer.
public struct ProcessTable: Sendable {
    public var ownersByInode: [UInt64: [SocketOwner]]
    /// Processes whose fd directory could not be read (permission, or exited mid-scan).
    public var unreadableProcesses: Int

    public init(ownersByInode: [UInt64: [SocketOwner]], unreadableProcesses: Int) {
        self.ownersByInode = ownersByInode
        self.unreadableProcesses = unreadableProcesses
    }

    public func owners(of inode: UInt64) -> [SocketOwner] { ownersByInode[inode] ?? [] }

    /// The inode in a /proc/PID/fd link target of the form "socket:[12345]".
    public static func socketInode(fromLink link: String) -> UInt64? {
        guard link.hasPrefix("socket:["), link.hasSuffix("]") else { return nil }
        return UInt64(link.dropFirst(8).dropLast())
    }
}

import KernelIO
import Sockets

/// The one walk over a process's descriptors (/proc/PID/fd), for the owner scan, the
/// search for a socket's owner and the reaper's check of what a proxy holds.
extension ProcFS {
    enum DescriptorWalk: Equatable {
        /// Every descriptor was seen.
        case completed
        /// `body` asked to stop.
        case stopped
        /// The directory could not be listed (another user's process without
        /// CAP_SYS_PTRACE, or it exited).
        case unreadable
    }

    /// Hands `body` each socket descriptor of `pid` (its fd and the socket's inode) until
    /// it returns true.
    /// - Parameter probingFirst: read the links of descriptors below this number before
    ///   listing the directory: a proxy's listeners are opened early, and listing its
    ///   thousands of descriptors alone costs milliseconds.
    func forEachSocketDescriptor(of pid: Int32, probingFirst probed: Int32 = 0, _ body: (_ fd: Int32, _ inode: UInt64) -> Bool) -> DescriptorWalk {
        let directory = "\(root)/\(pid)/fd"
        func visit(_ fd: Int32) -> Bool {
            guard let link = try? readLink("\(directory)/\(fd)"), let inode = ProcessTable.socketInode(fromLink: link) else { return false }
            return body(fd, inode)
        }
        for fd in Int32(0)..<max(0, probed) where visit(fd) { return .stopped }
        guard let descriptors = try? list(directory) else { return .unreadable }
        for name in descriptors {
            guard let fd = Int32(name), fd >= probed else { continue }
            if visit(fd) { return .stopped }
        }
        return .completed
    }
}

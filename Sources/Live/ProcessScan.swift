import KernelIO
import Sockets

extension ProcessTable {
    /// Scans every process under `procfs`.
    public static func scan(procfs: ProcFS = ProcFS()) throws -> ProcessTable {
        var owners: [UInt64: [SocketOwner]] = [:]
        var unreadable = 0
        for name in try procfs.list(procfs.root) {
            guard let pid = Int32(name), pid > 0 else { continue }
            var command: String?
            let walk = procfs.forEachSocketDescriptor(of: pid) { fd, inode in
                if command == nil { command = commandName(of: pid, procfs: procfs) }
                owners[inode, default: []].append(SocketOwner(pid: pid, command: command!, fd: fd))
                return false
            }
            if walk == .unreadable, procfs.exists("\(procfs.root)/\(pid)") { unreadable += 1 }  // exited meanwhile is not unreadable
        }
        return ProcessTable(ownersByInode: owners, unreadableProcesses: unreadable)
    }

    /// A process's command (/proc/PID/comm, at most 64 bytes), "?" when it cannot be read.
    static func commandName(of pid: Int32, procfs: ProcFS) -> String {
        (try? procfs.read("\(procfs.root)/\(pid)/comm", limit: 64)).map {
            String(decoding: $0, as: UTF8.self).filter { $0 != "\n" }
        } ?? "?"
    }
}

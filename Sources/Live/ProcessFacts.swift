import Diagnosis
import KernelIO
import NodeSweep
import Sockets

/// Pure readers of /proc/PID files.
public enum ProcText {
    /// Parent pid and start time (clock ticks after boot) from /proc/PID/stat. The
    /// command name in parentheses may itself hold spaces and parentheses, so fields
    /// are counted from the last ')'.
    public static func stat(_ bytes: [UInt8]) -> (parent: Int32, startTicks: UInt64)? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = String(decoding: bytes[(close + 1)...], as: UTF8.self).split(separator: " ")
        // After ')': state(3) ppid(4) … starttime(22), so ppid is [1] and starttime [19].
        guard fields.count > 19, let parent = Int32(fields[1]), let start = UInt64(fields[19]) else { return nil }
        return (parent, start)
    }

    /// A variable from /proc/PID/environ (NUL-separated NAME=value pairs).
    public static func environmentValue(_ name: String, in bytes: [UInt8]) -> String? {
        Environ.value(of: name, in: bytes)
    }

    /// Seconds since boot from /proc/uptime ("12345.67 2345.89").
    public static func uptime(_ bytes: [UInt8]) -> Double? {
        String(decoding: bytes, as: UTF8.self).split(separator: " ").first.flatMap { Double($0) }
    }
}

/// Finds the processes that hold given socket inodes, looking at the processes inside
/// the network namespace first and stopping as soon as every inode is found: the cost
/// is the namespace's processes, not the node's.
struct OwnerSearch {
    let procfs: ProcFS

    /// - Parameters:
    ///   - namespaceLink: the namespace as /proc/PID/ns/net links name it ("net:[4026532281]").
    ///   - inside: the processes living in the namespace, when the caller knows them;
    ///     otherwise every process's link is read to find them.
    ///
    /// Processes in the namespace are searched first. A process can hold sockets of a
    /// namespace it does not live in (one that entered it on a thread, as the lab does),
    /// so whatever is still missing is then searched for in the other processes.
    func owners(of inodes: Set<UInt64>, namespaceLink: String, inside known: [Int32]? = nil) -> (owners: [UInt64: [SocketOwner]], unreadable: Int) {
        guard !inodes.isEmpty else { return ([:], 0) }
        var inside = known ?? []
        var outside: [Int32]?
        if known == nil {
            guard let pids = allPIDs() else { return ([:], 0) }
            outside = []
            for pid in pids {
                if (try? procfs.readLink("\(procfs.root)/\(pid)/ns/net")) == namespaceLink { inside.append(pid) } else { outside!.append(pid) }
            }
        }
        var (found, unreadable) = search(inside, for: inodes)
        if found.count < inodes.count {
            let searched = Set(inside)
            let rest = outside ?? (allPIDs() ?? []).filter { !searched.contains($0) }
            let (more, _) = search(rest, for: inodes.subtracting(found.keys))
            found.merge(more) { first, _ in first }
        }
        return (found, unreadable)
    }

    private func allPIDs() -> [Int32]? {
        (try? procfs.list(procfs.root)).map { names in names.compactMap { Int32($0) }.filter { $0 > 0 } }
    }

    /// A process this one is starting (nft, iptables-save, run inside the namespace on
    /// another thread): between fork and exec it holds a copy of every descriptor, the
    /// proxy's listener too in the lab, and must not be named as its owner.
    private func isOwnHelper(_ pid: Int32) -> Bool {
        guard let bytes = try? procfs.read("\(procfs.root)/\(pid)/stat", limit: 4096), let stat = ProcText.stat(bytes) else { return false }
        return stat.parent == procfs.selfPID
    }

    private func search(_ pids: [Int32], for inodes: Set<UInt64>) -> ([UInt64: [SocketOwner]], Int) {
        var found: [UInt64: [SocketOwner]] = [:]
        var unreadable = 0
        for pid in pids {
            var command: String?
            let walk = procfs.forEachSocketDescriptor(of: pid, probingFirst: 64) { fd, inode in
                guard inodes.contains(inode), !isOwnHelper(pid) else { return false }
                if command == nil { command = commandName(pid) }
                found[inode, default: []].append(SocketOwner(pid: pid, command: command!, fd: fd))
                return found.count == inodes.count
            }
            switch walk {
            case .stopped: return (found, unreadable)
            // A pid the inventory listed may have exited since: gone is not unreadable,
            // and must not be counted towards the "needs CAP_SYS_PTRACE" notice.
            case .unreadable: if procfs.exists("\(procfs.root)/\(pid)") { unreadable += 1 }
            case .completed: break
            }
        }
        return (found, unreadable)
    }

    /// Which of `inodes` process `pid` holds a descriptor for, reading all of its
    /// descriptors; nil when they cannot be read (another user's, without
    /// CAP_SYS_PTRACE) or it has exited.
    func inodes(heldBy pid: Int32, among inodes: Set<UInt64>) -> Set<UInt64>? {
        var held = Set<UInt64>()
        let walk = procfs.forEachSocketDescriptor(of: pid) { _, inode in
            if inodes.contains(inode) { held.insert(inode) }
            return false
        }
        guard walk != .unreadable else { return nil }
        return held
    }

    func commandName(_ pid: Int32) -> String { ProcessTable.commandName(of: pid, procfs: procfs) }

    /// Uptime and ISTIO_META_IDLE_TIMEOUT of the proxy, looking at its parent too
    /// (pilot-agent starts envoy and both carry the proxy metadata).
    func sidecarFacts(_ owner: SocketOwner, namespaceLink: String, notices: inout [String]) -> SidecarProcessFacts {
        var facts = SidecarProcessFacts(pid: owner.pid, command: owner.command)
        if !namespaceLink.isEmpty, let link = try? procfs.readLink("\(procfs.root)/\(owner.pid)/ns/net"), link != namespaceLink {
            facts.foreignNamespace = link  // the kernel's own text: net:[INODE]
        }
        let stat = (try? procfs.read("\(procfs.root)/\(owner.pid)/stat", limit: 4096)).flatMap(ProcText.stat)
        if let stat, let uptime = (try? procfs.read("\(procfs.root)/uptime", limit: 256)).flatMap(ProcText.uptime) {
            // USER_HZ is 100 on every Linux ABI.
            facts.uptimeSeconds = max(0, uptime - Double(stat.startTicks) / 100)
        }
        var readable = false
        for pid in [owner.pid, stat?.parent].compactMap({ $0 }) where pid > 1 {
            guard let environment = try? procfs.read("\(procfs.root)/\(pid)/environ", limit: 1 << 20) else { continue }
            readable = true
            if let value = ProcText.environmentValue("ISTIO_META_IDLE_TIMEOUT", in: environment) {
                facts.idleTimeoutSetting = value
                break
            }
        }
        if !readable {
            notices.append("the environment of \(owner.command) (pid \(owner.pid)) is not readable (needs CAP_SYS_PTRACE or its uid): ISTIO_META_IDLE_TIMEOUT unknown")
        }
        return facts
    }
}

import KernelIO
import NetCore
import NodeSweep
import Synchronization

/// One distinct network namespace on the node, and what names it.
public struct NodeNamespace: Sendable {
    public var inode: UInt64
    /// How to enter it: its `ip netns` file when it has one, else a process's
    /// /proc/PID/ns/net.
    public var namespace: NetworkNamespace
    /// Its name under /var/run/netns, if any.
    public var netnsName: String?
    /// The processes living inside when the node was listed, lowest first.
    public var pids: [Int32]
    /// A process inside, and how many there are.
    public var pid: Int32? { pids.first }
    public var processCount: Int { pids.count }
    /// The node's own namespace (PID 1's, else ctdoctor's).
    public var isHost: Bool
    public var pod: PodIdentity

    /// The stable label monitoring uses: `net:[inode]`, as /proc/PID/ns/net reads.
    public var netnsLabel: String { "net:[\(inode)]" }

    /// How people name it: the pod, the ip netns name, "host", or the inode.
    public var displayName: String { pod.label ?? netnsName ?? (isHost ? "host" : netnsLabel) }
}

/// Finds the node's network namespaces: the distinct /proc/PID/ns/net of every process,
/// and the `ip netns` files (namespaces that may hold no process, as a lab's do), each
/// with the pod it belongs to where a process's files say.
public struct NodeInventory: Sendable {
    public var procfs: ProcFS
    public var namedDirectory: String
    /// Where container runtimes keep each container's OCI config.json, `{id}` standing for
    /// the container ID: containerd's and CRI-O's defaults.
    public var runtimeConfigs: [String]

    public init(
        procfs: ProcFS = ProcFS(), namedDirectory: String = NetworkNamespace.namedNamespaceDirectory,
        runtimeConfigs: [String] = [
            "/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json",
            "/run/containers/storage/overlay-containers/{id}/userdata/config.json",
        ]
    ) {
        self.procfs = procfs
        self.namedDirectory = namedDirectory
        self.runtimeConfigs = runtimeConfigs
    }

    public struct Listing: Sendable {
        public var namespaces: [NodeNamespace]
        /// Processes whose namespace could not be read (another user's, without
        /// CAP_SYS_PTRACE), or that ended while being listed.
        public var unreadableProcesses: Int
    }

    public func namespaces() throws -> Listing {
        var pidsByInode: [UInt64: [Int32]] = [:]
        var unreadable = 0
        // The node's namespace is PID 1's; where that cannot be read (a sandbox), the one
        // ctdoctor runs in, which on a node is the node's.
        let ownInode = inode(ofLink: "\(procfs.root)/self/ns/net")
        let hostInode = inode(ofLink: "\(procfs.root)/1/ns/net") ?? ownInode
        for entry in try procfs.list(procfs.root) {
            guard let pid = Int32(entry) else { continue }
            let link = "\(procfs.root)/\(pid)/ns/net"
            guard let inode = inode(ofLink: link) else {
                // A process that exited meanwhile is no loss; one we may not look at is.
                if procfs.exists("\(procfs.root)/\(pid)") { unreadable += 1 }
                continue
            }
            pidsByInode[inode, default: []].append(pid)
        }
        var named: [UInt64: String] = [:]
        if let names = try? procfs.list(namedDirectory) {
            for name in names.sorted() {
                if let inode = procfs.inode("\(namedDirectory)/\(name)"), named[inode] == nil { named[inode] = name }
            }
        }
        var namespaces: [NodeNamespace] = []
        for inode in Set(pidsByInode.keys).union(named.keys).sorted() {
            let pids = (pidsByInode[inode] ?? []).sorted()
            let name = named[inode]
            let label = name ?? "net:[\(inode)]"
            // ctdoctor's own namespace is read without setns, which needs CAP_SYS_ADMIN.
            let path = inode == ownInode ? nil : name.map { "\(namedDirectory)/\($0)" } ?? "\(procfs.root)/\(pids[0])/ns/net"
            // The node's own namespace holds no pod: its hostname is the node's.
            let isHost = inode == hostInode
            namespaces.append(NodeNamespace(
                inode: inode, namespace: NetworkNamespace(path: path, name: label), netnsName: name, pids: pids,
                isHost: isHost, pod: isHost ? PodIdentity() : identity(of: pids)))
        }
        return Listing(namespaces: namespaces, unreadableProcesses: unreadable)
    }

    /// "net:[4026531840]" → 4026531840.
    func inode(ofLink path: String) -> UInt64? {
        guard let target = try? procfs.readLink(path), target.hasPrefix("net:["), target.hasSuffix("]") else { return nil }
        return UInt64(target.dropFirst(5).dropLast())
    }

    /// The pod of the first of `pids` whose files name it: the runtime's annotations,
    /// then HOSTNAME, then /etc/hostname under the process's root; the UID from the
    /// cgroup path in any case.
    func identity(of pids: [Int32]) -> PodIdentity {
        var identity = PodIdentity()
        for pid in pids.prefix(16) {
            let directory = "\(procfs.root)/\(pid)"
            let cgroup = (try? procfs.read("\(directory)/cgroup", limit: 1 << 16)) ?? []
            if identity.uid == nil { identity.uid = PodIdentity.podUID(fromCgroup: cgroup) }
            if let id = PodIdentity.containerID(fromCgroup: cgroup) {
                for template in runtimeConfigs {
                    let path = template.replacing("{id}", with: id)
                    if let bytes = try? readFile(path, limit: 4 << 20), let name = PodIdentity.name(fromRuntimeConfig: bytes) {
                        identity.name = name
                        identity.source = "container runtime annotations (\(path))"
                        return identity
                    }
                }
            }
            if identity.name == nil, let environ = try? procfs.read("\(directory)/environ", limit: 1 << 20),
                let hostname = PodIdentity.hostname(fromEnviron: environ)
            {
                identity.name = hostname
                identity.source = "HOSTNAME of pid \(pid)"
            }
            // The container's /etc/hostname, resolved inside its root: a symlink planted
            // there must not read the node's files (their first word would become the
            // pod label of every exported series).
            if identity.name == nil, let bytes = try? procfs.readInRoot(of: pid, "etc/hostname", limit: 4096) {
                let hostname = String(String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isWhitespace).first ?? "")
                if !hostname.isEmpty {
                    identity.name = hostname
                    identity.source = "/etc/hostname of pid \(pid)"
                }
            }
        }
        return identity
    }
}

/// Runs `body` for each item on `width` threads of their own, and returns the results in
/// the items' order. Not Dispatch's pool: each body blocks in system calls and queues
/// work of its own, which a pool of blocked workers would start only after a delay.
public func inParallel<Item: Sendable, Value: Sendable>(
    _ items: [Item], width: Int, _ body: @escaping @Sendable (Item) -> Value
) throws -> [Value] {
    let results = Mutex<[Int: Value]>([:])
    let next = Atomic<Int>(0)
    let workers = try (0..<max(1, min(width, items.count))).map { number in
        try WorkerThread(name: "sweep worker \(number)") {
            while true {
                let index = next.add(1, ordering: .relaxed).oldValue
                guard index < items.count else { return }
                let value = body(items[index])
                results.withLock { $0[index] = value }
            }
        }
    }
    workers.forEach { $0.join() }
    return results.withLock { values in items.indices.map { values[$0]! } }
}

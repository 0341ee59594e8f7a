import Diagnosis
import Glibc
import KernelIO

/// `ctdoctor watch --all-netns` and `--pod`: every selected namespace of the node watched
/// from one thread (one poll over their event sockets), with the node listed again every
/// `rescanSeconds` so that pods which appear are watched and pods which go are let go.
/// One namespace's failure is that namespace's event (`namespace-failed`), never the
/// watch's: it is dropped, and tried again after `retrySeconds` if it is still there.
public struct NodeLeakWatch: Sendable {
    /// The namespaces to watch now: the node's listing, filtered by the caller (--pod).
    public typealias Selection = @Sendable () throws -> [NodeNamespace]

    public var select: Selection
    public var options: DiagnosisOptions
    public var rescanSeconds: Double
    public var retrySeconds: Double
    public var sweepSeconds: Double
    /// Each namespace's event socket buffer. Smaller than a single watch's: a node holds
    /// a hundred of them, and each pod's churn is a share of the node's.
    public var receiveBufferBytes = 2 << 20

    public init(select: @escaping Selection, options: DiagnosisOptions, rescanSeconds: Double = 5, retrySeconds: Double = 60, sweepSeconds: Double = 1) {
        self.select = select
        self.options = options
        self.rescanSeconds = rescanSeconds
        self.retrySeconds = retrySeconds
        self.sweepSeconds = sweepSeconds
    }

    /// Hands each event to `emit` with the namespace it happened in, until `stop` says so.
    /// Throws only when the node cannot be listed at the start.
    public func run(stop: () -> Bool, emit: (NamespaceIdentity, WatchEvent) throws -> Void) throws {
        var watched: [UInt64: (identity: NamespaceIdentity, watcher: NamespaceWatcher)] = [:]
        var failedAt: [UInt64: ContinuousClock.Instant] = [:]
        var lastScan: ContinuousClock.Instant?
        // Namespaces whose path vanished under a read: the node is listed again at once to
        // tell a deleted pod (gone, its leaks ended) from a process that exited while the
        // namespace stays (reached again through another); a second such failure fails it.
        var vanishing: Set<UInt64> = []

        func fail(_ inode: UInt64, _ identity: NamespaceIdentity, _ error: any Error) throws {
            watched[inode] = nil
            failedAt[inode] = .now
            try emit(identity, WatchEvent(
                kind: .namespaceFailed, time: wallClock(),
                detail: "\(error) (reason \(FailureReason(classifying: error).rawValue)); retried in \(Int(retrySeconds)) s if still there"))
        }

        func rescan() throws {
            let listing: [NodeNamespace]
            do {
                listing = try select()
            } catch where lastScan != nil {
                // A node that could be listed once is still watched; the next scan may work.
                return
            }
            lastScan = .now
            let present = Dictionary(listing.map { ($0.inode, $0) }, uniquingKeysWith: { first, _ in first })
            defer { vanishing.removeAll() }
            for (inode, entry) in watched where present[inode] == nil {
                watched[inode] = nil
                for event in entry.watcher.gone() { try emit(entry.identity, event) }
                try emit(entry.identity, WatchEvent(kind: .namespaceGone, time: wallClock(), detail: "no process and no bind mount holds it any more"))
            }
            failedAt = failedAt.filter { present[$0.key] != nil }
            for (inode, node) in present.sorted(by: { $0.key < $1.key }) {
                if let entry = watched[inode] {
                    // The process it was reached through may have exited; reach it through one alive.
                    entry.watcher.namespace = node.namespace
                    continue
                }
                if let failed = failedAt[inode], ContinuousClock.now - failed < .milliseconds(Int(retrySeconds * 1000)) { continue }
                let identity = NamespaceIdentity(node)
                let watcher: NamespaceWatcher
                let found: [WatchEvent]
                do {
                    watcher = try NamespaceWatcher(
                        namespace: node.namespace, options: options, receiveBufferBytes: receiveBufferBytes, sweepSeconds: sweepSeconds)
                    found = try watcher.begin()
                } catch {
                    try fail(inode, identity, error)
                    continue
                }
                watched[inode] = (identity, watcher)
                failedAt[inode] = nil
                try emit(identity, WatchEvent(
                    kind: .namespaceAdded, time: wallClock(),
                    detail: "watching capture ports \(watcher.capturePorts.sorted().map(String.init).joined(separator: ", ")); \(found.count) leaked already"))
                for event in found { try emit(identity, event) }
            }
        }

        // The first listing must work: a watch that cannot see the node says so at once.
        try rescan()
        while !stop() {
            if let last = lastScan, ContinuousClock.now - last >= .milliseconds(Int(rescanSeconds * 1000)) { try rescan() }
            let entries = watched.sorted { $0.key < $1.key }
            var readySet: Set<Int> = []
            if entries.isEmpty {
                usleep(200_000)
            } else {
                readySet = Set(try NetlinkSocket.waitAnyReadable(entries.map(\.value.watcher.socket), milliseconds: 200))
            }
            var listAgain = false
            for (index, (inode, entry)) in entries.enumerated() {
                // The namespace's own failures are its event; a failure to emit (the
                // output closed) is the watch's.
                let events: [WatchEvent]
                do {
                    events = (readySet.contains(index) ? try entry.watcher.drain() : []) + (try entry.watcher.sweepIfDue())
                } catch where FailureReason(classifying: error) == .namespaceGone && vanishing.insert(inode).inserted {
                    listAgain = true
                    continue
                } catch {
                    try fail(inode, entry.identity, error)
                    continue
                }
                for event in events { try emit(entry.identity, event) }
            }
            if listAgain { try rescan() }
        }
    }
}

import Conntrack
import Diagnosis
import Glibc
import KernelIO

/// `ctdoctor watch --all-netns` and `--pod`: every selected namespace of the node watched
/// from one thread (one poll over their event sockets), with the node listed again every
/// `rescanSeconds` so that pods which appear are watched and pods which go are let go.
/// One namespace's failure is that namespace's event (`namespace-failed`), never the
/// watch's: it is dropped, keeping the leaks it knew, and tried again after
/// `retrySeconds` if it is still there.
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
    /// What the kernel hands each namespace's socket: its capture ports' TCP events
    /// unless told otherwise.
    public var eventFilter = ConntrackEventFilter.ports
    /// The most namespaces watched at once: each costs a socket, a diagnosis when it
    /// appears and its series. A node past it (namespaces made faster than pods are)
    /// watches the first ones by inode and reports the rest as failed.
    public var maximumNamespaces = 1024

    public init(select: @escaping Selection, options: DiagnosisOptions, rescanSeconds: Double = 5, retrySeconds: Double = 60, sweepSeconds: Double = 1) {
        self.select = select
        self.options = options
        self.rescanSeconds = rescanSeconds
        self.retrySeconds = retrySeconds
        self.sweepSeconds = sweepSeconds
    }

    struct Watched {
        var identity: NamespaceIdentity
        var watcher: NamespaceWatcher
    }

    /// A namespace that failed: when, and the leaks it knew (carried into its next watcher,
    /// or ended if it leaves the node meanwhile).
    struct Failed {
        var identity: NamespaceIdentity
        var at: ContinuousClock.Instant
        var leaks: LeakWatch
    }

    /// Hands each event to `emit` with the namespace it happened in, until `stop` says so.
    /// Throws only when the node cannot be listed at the start, or `emit` fails.
    public func run(stop: () -> Bool, emit: (NamespaceIdentity, WatchEvent) throws -> Void) throws {
        var watched: [UInt64: Watched] = [:]
        var failed: [UInt64: Failed] = [:]
        var lastScan: ContinuousClock.Instant?
        // Namespaces whose path vanished under a read: the node is listed again at once to
        // tell a deleted pod (gone, its leaks ended) from a process that exited while the
        // namespace stays (reached again through another). A second such failure, once
        // listed again, fails it like any other.
        var vanishing: Set<UInt64> = []

        func fail(_ inode: UInt64, _ identity: NamespaceIdentity, leaks: LeakWatch, _ reason: String) throws {
            watched[inode] = nil
            failed[inode] = Failed(identity: identity, at: .now, leaks: leaks)
            try emit(identity, WatchEvent(kind: .namespaceFailed, time: wallClock(), detail: "\(reason); retried in \(Int(retrySeconds)) s if still there"))
        }
        func describe(_ error: any Error) -> String { "\(error) (reason \(FailureReason(classifying: error).rawValue))" }

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
            vanishing = vanishing.filter { present[$0] != nil }
            for (inode, entry) in watched.sorted(by: { $0.key < $1.key }) where present[inode] == nil {
                watched[inode] = nil
                var leaks = entry.watcher.watch
                for event in entry.watcher.take() + endedWithNamespace(&leaks) { try emit(entry.identity, event) }
                try emit(entry.identity, WatchEvent(kind: .namespaceGone, time: wallClock(), detail: "no process and no bind mount holds it any more"))
            }
            for (inode, entry) in failed.sorted(by: { $0.key < $1.key }) where present[inode] == nil {
                failed[inode] = nil
                var leaks = entry.leaks
                for event in endedWithNamespace(&leaks) { try emit(entry.identity, event) }
                try emit(entry.identity, WatchEvent(kind: .namespaceGone, time: wallClock(), detail: "gone while it could not be watched"))
            }
            for (inode, node) in present.sorted(by: { $0.key < $1.key }) {
                if let entry = watched[inode] {
                    // The process it was reached through may have exited; reach it through one alive.
                    entry.watcher.namespace = node.namespace
                    continue
                }
                let identity = NamespaceIdentity(node)
                let carried = failed[inode]
                if let carried, ContinuousClock.now - carried.at < .milliseconds(Int(retrySeconds * 1000)) { continue }
                guard watched.count < maximumNamespaces else {
                    if carried == nil {
                        try fail(inode, identity, leaks: LeakWatch(capturePorts: []), "not watched: \(maximumNamespaces) namespaces are watched already")
                    }
                    continue
                }
                let watcher: NamespaceWatcher
                let alreadyLeaked: Int
                do {
                    watcher = try NamespaceWatcher(
                        namespace: node.namespace, options: options, receiveBufferBytes: receiveBufferBytes, sweepSeconds: sweepSeconds,
                        eventFilter: eventFilter, carrying: carried?.leaks)
                    alreadyLeaked = try watcher.begin()
                } catch {
                    try fail(inode, identity, leaks: carried?.leaks ?? LeakWatch(capturePorts: []), describe(error))
                    continue
                }
                watched[inode] = Watched(identity: identity, watcher: watcher)
                failed[inode] = nil
                try emit(identity, WatchEvent(
                    kind: .namespaceAdded, time: wallClock(),
                    detail: "watching capture ports \(watcher.capturePorts.sorted().map(String.init).joined(separator: ", ")); \(alreadyLeaked) leaked"))
                for event in watcher.take() { try emit(identity, event) }
            }
        }

        // The first listing must work: a watch that cannot see the node says so at once.
        try rescan()
        while !stop() {
            if let last = lastScan, ContinuousClock.now - last >= .milliseconds(Int(rescanSeconds * 1000)) { try rescan() }
            let entries = watched.sorted { $0.key < $1.key }
            var ready: Set<Int> = []
            if entries.isEmpty {
                usleep(200_000)
            } else {
                ready = Set(try NetlinkSocket.waitAnyReadable(entries.map(\.value.watcher.socket), milliseconds: 200))
            }
            var listAgain = false
            for (index, (inode, entry)) in entries.enumerated() {
                // The namespace's own failures are its event; a failure to emit (the
                // output closed) is the watch's. What was decoded before a failure is
                // still handed out.
                var failure: (any Error)?
                do {
                    if ready.contains(index) { try entry.watcher.drain() }
                    try entry.watcher.sweepIfDue()
                } catch {
                    failure = error
                }
                for event in entry.watcher.take() { try emit(entry.identity, event) }
                guard let failure else { continue }
                if FailureReason(classifying: failure) == .namespaceGone, vanishing.insert(inode).inserted {
                    listAgain = true
                } else {
                    vanishing.remove(inode)
                    try fail(inode, entry.identity, leaks: entry.watcher.watch, describe(failure))
                }
            }
            if listAgain { try rescan() }
        }
    }
}

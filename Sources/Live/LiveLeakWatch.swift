import Conntrack
import Diagnosis
import Glibc
import KernelIO
import NetCore
import Netlink
import Sockets

/// One namespace's share of `ctdoctor watch`: its ctnetlink event socket (NEW, UPDATE and
/// DESTROY joined), the leak state, and the sweeps that see leaks end. DESTROY events of
/// sidecar flows are checked against sock_diag at once (is the proxy's socket still in
/// FIN_WAIT2?); NEW and UPDATE events follow flows onto a known leak's tuple (collisions,
/// and whether they connect). Events the kernel dropped (ENOBUFS) are counted, reported
/// and made up for by a full read.
final class NamespaceWatcher {
    /// Where to enter the namespace for sock_diag and full reads: a node watch updates it
    /// when the process it was reached through exits but the namespace stays.
    var namespace: NetworkNamespace
    let options: DiagnosisOptions
    let receiveBufferBytes: Int
    let sweepSeconds: Double
    private let events: NetlinkSocket
    private var watch = LeakWatch(capturePorts: [])
    private var overruns = 0
    private var lastSweep = ContinuousClock.now
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)

    /// Subscribes; `begin()` then reads what is already leaked. Subscribing first means a
    /// leak born in between is seen twice at worst, and the watch keeps one.
    init(namespace: NetworkNamespace, options: DiagnosisOptions, receiveBufferBytes: Int, sweepSeconds: Double) throws {
        self.namespace = namespace
        self.options = options
        self.receiveBufferBytes = receiveBufferBytes
        self.sweepSeconds = sweepSeconds
        events = try namespace.run { try NetlinkSocket(bus: .netfilter, receiveBufferBytes: receiveBufferBytes) }
        for kind in [ConntrackEventKind.new, .update, .destroy] { try events.join(group: kind.group) }
    }

    var socket: NetlinkSocket { events }
    var leakCount: Int { watch.leakedSockets.count }
    var capturePorts: Set<UInt16> { watch.capturePorts }

    /// The leaks already there, as `leak-found`.
    func begin() throws -> [WatchEvent] {
        let start = try resynchronise()
        watch = LeakWatch(capturePorts: start.capturePorts)
        return start.leaks.compactMap { leak in
            watch.found(leak.socket, originalDestination: leak.originalDestination, at: wallClock(), why: "already leaked when watching began")
        }
    }

    /// What is queued on the event socket, without waiting: at most `limit` suspects
    /// per call (the rest stay queued for the next), looked up in one sock_diag dump.
    func drain(limit: Int = 4096) throws -> [WatchEvent] {
        var emitted: [WatchEvent] = []
        var suspects: [(ConntrackEntry, ReplyTupleKey)] = []
        var suspectKeys: Set<ReplyTupleKey> = []
        /// Looks the suspects up: a leak is born when its proxy socket is still in FIN_WAIT2.
        func resolveSuspects() throws {
            guard !suspects.isEmpty else { return }
            let halfClosed = try proxySockets()
            for (entry, key) in suspects {
                if let event = watch.destroyed(entry, proxySocket: halfClosed[key], at: wallClock()) { emitted.append(event) }
            }
            suspects.removeAll()
            suspectKeys.removeAll()
        }
        do {
            while suspects.count < limit, try events.waitReadable(milliseconds: 0) {
                let count = try events.receive(into: &buffer)
                var reader = NetlinkMessageReader(buffer, count: count)
                while let message = try reader.next() {
                    guard let kind = ConntrackEventKind(message) else { continue }
                    let entry = try ConntrackMessageDecoder.decode(buffer, message)
                    // A connect onto a flow destroyed in this same batch (the app's FIN
                    // expired the entry, and its next connect reuses the port at once):
                    // the leak must be known before the new flow is judged a collision.
                    if kind != .destroy, !suspectKeys.isEmpty, suspectKeys.contains(ReplyTupleKey(replyOf: entry)) { try resolveSuspects() }
                    switch kind {
                    case .new:
                        if let event = watch.created(entry, at: wallClock()) { emitted.append(event) }
                    case .update:
                        if let event = watch.updated(entry, at: wallClock()) { emitted.append(event) }
                    case .destroy:
                        if let event = watch.collisionDestroyed(entry, at: wallClock()) { emitted.append(event) }
                        if let key = watch.suspect(entry) {
                            suspects.append((entry, key))
                            suspectKeys.insert(key)
                        }
                    }
                }
            }
        } catch let error as KernelIOError where error.errno == .noBufferSpace {
            overruns += 1
            emitted.append(WatchEvent(
                kind: .eventsLost, time: wallClock(), overruns: overruns,
                detail: "the kernel dropped conntrack events (ENOBUFS: the receive buffer of \(receiveBufferBytes >> 20) MiB overflowed); the leaks are read again in full"))
            for leak in try resynchronise().leaks {
                if let event = watch.found(leak.socket, originalDestination: leak.originalDestination, at: wallClock(), why: "found by the full read after lost events") {
                    emitted.append(event)
                }
            }
        }
        try resolveSuspects()
        return emitted
    }

    /// Every `sweepSeconds`: the known leaks whose socket went, and collisions past the
    /// time an outcome could come.
    func sweepIfDue() throws -> [WatchEvent] {
        guard ContinuousClock.now - lastSweep >= .milliseconds(Int(sweepSeconds * 1000)) else { return [] }
        lastSweep = ContinuousClock.now
        var emitted: [WatchEvent] = []
        if !watch.leakedSockets.isEmpty {
            let present = Set(try proxySockets().values.compactMap(\.cookie))
            emitted += watch.sweep(present: present, at: wallClock())
        }
        return emitted + watch.expireCollisions(at: wallClock())
    }

    /// The namespace left the node: every leak it held ended with it.
    func gone() -> [WatchEvent] {
        watch.sweep(present: [], at: wallClock(), why: "its namespace is gone (the pod was deleted), and the proxy's socket with it")
    }

    /// The FIN_WAIT2 sockets on the capture ports, by the reply tuple they answer.
    private func proxySockets() throws -> [ReplyTupleKey: TCPSocket] {
        var found: [ReplyTupleKey: TCPSocket] = [:]
        _ = try SocketReader(namespace: namespace).forEachSocket(in: [.finWait2], withInfo: false, localPorts: watch.capturePorts.sorted()) { socket in
            found[ReplyTupleKey(source: socket.local, destination: socket.remote)] = socket
        }
        return found
    }

    /// What a diagnosis says now: the capture ports (the sidecar's, or every known
    /// mesh's) and the sockets already leaked.
    private func resynchronise() throws -> (capturePorts: Set<UInt16>, leaks: [LeakRecord]) {
        let report = try LiveCollector.collectAndDiagnose(namespace, options: options)
        let ports = report.sidecar.map { Set($0.profile.capturePorts) } ?? Set(SidecarProfile.known.flatMap(\.capturePorts))
        return (ports, report.leaks.filter { $0.classification == .leaked && $0.socket.cookie != nil })
    }
}

/// Seconds since the Unix epoch: what each event is stamped with.
func wallClock() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// `ctdoctor watch --netns`: one namespace, watched until `stop` says so. Its failures
/// end the watch (there is nothing else to watch).
public struct LiveLeakWatch: Sendable {
    public var namespace: NetworkNamespace
    public var options: DiagnosisOptions
    public var sweepSeconds: Double
    /// The event socket's receive buffer: room for a burst of destroys.
    public var receiveBufferBytes = 8 << 20

    public init(namespace: NetworkNamespace, options: DiagnosisOptions, sweepSeconds: Double = 1) {
        self.namespace = namespace
        self.options = options
        self.sweepSeconds = sweepSeconds
    }

    /// Hands each event to `emit` as it happens.
    public func run(stop: () -> Bool, emit: (WatchEvent) throws -> Void) throws {
        let watcher = try NamespaceWatcher(namespace: namespace, options: options, receiveBufferBytes: receiveBufferBytes, sweepSeconds: sweepSeconds)
        for event in try watcher.begin() { try emit(event) }
        while !stop() {
            if try watcher.socket.waitReadable(milliseconds: 200) {
                for event in try watcher.drain() { try emit(event) }
            }
            for event in try watcher.sweepIfDue() { try emit(event) }
        }
    }
}

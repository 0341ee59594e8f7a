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
    let eventFilter: ConntrackEventFilter
    private let events: NetlinkSocket
    private(set) var watch: LeakWatch
    private var overruns = 0
    /// Set by an overrun, so that a sweep does not judge a snapshot whose events were lost.
    private var overranSinceSnapshot = false
    private var lastSweep = ContinuousClock.now
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    /// What happened and has not been handed out yet: kept across a failure, so that
    /// events decoded before it are not lost with it.
    private var queued: [WatchEvent] = []
    /// Destroyed sidecar flows not yet looked up: kept across a failed lookup, tried again.
    private var suspects: [(ConntrackEntry, ReplyTupleKey)] = []
    private var suspectKeys: Set<ReplyTupleKey> = []
    /// The namespace's collision counters when each collision under way was seen. Its
    /// first SYN has drawn its challenge ACK by then (the conntrack event and the ACK are
    /// the same moment); what follows is counted: the app's SYN retransmits, and on a
    /// kernel without the fix each retransmitted SYN's further challenge ACK.
    private var countersAtCollision: [ReplyTupleKey: [String: UInt64]] = [:]
    private var stalls: StallWatch
    private var lastStallScan = ContinuousClock.now
    /// How often the accepted connections are scanned for stalls: a dump with tcp_info of
    /// the capture ports' ESTABLISHED sockets.
    static let stallScanSeconds = 5

    /// Subscribes; `begin()` then reads what is already leaked. Subscribing first means a
    /// leak born in between is seen twice at worst, and the watch keeps one.
    /// - Parameter carrying: what an earlier watcher of the namespace knew (a node watch
    ///   retrying after a failure).
    init(
        namespace: NetworkNamespace, options: DiagnosisOptions, receiveBufferBytes: Int, sweepSeconds: Double,
        eventFilter: ConntrackEventFilter = .ports, carrying: LeakWatch? = nil
    ) throws {
        self.namespace = namespace
        self.eventFilter = eventFilter
        self.options = options
        self.receiveBufferBytes = receiveBufferBytes
        self.sweepSeconds = sweepSeconds
        watch = carrying ?? LeakWatch(capturePorts: [])
        stalls = StallWatch(catalog: options.catalog)
        events = try namespace.run { try NetlinkSocket(bus: .netfilter, receiveBufferBytes: receiveBufferBytes) }
        // Filtered from the start, on every port a sidecar here could capture: the full
        // read in `begin()` can take seconds on a busy node, and unfiltered churn meanwhile
        // would overflow the buffer before the watch has read a single event.
        let possiblePorts = SidecarProfile.knownCapturePorts.union(options.sidecar?.capturePorts ?? []).union(watch.capturePorts)
        if let program = eventFilter.program(capturePorts: possiblePorts) { try events.attach(filter: program) }
        for kind in [ConntrackEventKind.new, .update, .destroy] { try events.join(group: kind.group) }
    }

    var socket: NetlinkSocket { events }
    var capturePorts: Set<UInt16> { watch.capturePorts }

    /// The events so far, handed out once; a collision's outcome carries how the
    /// namespace's collision counters moved since it was seen.
    func take() -> [WatchEvent] {
        defer { queued.removeAll() }
        var current: [String: UInt64]?
        func counters() -> [String: UInt64]? {
            if current == nil { current = try? readCollisionCounters() }
            return current
        }
        for index in queued.indices {
            guard let proxy = queued[index].proxy, let app = queued[index].app else { continue }
            let key = ReplyTupleKey(source: proxy, destination: app)
            switch queued[index].kind {
            case .collision:
                countersAtCollision[key] = counters()
            case .collisionRecovered, .collisionFailed:
                guard let before = countersAtCollision.removeValue(forKey: key), let after = counters() else { continue }
                queued[index].counterSteps = Dictionary(uniqueKeysWithValues: CollisionPrediction.counterNames.compactMap { name in
                    after[name].map { (name, $0 - min($0, before[name] ?? $0)) }
                })
            default:
                continue
            }
        }
        return queued
    }

    /// TcpExt's challenge-ACK and SYN counters of the namespace (/proc/net/netstat, snmp).
    private func readCollisionCounters() throws -> [String: UInt64] {
        try namespace.run {
            try ProcFS().tcpCounters().filter { CollisionPrediction.counterNames.contains($0.key) }
        }
    }

    /// Reads what is already leaked (`leak-found`, but for the leaks carried over); how
    /// many were already leaked.
    @discardableResult
    func begin() throws -> Int {
        let start = try resynchronise()
        watch = watch.watching(start.capturePorts)
        // The capture ports are known now: the filter narrows to them (SO_ATTACH_FILTER
        // replaces the one attached before). Events queued before stay queued, and are judged.
        if let program = eventFilter.program(capturePorts: start.capturePorts) { try events.attach(filter: program) }
        for leak in start.leaks {
            if let event = watch.found(leak.socket, originalDestination: leak.originalDestination, at: wallClock(), why: "already leaked when watching began") {
                queued.append(event)
            }
        }
        return start.leaks.count
    }

    /// What is queued on the event socket, without waiting, into `take()`: at most
    /// `datagrams` receives per call, so that one busy namespace leaves the others of a
    /// node watch their turn (the rest stay queued in the kernel for the next call).
    func drain(datagrams: Int = 64) throws {
        do {
            var received = 0
            while received < datagrams, try events.waitReadable(milliseconds: 0) {
                let count = try events.receive(into: &buffer)
                received += 1
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
                        if let event = watch.created(entry, at: wallClock()) { queued.append(event) }
                    case .update:
                        if let event = watch.updated(entry, at: wallClock()) { queued.append(event) }
                    case .destroy:
                        if let event = watch.collisionDestroyed(entry, at: wallClock()) { queued.append(event) }
                        if let key = watch.suspect(entry) {
                            suspects.append((entry, key))
                            suspectKeys.insert(key)
                        }
                    }
                }
            }
        } catch let error as KernelIOError where error.errno == .noBufferSpace {
            overruns += 1
            overranSinceSnapshot = true
            queued.append(WatchEvent(
                kind: .eventsLost, time: wallClock(), overruns: overruns,
                detail: "the kernel dropped conntrack events (ENOBUFS: the event socket's receive buffer of \(Self.size(events.receiveBufferBytes)) overflowed); the leaks are read again in full"))
            for leak in try resynchronise().leaks {
                if let event = watch.found(leak.socket, originalDestination: leak.originalDestination, at: wallClock(), why: "found by the full read after lost events") {
                    queued.append(event)
                }
            }
        }
        try resolveSuspects()
    }

    /// Looks the suspects up: a leak is born when its proxy socket is still in FIN_WAIT2.
    private func resolveSuspects() throws {
        guard !suspects.isEmpty else { return }
        let halfClosed = try proxySockets()
        for (entry, key) in suspects {
            if let event = watch.destroyed(entry, proxySocket: halfClosed[key], at: wallClock()) { queued.append(event) }
        }
        suspects.removeAll()
        suspectKeys.removeAll()
    }

    /// How much of the queue a sweep reads before judging its snapshot: enough to reach
    /// what was queued before it at the load the benchmark drives, bounded so that an
    /// event rate above what the watch can decode cannot hold the sweep back forever.
    static let sweepDrainDatagrams = 4096

    /// "8 MiB", "512 KiB": what the kernel granted (twice what was asked, for its own books).
    static func size(_ bytes: Int) -> String {
        bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
    }

    /// Every `sweepSeconds`: the known leaks whose socket went, and collisions past the
    /// time an outcome could come, into `take()`.
    func sweepIfDue() throws {
        guard ContinuousClock.now - lastSweep >= .milliseconds(Int(sweepSeconds * 1000)) else { return }
        lastSweep = ContinuousClock.now
        if !watch.leakedSockets.isEmpty {
            // The snapshot first, then the events queued before it. The kernel queues a
            // collision's NEW event before its SYN reaches the leaked socket, whose RST
            // reply then ends that socket: read in this order, the collision is matched
            // to its leak before the sweep ends the leak (CI once saw the reverse).
            let known = watch.trackedCookies
            let present = Set(try proxySockets().values.compactMap(\.cookie))
            overranSinceSnapshot = false
            try drain(datagrams: Self.sweepDrainDatagrams)
            // Events lost on the way (ENOBUFS) may have been the ones the snapshot needed,
            // a collision's NEW among them: the next sweep judges with a fresh snapshot.
            if !overranSinceSnapshot { queued += watch.sweep(present: present, among: known, at: wallClock()) }
        }
        queued += watch.expireCollisions(at: wallClock())
        if ContinuousClock.now - lastStallScan >= .seconds(Self.stallScanSeconds) {
            lastStallScan = ContinuousClock.now
            try scanStalls()
        }
    }

    /// Accepted connections on the capture ports silent both ways past --stall-after;
    /// the new ones' original destinations looked up by reply tuple.
    private func scanStalls() throws {
        let threshold = UInt64(saturating: options.stallAfterSeconds * 1000)
        var silent: [TCPSocket] = []
        _ = try SocketReader(namespace: namespace).forEachSocket(in: [.established], withInfo: true, localPorts: watch.capturePorts.sorted()) { socket in
            if StallAnalysis.isSilent(socket, thresholdMilliseconds: threshold) { silent.append(socket) }
        }
        let unknown = stalls.unknown(among: silent)
        var destinations: [UInt64: Endpoint] = [:]
        if !unknown.isEmpty {
            let keys = unknown.map { ReplyTupleKey(source: $0.local, destination: $0.remote) }
            // Where the lookup is refused the stall is still reported, without its port.
            let entries = (try? ConntrackReplyLookup(namespace: namespace).entries(for: keys)) ?? [:]
            for (socket, key) in zip(unknown, keys) {
                if let cookie = socket.cookie, let entry = entries[key] { destinations[cookie] = entry.original.destinationEndpoint }
            }
        }
        queued += stalls.scan(silent: silent, destinations: destinations, at: wallClock())
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
        let ports = report.sidecar.map { Set($0.profile.capturePorts) } ?? SidecarProfile.knownCapturePorts
        return (ports, report.leaks.filter { $0.classification == .leaked && $0.socket.cookie != nil })
    }
}

/// The leaks a namespace held when it left the node: each ended with it.
func endedWithNamespace(_ watch: inout LeakWatch) -> [WatchEvent] {
    watch.sweep(present: [], at: wallClock(), why: "its namespace is gone (the pod was deleted), and the proxy's socket with it")
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
    /// What the kernel hands over: the capture ports' TCP events unless told otherwise.
    public var eventFilter = ConntrackEventFilter.ports

    public init(namespace: NetworkNamespace, options: DiagnosisOptions, sweepSeconds: Double = 1) {
        self.namespace = namespace
        self.options = options
        self.sweepSeconds = sweepSeconds
    }

    /// Hands each event to `emit` as it happens.
    public func run(stop: () -> Bool, emit: (WatchEvent) throws -> Void) throws {
        let watcher = try NamespaceWatcher(
            namespace: namespace, options: options, receiveBufferBytes: receiveBufferBytes, sweepSeconds: sweepSeconds, eventFilter: eventFilter)
        try watcher.begin()
        for event in watcher.take() { try emit(event) }
        while !stop() {
            if try watcher.socket.waitReadable(milliseconds: 200) { try watcher.drain() }
            try watcher.sweepIfDue()
            for event in watcher.take() { try emit(event) }
        }
    }
}

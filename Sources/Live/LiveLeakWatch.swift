import Conntrack
import Diagnosis
import Glibc
import KernelIO
import NetCore
import Netlink
import Sockets

/// `ctdoctor watch` on one namespace: ctnetlink's DESTROY events, each suspect checked
/// against sock_diag at once (is the proxy's socket still in FIN_WAIT2?); NEW and
/// UPDATE events for flows onto a known leak's tuple (collisions, and whether they
/// connect); and the leaks it knows swept every `sweepSeconds` to see them end. Events the kernel dropped
/// (ENOBUFS on the event socket) are counted, reported, and made up for by a full read.
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

    /// Watches until `stop` says so, handing each event to `emit` as it happens.
    public func run(stop: () -> Bool, emit: (WatchEvent) throws -> Void) throws {
        // Subscribe first, then read what is already leaked: a leak born in between is
        // seen twice at worst, and the watch keeps one.
        let events = try namespace.run { try NetlinkSocket(bus: .netfilter, receiveBufferBytes: receiveBufferBytes) }
        for kind in [ConntrackEventKind.new, .update, .destroy] { try events.join(group: kind.group) }
        let start = try resynchronise()
        var watch = LeakWatch(capturePorts: start.capturePorts)
        for leak in start.leaks {
            if let event = watch.found(leak.socket, originalDestination: leak.originalDestination, at: now(), why: "already leaked when watching began") {
                try emit(event)
            }
        }
        let sockets = SocketReader(namespace: namespace)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var overruns = 0
        var lastSweep = ContinuousClock.now
        while !stop() {
            var suspects: [(ConntrackEntry, ReplyTupleKey)] = []
            do {
                if try events.waitReadable(milliseconds: 200) {
                    // Drain what is queued, then look the suspects up in one dump.
                    repeat {
                        let count = try events.receive(into: &buffer)
                        var reader = NetlinkMessageReader(buffer, count: count)
                        while let message = try reader.next() {
                            guard let kind = ConntrackEventKind(message) else { continue }
                            let entry = try ConntrackMessageDecoder.decode(buffer, message)
                            switch kind {
                            case .new:
                                if let event = watch.created(entry, at: now()) { try emit(event) }
                            case .update:
                                if let event = watch.updated(entry, at: now()) { try emit(event) }
                            case .destroy:
                                if let event = watch.collisionDestroyed(entry, at: now()) { try emit(event) }
                                if let key = watch.suspect(entry) { suspects.append((entry, key)) }
                            }
                        }
                    } while try events.waitReadable(milliseconds: 0) && suspects.count < 4096
                }
            } catch let error as KernelIOError where error.errno == .noBufferSpace {
                overruns += 1
                try emit(WatchEvent(
                    kind: .eventsLost, time: now(), overruns: overruns,
                    detail: "the kernel dropped conntrack events (ENOBUFS: the receive buffer of \(receiveBufferBytes >> 20) MiB overflowed); the leaks are read again in full"))
                for leak in try resynchronise().leaks {
                    if let event = watch.found(leak.socket, originalDestination: leak.originalDestination, at: now(), why: "found by the full read after lost events") {
                        try emit(event)
                    }
                }
            }
            if !suspects.isEmpty {
                let halfClosed = try proxySockets(sockets, ports: watch.capturePorts)
                for (entry, key) in suspects {
                    if let event = watch.destroyed(entry, proxySocket: halfClosed[key], at: now()) { try emit(event) }
                }
            }
            if ContinuousClock.now - lastSweep >= .milliseconds(Int(sweepSeconds * 1000)) {
                lastSweep = ContinuousClock.now
                if !watch.leakedSockets.isEmpty {
                    let present = Set(try proxySockets(sockets, ports: watch.capturePorts).values.compactMap(\.cookie))
                    for event in watch.sweep(present: present, at: now()) { try emit(event) }
                }
                for event in watch.expireCollisions(at: now()) { try emit(event) }
            }
        }
    }

    /// The FIN_WAIT2 sockets on the capture ports, by the reply tuple they answer.
    func proxySockets(_ reader: SocketReader, ports: Set<UInt16>) throws -> [ReplyTupleKey: TCPSocket] {
        var found: [ReplyTupleKey: TCPSocket] = [:]
        _ = try reader.forEachSocket(in: [.finWait2], withInfo: false, localPorts: ports.sorted()) { socket in
            found[ReplyTupleKey(source: socket.local, destination: socket.remote)] = socket
        }
        return found
    }

    /// What a diagnosis says now: the capture ports (the sidecar's, or every known
    /// mesh's) and the sockets already leaked.
    func resynchronise() throws -> (capturePorts: Set<UInt16>, leaks: [LeakRecord]) {
        let report = try LiveCollector.collectAndDiagnose(namespace, options: options)
        let ports = report.sidecar.map { Set($0.profile.capturePorts) } ?? Set(SidecarProfile.known.flatMap(\.capturePorts))
        return (ports, report.leaks.filter { $0.classification == .leaked && $0.socket.cookie != nil })
    }

    func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

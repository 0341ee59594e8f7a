import ArgumentParser
import Conntrack
import Foundation
import KernelIO
import NetCore
import Netlink
import Synchronization

/// The load the reliability test dumps under: conntrack entries created and deleted as
/// fast as batched ctnetlink messages allow, and loopback connections opened and closed,
/// in one namespace. Prints the rate it reached, so the test can check it loaded enough.
/// Stops at `--seconds` or on SIGTERM, whichever comes first: a test that needs a number
/// of dumps under load keeps the load on until it has them, however busy the machine.
struct Churn: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "churn",
        abstract: "Create and delete conntrack entries and open and close loopback connections in a namespace, for a while; print changes per second.")

    @Option(help: "Network namespace name, path or PID.") var netns: String
    @Option(help: "How long to churn at most (SIGTERM stops it sooner, still printing the rate).") var seconds = 10.0
    @Option(help: "Entries per create (and then delete) batch.") var batch = 512
    @Option(help: "Which of several churners this is (0-15): each uses its own addresses.") var lane = 0
    @Option(help: "Conntrack changes per second to aim at (0: as many as the kernel takes). A load test names the load it means.")
    var rate = 0
    @Flag(inversion: .prefixedNo, help: "Create and delete conntrack entries (--no-entries: only the connections churn).")
    var entries = true
    @Option(help: ArgumentHelp(
        "Connect through a sidecar's capture instead: to 127.0.0.1:8080, which the namespace REDIRECTs to this port, where the churner listens (a meshed pod's own flows, each a NEW, its UPDATEs and a DESTROY).",
        valueName: "port"))
    var viaCapturePort: UInt16?
    @Option(help: "Connections per second to aim at with --via-capture-port (unpaced without it: about 1,000 a second when --rate is set).")
    var connections = 1000

    func validate() throws {
        if viaCapturePort != nil && lane != 0 { throw ValidationError("--via-capture-port listens on the port: one churner (lane 0) only") }
    }

    func run() throws {
        let namespace = try NetworkNamespace.resolve(netns)
        let deadline = Date().addingTimeInterval(seconds)
        let stopped = StopFlag()
        signal(SIGTERM, SIG_IGN)
        let terminate = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        terminate.setEventHandler { stopped.value.store(true, ordering: .relaxed) }
        terminate.resume()
        let churning: @Sendable () -> Bool = { Date() < deadline && !stopped.value.load(ordering: .relaxed) }
        let connections = ConnectionCount()
        let socketChurn = Thread {
            // Sockets come and go too: each loop a connection through loopback, closed.
            // Through a capture port, the listener is the proxy's (one churner only: a
            // second could not bind the port).
            guard let listener = try? namespace.run({ try StreamSocket.listen(on: Endpoint(.loopbackV4, viaCapturePort ?? 0)) }),
                let port = try? listener.localEndpoint().port
            else { return }
            let dialled = viaCapturePort == nil ? Endpoint(.loopbackV4, port) : Endpoint(.loopbackV4, 8080)
            let started = Date()
            var made = 0
            while churning() {
                guard let client = try? namespace.run({ try StreamSocket.connect(to: dialled) }),
                    let server = try? listener.accept()
                else { continue }
                // The proxy's side closes first (its TIME_WAIT, as a proxy that ends an
                // idle upstream): the app's ports are free again at once.
                server.close()
                client.close()
                made += 1
                connections.value.add(1, ordering: .relaxed)
                if viaCapturePort != nil {
                    let due = Double(made) / Double(self.connections) - Date().timeIntervalSince(started)
                    if due > 0 { usleep(UInt32(min(due, 1) * 1_000_000)) }
                } else if rate > 0 {
                    // Paced loads pace their sockets too (about 1,000 a second), so the
                    // churners leave the dumps under test a share of the CPU.
                    usleep(1_000)
                }
            }
            listener.close()
        }
        socketChurn.start()

        let socket = try namespace.run { try NetlinkSocket(bus: .netfilter, receiveBufferBytes: 8 << 20) }
        var receive = [UInt8](repeating: 0, count: 1 << 16)
        var refused = 0
        func drain() throws {
            while try socket.waitReadable(milliseconds: 0) {
                let count: Int
                do { count = try socket.receive(into: &receive) } catch { return }  // ENOBUFS: acks dropped
                var reader = NetlinkMessageReader(receive, count: count)
                while let message = try reader.next() {
                    guard message.type == NetlinkConstant.error else { continue }
                    if (try? NetlinkDump.checkErrorMessage(receive, message)) == nil { refused += 1 }
                }
            }
        }
        // The messages are built once, so the loop spends its time in the kernel: each
        // round creates a batch and deletes it again.
        let source = UInt32(0x0AC8_0000) | UInt32(lane & 15) << 12
        var sequence: UInt32 = 1
        let rounds = (0..<16).map { round -> (create: [UInt8], delete: [UInt8]) in
            var create: [UInt8] = []
            var delete: [UInt8] = []
            for index in 0..<batch {
                // Plain flows from 10.200.x.y, far from fill-conntrack's addresses, so the
                // entries a test keeps stable are never touched.
                let n = UInt32(round * batch + index)
                let entry = ConntrackEntry(
                    family: .ipv4, protocolNumber: IPProtocolName.tcp,
                    original: ConntrackTuple(source: .v4(source | n >> 8), destination: .v4(0x0AC9_0001), sourcePort: UInt16(1024 + n % 256), destinationPort: 80),
                    reply: ConntrackTuple(source: .v4(0x0AC9_0001), destination: .v4(source | n >> 8), sourcePort: 80, destinationPort: UInt16(1024 + n % 256)),
                    state: .tcp(.established), status: [.seenReply, .assured], timeout: 600)
                create += ConntrackRequest.create(entry, sequence: sequence)
                delete += ConntrackRequest.delete(replyOf: ReplyTupleKey(replyOf: entry), sequence: sequence + 1)
                sequence &+= 2
            }
            return (create, delete)
        }
        var sent = 0
        var round = 0
        let start = Date()
        while churning() {
            guard entries else {
                usleep(50_000)
                continue
            }
            let messages = rounds[round % rounds.count]
            try socket.send(messages.create)
            try socket.send(messages.delete)
            sent += 2 * batch
            round += 1
            try drain()
            // Paced: ahead of the rate, wait until the changes sent are due.
            if rate > 0 {
                let due = Double(sent) / Double(rate) - Date().timeIntervalSince(start)
                if due > 0 { usleep(UInt32(min(due, 1) * 1_000_000)) }
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        socketChurn.cancel()
        while !socketChurn.isFinished { usleep(10_000) }
        // Without entries, what changed is the connections' (each a NEW and a DESTROY at least).
        let changes = entries ? sent - refused : 2 * connections.value.load(ordering: .relaxed)
        print("changes \(changes) refused \(refused) seconds \(String(format: "%.2f", elapsed)) rate \(Int(Double(changes) / elapsed)) connections \(connections.value.load(ordering: .relaxed))")
    }
}

/// Set by SIGTERM, read by both churning threads.
final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// Connections the socket-churn thread made, read by the main one.
final class ConnectionCount: Sendable {
    let value = Atomic<Int>(0)
}

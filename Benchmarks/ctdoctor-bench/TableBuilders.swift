import ArgumentParser
import Conntrack
import Foundation
import KernelIO
import NetCore
import Netlink

/// Fills a namespace's conntrack table with synthetic entries through batched
/// IPCTNL_MSG_CT_NEW messages (many per sendmsg), as anchors.md describes.
struct FillConntrack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fill-conntrack",
        abstract: "Insert synthetic conntrack entries: a mix of Istio-REDIRECTed and plain TCP flows.")

    @Option(help: "Network namespace name, path or PID.") var netns: String
    @Option(help: "How many entries to insert (stops early when the table is full).") var entries = 262_144

    func run() throws {
        let namespace = try NetworkNamespace.resolve(netns)
        let result = try ConntrackFiller.fill(namespace: namespace, count: entries)
        print("inserted \(result.inserted), refused \(result.refused)")
    }
}

enum ConntrackFiller {
    struct Result {
        var inserted: Int
        var refused: Int
    }

    /// Synthetic but realistic: per 8 entries, 4 outbound flows REDIRECTed to 15001, 2
    /// inbound flows to 15006, 2 plain flows; mostly ESTABLISHED with some TIME_WAIT,
    /// CLOSE_WAIT and SYN_SENT; timeouts long enough to outlive the benchmark.
    static func entry(_ index: Int) -> (ConntrackEntry, Endpoint?) {
        let pod = IPAddress.v4(0x0A01_0000 | UInt32(index >> 14 & 0xFF) << 8 | UInt32(1 + index % 250))
        let remote = IPAddress.v4(0x0A60_0000 | UInt32(index % 4096))
        let port = UInt16(1024 + index % 60000)
        let states: [ConntrackTCPState] = [.established, .established, .established, .established, .timeWait, .closeWait, .established, .synSent]
        var entry = ConntrackEntry(
            family: .ipv4, protocolNumber: IPProtocolName.tcp,
            original: ConntrackTuple(source: pod, destination: remote, sourcePort: port, destinationPort: [80, 443, 3306, 5432][index % 4]),
            reply: ConntrackTuple(source: remote, destination: pod, sourcePort: [80, 443, 3306, 5432][index % 4], destinationPort: port),
            state: .tcp(states[index / 8 % states.count]),
            status: states[index / 8 % states.count] == .synSent ? [] : [.seenReply, .assured],
            timeout: 7200)
        // Unique tuples: vary the remote port with the block of 60000.
        entry.original.destinationPort &+= UInt16(index / 60000 * 10)
        entry.reply.sourcePort = entry.original.destinationPort
        switch index % 8 {
        case 0..<4:
            return (entry, Endpoint(.v4(0x7F00_0001), 15001))
        case 4, 5:
            // Inbound: a remote client to the pod's port, redirected to 15006.
            entry.original = ConntrackTuple(source: remote, destination: pod, sourcePort: port, destinationPort: 8080)
            entry.original.sourcePort &+= UInt16(index / 60000)
            entry.reply = ConntrackTuple(source: pod, destination: remote, sourcePort: 8080, destinationPort: entry.original.sourcePort)
            return (entry, Endpoint(pod, 15006))
        default:
            return (entry, nil)
        }
    }

    /// - Parameter firstIndex: where the synthetic sequence starts; fills that add to a
    ///   table must not repeat earlier entries (the kernel refuses those with EEXIST).
    static func fill(namespace: NetworkNamespace, count: Int, firstIndex: Int = 0) throws -> Result {
        let socket = try namespace.run { try NetlinkSocket(bus: .netfilter, receiveBufferBytes: 8 << 20) }
        var batch: [UInt8] = []
        batch.reserveCapacity(80_000)
        var sequence: UInt32 = 1
        var refused = 0
        var receive = [UInt8](repeating: 0, count: 1 << 16)
        func drainErrors() throws {
            while try socket.waitReadable(milliseconds: 0) {
                let received: Int
                do { received = try socket.receive(into: &receive) } catch { return }
                var reader = NetlinkMessageReader(receive, count: received)
                while let message = try reader.next() {
                    guard message.type == NetlinkConstant.error else { continue }
                    if (try? NetlinkDump.checkErrorMessage(receive, message)) == nil { refused += 1 }
                }
            }
        }
        for index in firstIndex..<(firstIndex + count) {
            let (entry, redirect) = entry(index)
            batch += ConntrackRequest.create(entry, sequence: sequence, redirectTo: redirect)
            sequence &+= 1
            if batch.count > 64_000 {
                try socket.send(batch)
                batch.removeAll(keepingCapacity: true)
                try drainErrors()
            }
        }
        if !batch.isEmpty { try socket.send(batch) }
        usleep(50_000)
        try drainErrors()
        return Result(inserted: count - refused, refused: refused)
    }
}

/// Holds TCP sockets in chosen states until standard input closes. Run inside the
/// benchmark namespace (`ip netns exec`); several run at once because one process may
/// hold only RLIMIT_NOFILE descriptors.
struct HoldSockets: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold-sockets",
        abstract: "Open loopback connections in ESTABLISHED, FIN_WAIT2/CLOSE_WAIT and TIME_WAIT; hold them until stdin closes.")

    @Option(help: "Port the listener binds (the REDIRECT target).") var listenPort: UInt16
    @Option(help: "Port clients dial (REDIRECTed to the listener), or the listener's own port.") var dialPort: UInt16
    @Option(help: "Connections left ESTABLISHED (two sockets each).") var established = 0
    @Option(help: "Of those, how many never carry a byte (stall candidates); the others carry a request and its answer.") var silent = 0
    @Option(help: "Connections half-closed by the listener side (FIN_WAIT2 + CLOSE_WAIT).") var halfClosed = 0
    @Option(help: "Connections closed by the client first (one TIME_WAIT socket each).") var timeWait = 0
    @Option(help: "Other ports to listen on, idle (a sidecar's inbound 15006).") var alsoListen: [UInt16] = []

    func run() throws {
        raiseOpenFileLimit(to: 1 << 20)
        let listener = try StreamSocket.listen(on: Endpoint(.loopbackV4, listenPort))
        let others = try alsoListen.map { try StreamSocket.listen(on: Endpoint(.loopbackV4, $0)) }
        var held: [StreamSocket] = []
        held.reserveCapacity(2 * (established + halfClosed))
        for index in 0..<(established + halfClosed) {
            let client = try StreamSocket.connect(to: Endpoint(.loopbackV4, dialPort))
            let server = try listener.accept()
            if index >= established {
                try server.shutdownWrite()
            } else if index >= silent {
                try client.send([1])
                _ = try server.receive()
                try server.send([2])
                _ = try client.receive()
            }
            held.append(client)
            held.append(server)
        }
        for _ in 0..<timeWait {
            let client = try StreamSocket.connect(to: Endpoint(.loopbackV4, dialPort))
            let server = try listener.accept()
            client.close()
            server.close()
        }
        // Unbuffered: the parent waits for this line before it measures.
        FileHandle.standardOutput.write(Data("ready \(held.count)\n".utf8))
        while let line = readLine(), !line.isEmpty {}
        _ = listener
        _ = others
        _ = held
    }
}

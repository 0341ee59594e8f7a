import ArgumentParser
import Conntrack
import Foundation
import KernelIO
import NetCore
import Netlink
import Nftables
import Live
import Sockets

/// The practical floor of a conntrack listing: a netlink dump whose messages are
/// counted, never decoded.
struct RawCount: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw-count", abstract: "Dump the conntrack table over netlink and only count the messages.")

    @Option(help: "Network namespace name, path or PID; default: this one.") var netns: String?

    func run() throws {
        let namespace = try netns.map { try NetworkNamespace.resolve($0) } ?? .current
        let socket = try namespace.run { try NetlinkSocket(bus: .netfilter) }
        let sequence: UInt32 = 77
        var count = 0
        _ = try NetlinkDump.run(transport: socket, request: ConntrackRequest.dump(sequence: sequence), sequence: sequence) { _, _ in
            count += 1
        }
        print(count)
    }
}

/// The floor of a socket listing: a sock_diag dump of every hashed TCP socket (as a
/// listing asks: no bound-only sockets), with tcp_info as
/// ctdoctor asks for it, whose messages are counted, never decoded. By default one walk
/// brings both families, as ctdoctor asks; `--per-family` walks once per family, as ss.
struct RawSocketCount: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw-socket-count",
        abstract: "Dump every TCP socket over sock_diag and only count the messages, here or in each namespace given.")

    @Option(help: "Network namespaces (names, paths or PIDs) to dump, --parallel at a time; default: this one.")
    var netns: [String] = []

    @Flag(help: "One dump per address family (SOCK_DIAG_BY_FAMILY), as ss does, instead of one for both.")
    var perFamily = false

    @Option(help: "Namespaces dumped at once, each on a thread of its own (as diagnose --all-netns sweeps them), 1-64.")
    var parallel = 1

    func validate() throws {
        guard (1...64).contains(parallel) else { throw ValidationError("--parallel must be 1-64, not \(parallel)") }
    }

    func run() throws {
        let namespaces = try netns.isEmpty ? [NetworkNamespace.current] : netns.map { try NetworkNamespace.resolve($0) }
        let scopes = perFamily ? AddressFamily.allCases.map { SockDiagScope.family($0) } : SockDiagScope.covering(AddressFamily.allCases)
        // Live's own sweep runner, so the lanes are threads as diagnose --all-netns's are.
        let counts = try inParallel(namespaces, width: parallel) { namespace in
            Result<Int, any Error> {
                var count = 0
                let socket = try namespace.run { try NetlinkSocket(bus: .sockDiag) }
                for (index, scope) in scopes.enumerated() {
                    let sequence = UInt32(90 + index)
                    let request = SockDiagCodec.dumpRequest(scope, states: .hashed, withInfo: true, sequence: sequence)
                    _ = try NetlinkDump.run(transport: socket, request: request, sequence: sequence) { _, _ in count += 1 }
                }
                return count
            }
        }
        print(try counts.reduce(0) { $0 + (try $1.get()) })
    }
}

/// Keeps one core busy until killed: the benchmark's stand-in for a node whose other
/// core is taken (run under `taskset -c N`).
struct Spin: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spin", abstract: "Spin on one core until killed.")

    func run() throws {
        var counter: UInt64 = 0
        while true {
            counter &+= 1
            if counter == 0 { print(counter) }
        }
    }
}

/// Records raw netlink dump replies, datagram after datagram, for golden fixtures.
struct Capture: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture", abstract: "Write the raw bytes of a conntrack, sock_diag or nf_tables rule dump to a file.")

    /// sock-diag asks family by family (inet_diag_req_v2, as ss does); sock-diag-one-walk
    /// asks for both families in one TCPDIAG_GETSOCK request, as ctdoctor does.
    enum Kind: String, ExpressibleByArgument { case conntrack, sockDiag = "sock-diag", sockDiagOneWalk = "sock-diag-one-walk", nftables }

    @Argument var kind: Kind
    @Option(help: "Network namespace name, path or PID; default: this one.") var netns: String?
    @Option(help: "File to write.") var output: String

    func run() throws {
        let namespace = try netns.map { try NetworkNamespace.resolve($0) } ?? .current
        var captured: [UInt8] = []
        func record(_ socket: NetlinkSocket, _ request: [UInt8], _ sequence: UInt32) throws {
            try socket.send(request)
            var buffer = [UInt8](repeating: 0, count: NetlinkDump.receiveBufferSize)
            while true {
                let count = try socket.receive(into: &buffer)
                captured += buffer[0..<count]
                if NetlinkDump.endsDump(buffer, count: count, sequence: sequence) { break }
            }
        }
        switch kind {
        case .conntrack:
            let socket = try namespace.run { try NetlinkSocket(bus: .netfilter) }
            try record(socket, ConntrackRequest.dump(sequence: 1), 1)
        case .sockDiag:
            let socket = try namespace.run { try NetlinkSocket(bus: .sockDiag) }
            try record(socket, SockDiagCodec.dumpRequest(.family(.ipv4), states: .hashed, withInfo: true, sequence: 1), 1)
            try record(socket, SockDiagCodec.dumpRequest(.family(.ipv6), states: .hashed, withInfo: true, sequence: 2), 2)
        case .sockDiagOneWalk:
            let socket = try namespace.run { try NetlinkSocket(bus: .sockDiag) }
            try record(socket, SockDiagCodec.dumpRequest(.bothFamilies, states: .hashed, withInfo: true, sequence: 1), 1)
        case .nftables:
            let socket = try namespace.run { try NetlinkSocket(bus: .netfilter) }
            try record(socket, NftablesCodec.ruleDump(sequence: 1), 1)
        }
        try Data(captured).write(to: URL(fileURLWithPath: output))
        print("wrote \(captured.count) bytes to \(output)")
    }
}

/// Parses a /proc/net/tcp copy repeatedly and reports lines per second.
struct ParseProcTCP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parse-proc-tcp", abstract: "Measure the /proc/net/tcp parser on a file (lines per second).")

    @Argument var file: String
    @Option var repeats = 20

    func run() throws {
        let bytes = try readFile(file)
        print(String(format: "%.2f M lines/s", try ProcTCPSpeed.linesPerSecond(bytes, repeats: repeats) / 1e6))
    }
}

enum ProcTCPSpeed {
    /// The median rate over `repeats` parses of the same bytes.
    static func linesPerSecond(_ bytes: [UInt8], repeats: Int) throws -> Double {
        var rates: [Double] = []
        for _ in 0..<repeats {
            var lines = 0
            let start = ContinuousClock.now
            try ProcNetTCPParser.forEachSocket(bytes, family: nil, source: "bench") { _ in lines += 1 }
            let elapsed = ContinuousClock.now - start
            rates.append(Double(lines) / elapsed.inSeconds)
        }
        return median(rates)
    }
}


func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}


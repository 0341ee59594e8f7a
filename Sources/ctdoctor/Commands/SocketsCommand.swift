import ArgumentParser
import Formats
import JSON
import KernelIO
import Live
import Rendering
import Sockets

struct SocketsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sockets",
        abstract: "List the TCP sockets of a network namespace, with idle times and owners.",
        discussion: """
            Uses sock_diag, which adds tcp_info (idle times, bytes acked and received); falls back \
            to /proc/net/tcp and tcp6 when the kernel lacks inet_diag, and says so. --processes \
            finds each socket's owners in /proc/PID/fd, as `ss -p` does (other users' processes \
            need CAP_SYS_PTRACE).

            Every format streams, each socket printed as the sock_diag dump decodes it; the \
            table's columns are as wide as the first 1,000 rows need.

            JSON output follows the schema ctdoctor.sockets.v1, documented in README under \"JSON output\".

            Examples:
              ctdoctor sockets --state FIN_WAIT2 --port 15001 --processes
              ctdoctor sockets --netns 4242 --format ndjson
            """
    )

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("state"), help: ArgumentHelp("Only sockets in this state (ESTABLISHED, FIN_WAIT2, CLOSE_WAIT, TIME_WAIT, LISTEN..., ss spellings too); repeat for several. Without it, every state /proc/net/tcp lists; CLOSE (or BOUND_INACTIVE) adds the sockets that are only bound, Linux 6.8+.", valueName: "state"))
    var stateNames: [String] = []

    @Option(help: ArgumentHelp("Only sockets with this local or peer port.", valueName: "port"))
    var port: String?

    @Flag(name: [.customLong("processes"), .customShort("p")], help: "Show the processes holding each socket.")
    var processes = false

    @Flag(help: "Print only how many sockets match.")
    var count = false

    func states() throws -> TCPStateSet {
        guard !stateNames.isEmpty else { return .hashed }
        return TCPStateSet(try stateNames.map { name in
            guard let state = TCPState(name: name) else {
                throw ValidationError("--state '\(name)' is not a TCP state (\(TCPState.allCases.map(\.name).joined(separator: ", ")))")
            }
            return state
        })
    }

    func validate() throws {
        _ = try states()
        if let port { _ = try parsePort(port, option: "--port") }
    }

    func run() throws {
        let namespace = try self.namespace.resolve()
        let portFilter = try port.map { try parsePort($0, option: "--port") }
        let matches: (TCPSocket) -> Bool = { socket in portFilter.map { socket.local.port == $0 || socket.remote.port == $0 } ?? true }
        var processNotices: [String] = []
        var table: ProcessTable?
        if processes {
            table = try ProcessTable.scan()
            if let unreadable = table?.unreadableProcesses, unreadable > 0 {
                processNotices.append("\(unreadable) processes could not be inspected (needs CAP_SYS_PTRACE or their uid); their sockets show no owner")
            }
        }
        let owners: (TCPSocket) -> [SocketOwner]? = { socket in table.map { $0.owners(of: socket.inode) } }
        let reader = SocketReader(namespace: namespace)
        let states = try states()
        func notices(_ source: SocketSource) -> [String] {
            var notices = processNotices
            if case .procFile(let reason) = source {
                notices.insert(reason, at: 0)
                // /proc/net/tcp walks the socket hashes only: bound-only sockets are not
                // in them, and an empty answer must not read as "none bound".
                if states.admits(.close) { notices.insert("/proc/net/tcp does not list sockets that are only bound; CLOSE shows none", at: 1) }
            }
            return notices
        }

        // Every form streams: each socket is printed as the dump decodes it, and the
        // listing's end (count, source, notices) follows the last one.
        var out = OutputBuffer { try Console.writeOut(bytes: $0) }
        if count {
            var matched = 0
            let source = try reader.forEachSocket(in: states, withInfo: false) { if matches($0) { matched += 1 } }
            let notices = notices(source)
            notices.forEach { log.warning("\($0)") }
            if output.format == .table {
                out.write("\(matched)\n")
            } else {
                out.write { SocketRecord.appendCountJSON(count: matched, namespace: namespace.name, source: source, notices: notices, to: &$0) }
            }
            try out.flush()
            return
        }
        switch output.format {
        case .table:
            var text = StreamedTable(SocketRendering.tableColumns(withProcesses: processes))
            let source = try reader.forEachSocket(in: states) { socket in
                guard matches(socket) else { return }
                let held = owners(socket)
                out.write { text.append(to: &$0) { SocketRendering.writeRow(socket, owners: held, to: &$0) } }
                try out.flushIfFull()
            }
            out.write { text.finish(to: &$0) }
            try out.flush()
            notices(source).forEach { log.warning("\($0)") }
        case .ndjson, .json:
            var stream = RecordStream(output.format == .ndjson ? .lines : .array(head: SocketRecord.documentHead), to: out)
            let source = try reader.forEachSocket(in: states) { socket in
                guard matches(socket) else { return }
                let held = owners(socket)
                try stream.append(bound: SocketRecord.bound(socket, owners: held)) { SocketRecord.writeJSON(socket, owners: held, to: &$0) }
            }
            let matched = stream.count
            let notices = notices(source)
            try stream.finish {
                SocketRecord.appendMetadata(
                    count: matched, namespace: namespace.name, source: source, notices: notices, prefix: "],\"count\":", to: &$0)
            }
            notices.forEach { log.warning("\($0)") }
        }
    }
}

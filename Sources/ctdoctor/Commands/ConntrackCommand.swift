import ArgumentParser
import Conntrack
import Formats
import JSON
import KernelIO
import Live
import Rendering

struct ConntrackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conntrack",
        abstract: "List the conntrack table of a network namespace.",
        discussion: """
            Dumps the table over netlink (needs CAP_NET_ADMIN in the namespace). When netlink \
            refuses, reads /proc/net/nf_conntrack instead and says so on standard error and in \
            the JSON "source" and "notices" fields.

            Every format streams: a million entries cost one entry's memory. The table's \
            columns are as wide as the first 1,000 rows need; a wider cell later pushes its \
            line right, as in conntrack -L.

            JSON output follows the schema ctdoctor.conntrack.v1, documented in README under \"JSON output\".

            Examples:
              ctdoctor conntrack --reply-src-port 15001        # flows the Istio outbound listener captured
              ctdoctor conntrack --state CLOSE_WAIT --dnat-only --netns 4242
              ctdoctor conntrack --count --format json
            """
    )

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .customLong("proto"), help: ArgumentHelp("Only this protocol, by name or number (tcp, udp, icmp, 6...).", valueName: "protocol"))
    var protocolName: String?

    @Option(name: .customLong("state"), help: ArgumentHelp("Only entries in this state (ESTABLISHED, CLOSE_WAIT, TIME_WAIT...); repeat for several.", valueName: "state"))
    var stateNames: [String] = []

    @Option(help: ArgumentHelp("Only entries with this port on either side of either tuple.", valueName: "port"))
    var port: String?

    @Flag(name: .customLong("dnat-only"), help: "Only entries whose destination was rewritten (DNAT, REDIRECT).")
    var destinationNATOnly = false

    @Option(name: .customLong("reply-src-port"), help: ArgumentHelp("Only entries whose reply comes from this port (15001: captured by the Istio outbound listener).", valueName: "port"))
    var replySourcePort: String?

    @Flag(help: "Print only how many entries match.")
    var count = false

    func makeFilter() throws -> ConntrackFilter {
        var filter = ConntrackFilter(destinationNATOnly: destinationNATOnly)
        if let protocolName {
            guard let number = IPProtocolName.number(of: protocolName) else {
                throw ValidationError("--proto takes a protocol name (tcp, udp, icmp, icmpv6, sctp, dccp, udplite, gre) or number, not '\(protocolName)'")
            }
            filter.protocolNumber = number
        }
        for name in stateNames {
            let protocolNumber = filter.protocolNumber ?? IPProtocolName.tcp
            guard let state = ConntrackState(protocolNumber: protocolNumber, name: name) else {
                let known = ConntrackTCPState.allCases.map(\.name).joined(separator: ", ")
                throw ValidationError("--state '\(name)' is not a \(IPProtocolName.name(of: protocolNumber)) conntrack state (TCP states: \(known))")
            }
            filter.states.append(state)
        }
        if let port { filter.port = try parsePort(port, option: "--port") }
        if let replySourcePort { filter.replySourcePort = try parsePort(replySourcePort, option: "--reply-src-port") }
        return filter
    }

    func validate() throws { _ = try makeFilter() }

    func run() throws {
        let namespace = try self.namespace.resolve()
        let reader = ConntrackReader(namespace: namespace)
        let filter = try makeFilter()
        var out = OutputBuffer { try Console.writeOut(bytes: $0) }

        if count {
            let report = try reader.count(matching: filter)
            let notices = Self.notices(for: report)
            notices.forEach { log.warning("\($0)") }
            if output.format == .table {
                out.write("\(report.matched)\n")
            } else {
                out.write { ConntrackRecord.appendCountJSON(namespace: namespace.name, report: report, notices: notices, to: &$0) }
            }
            try out.flush()
            return
        }

        switch output.format {
        case .table:
            var table = StreamedTable(ConntrackRendering.tableColumns())
            let report = try reader.forEachEntry(matching: filter) { entry in
                out.write { table.append(to: &$0) { ConntrackRendering.writeRow(entry, to: &$0) } }
                try out.flushIfFull()
            }
            out.write { table.finish(to: &$0) }
            try out.flush()
            Self.notices(for: report).forEach { log.warning("\($0)") }
        case .ndjson, .json:
            var stream = RecordStream(output.format == .ndjson ? .lines : .array(head: ConntrackRecord.documentHead), to: out)
            let report = try reader.forEachEntry(matching: filter) { entry in
                try stream.append(bound: ConntrackRecord.entryBound) { ConntrackRecord.writeJSON(entry, to: &$0) }
            }
            let notices = Self.notices(for: report)
            try stream.finish { ConntrackRecord.appendJSONTrailer(namespace: namespace.name, report: report, notices: notices, to: &$0) }
            notices.forEach { log.warning("\($0)") }
        }
    }

    /// What a reader of the listing must know about how it was made.
    static func notices(for report: ConntrackReadReport) -> [String] {
        var notices: [String] = []
        if case .procFile(let reason) = report.source { notices.append(reason) }
        if let why = report.interruption { notices.append("\(why): entries created or deleted meanwhile may be missing") }
        return notices
    }
}

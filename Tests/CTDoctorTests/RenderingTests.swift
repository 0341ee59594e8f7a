import Conntrack
import Formats
import Foundation
import JSON
import NetCore
@testable import Rendering
import Sockets
import TestSupport
import Testing

@Suite("Rendering")
struct RenderingTests {
    func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    @Test func conntrackJSONHasEveryKeyOfTheSchema() throws {
        let entries = try ConntrackTextParser.parse(try Fixture.bytes("captured/conntrack-L-id.txt"), source: "L").entries
        for entry in entries {
            var bytes: [UInt8] = []
            ConntrackRecord.appendJSON(entry, to: &bytes)
            let object = try json(bytes)
            #expect(Set(object.keys) == [
                "family", "protocol", "protocol_number", "state", "timeout", "original", "reply", "status", "dnat",
                "mark", "zone", "id", "use", "start_ns", "age_seconds", "labels", "counters",
            ])
            let original = try #require(object["original"] as? [String: Any])
            #expect(Set(original.keys) == ["src", "dst", "keys", "zone", "sport", "dport", "icmp"])
            #expect(original["src"] as? String == entry.original.source.description)
            #expect(object["id"] as? Int == entry.id.map(Int.init))
            #expect(object["dnat"] as? Bool == entry.isDestinationNATed)
        }
        let icmp = try #require(entries.first { $0.protocolNumber == 1 })
        var bytes: [UInt8] = []
        ConntrackRecord.appendJSON(icmp, to: &bytes)
        let tuple = try #require(try json(bytes)["original"] as? [String: Any])
        #expect(tuple["sport"] is NSNull && (tuple["icmp"] as? [String: Any])?["type"] as? Int == 8)
    }

    /// `dnat` is the kernel's DST_NAT bit where netlink carries the status word, not a
    /// guess from the tuples; protocols without ports print null ports, not 0.
    @Test func dnatFollowsTheStatusWordAndPortlessProtocolsHaveNullPorts() throws {
        let app = IPAddress("10.66.0.5")!
        func entry(protocolNumber: UInt8, status: ConntrackStatus) -> ConntrackEntry {
            ConntrackEntry(
                family: .ipv4, protocolNumber: protocolNumber,
                original: ConntrackTuple(source: app, destination: IPAddress("10.96.0.10")!, sourcePort: 40001, destinationPort: 80),
                reply: ConntrackTuple(source: .loopbackV4, destination: app, sourcePort: 15001, destinationPort: 40001),
                state: protocolNumber == 6 ? .tcp(.established) : nil, status: status, timeout: 100)
        }
        func render(_ entry: ConntrackEntry) throws -> [String: Any] {
            var bytes: [UInt8] = []
            ConntrackRecord.appendJSON(entry, to: &bytes)
            return try json(bytes)
        }
        #expect(try render(entry(protocolNumber: 6, status: [.confirmed, .seenReply])) ["dnat"] as? Bool == false, "the status word says no DST_NAT")
        #expect(try render(entry(protocolNumber: 6, status: [.confirmed, .destinationNAT]))["dnat"] as? Bool == true)
        let gre = try render(entry(protocolNumber: 47, status: [.confirmed]))
        let tuple = try #require(gre["original"] as? [String: Any])
        #expect(tuple["sport"] is NSNull && tuple["dport"] is NSNull, "GRE has no ports: \(tuple)")
        // Text input prints no status word: there the parser infers DST_NAT from the tuples.
        let text = "tcp      6 431999 ESTABLISHED src=10.66.0.5 dst=10.96.0.10 sport=40001 dport=80 src=127.0.0.1 dst=10.66.0.5 sport=15001 dport=40001 [ASSURED] mark=0 use=1\n"
        let parsed = try #require(try ConntrackTextParser.parse(Array(text.utf8), source: "t").entries.first)
        #expect(try render(parsed)["dnat"] as? Bool == true)
    }

    @Test func socketJSONHasEveryKeyAndEscapesNames() throws {
        let socket = TCPSocket(
            family: .ipv6, state: .finWait2, local: Endpoint(.loopbackV6, 15001), remote: Endpoint(.loopbackV6, 4000),
            inode: 77, cookie: 9, info: TCPInfo(lastDataSentMilliseconds: 5, lastDataReceivedMilliseconds: 7, lastAckReceivedMilliseconds: 3, bytesReceived: 10))
        var bytes: [UInt8] = []
        SocketRecord.appendJSON(socket, owners: [SocketOwner(pid: 1, command: "we\"ird\nname", fd: 3)], to: &bytes)
        let object = try json(bytes)
        #expect(object["state"] as? String == "FIN_WAIT2")
        #expect((object["local"] as? [String: Any])?["address"] as? String == "::1")
        #expect((object["info"] as? [String: Any])?["idle_ms"] as? Int == 3)
        let owner = try #require((object["processes"] as? [[String: Any]])?.first)
        #expect(owner["command"] as? String == "we\"ird\nname")
        var none: [UInt8] = []
        SocketRecord.appendJSON(socket, owners: nil, to: &none)
        #expect(try json(none)["processes"] is NSNull)
    }

    @Test func tablesAlignColumnsAndTrimLineEnds() {
        var table = TextTable([.init("State"), .init("Recv-Q", .right), .init("Local")])
        table.append(["ESTABLISHED", "0", "127.0.0.1:1"])
        table.append(["LISTEN", "4096", "[::1]:15001"])
        let lines = table.render().split(separator: "\n").map(String.init)
        #expect(lines == [
            "State        Recv-Q  Local",
            "ESTABLISHED       0  127.0.0.1:1",
            "LISTEN         4096  [::1]:15001",
        ])
    }

    @Test func aStreamedTableNoLongerThanItsSampleIsTheTable() {
        let columns: [TextTable.Column] = [.init("State"), .init("Recv-Q", .right), .init("Local")]
        let rows = [["ESTABLISHED", "0", "127.0.0.1:1"], ["LISTEN", "4096", "[::1]:15001"], ["CLOSE\u{1B}[2J", "1", "x"]]
        var table = TextTable(columns)
        var streamed = StreamedTable(columns, sampleSize: 3)
        var text = ""
        for row in rows {
            table.append(row)
            text += streamed.append(row)
        }
        text += streamed.finish()
        #expect(text == table.render())
        #expect(!text.contains("\u{1B}"), "control characters escaped as TextTable does")
    }

    /// Each kind of tuple and flag as the conntrack table prints it, from text conntrack wrote.
    @Test func conntrackRowsSayWhatConntrackLSays() throws {
        let text = """
            ipv4 2 tcp 6 99 ESTABLISHED src=10.1.1.1 dst=10.2.2.2 sport=1000 dport=80 zone-orig=5 [UNREPLIED] src=10.2.2.2 dst=10.1.1.1 sport=80 dport=1000 [ASSURED] mark=3 use=1
            ipv4 2 gre 47 99 src=10.1.1.1 dst=10.2.2.2 srckey=0x11 dstkey=0x22 [UNREPLIED] src=10.2.2.2 dst=10.1.1.1 srckey=0x22 dstkey=0x11 mark=0 use=1
            icmp 1 29 src=10.0.0.1 dst=10.0.1.1 type=8 code=0 id=77 [UNREPLIED] src=10.0.1.1 dst=10.0.1.1 type=0 code=0 id=77 mark=0 use=1
            tcp 6 431999 ESTABLISHED src=fd00::1 dst=fd00::2 sport=40000 dport=8080 src=fd00::9 dst=fd00::1 sport=15001 dport=40000 [ASSURED] mark=0 use=1
            """
        let entries = try ConntrackTextParser.parse(Array(text.utf8), source: "t").entries.dropLast()
        var table = StreamedTable(ConntrackRendering.tableColumns(), sampleSize: 10)
        var out: [UInt8] = []
        for entry in entries { table.append(to: &out) { ConntrackRendering.writeRow(entry, to: &$0) } }
        table.finish(to: &out)
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines == [
            "Proto State Timeout Source Destination Reply-Source Reply-Destination Flags",
            "tcp ESTABLISHED 99 10.1.1.1:1000 10.2.2.2:80 10.2.2.2:80 10.1.1.1:1000 UNREPLIED,ASSURED,mark=3,zone-orig=5",
            "gre - 99 10.1.1.1 key=0x11 10.2.2.2 key=0x22 10.2.2.2 key=0x22 10.1.1.1 key=0x11 UNREPLIED",
            "icmp - 29 10.0.0.1 type=8 code=0 id=77 10.0.1.1 10.0.1.1 type=0 code=0 id=77 10.0.1.1 UNREPLIED,SNAT",
        ])
        let v6 = try ConntrackTextParser.parse(Array(text.utf8), source: "t").entries.last!
        var row = TableRow()
        ConntrackRendering.writeRow(v6, to: &row)
        var line: [UInt8] = []
        StreamedTable.write(row, widths: Array(repeating: 0, count: 8), columns: ConntrackRendering.tableColumns(), to: &line)
        #expect(String(decoding: line, as: UTF8.self) == "tcp  ESTABLISHED  431999  [fd00::1]:40000  [fd00::2]:8080  [fd00::9]:15001  [fd00::1]:40000  ASSURED,DNAT\n")
    }

    @Test func aStreamedTablePrintsEachRowOnceItsSampleIsFull() {
        var streamed = StreamedTable([.init("A"), .init("B", .right)], sampleSize: 2)
        #expect(streamed.append(["x", "1"]) == "")
        let head = streamed.append(["yy", "22"])
        #expect(head == "A    B\nx    1\nyy  22\n", "widths from the header and the sample")
        // Held no longer: each row comes out as it is appended, a wider cell pushing its line.
        #expect(streamed.append(["zzzz", "3"]) == "zzzz   3\n")
        #expect(streamed.append(["w", "4"]) == "w    4\n")
        #expect(streamed.finish() == "")
    }

    @Test(arguments: [(UInt64(850), "850ms"), (41_234, "41.2s"), (61_234, "1m1s"), (725_000, "12m5s"), (10_920_000, "3h2m"), (90_000_000, "1d1h")])
    func durationsReadLikePeopleSayThem(milliseconds: UInt64, text: String) {
        #expect(humanDuration(milliseconds: milliseconds) == text)
    }

    @Test func outputBufferFlushesInChunksAndKeepsOrder() throws {
        let flushed = Locked<[[UInt8]]>([])
        var buffer = OutputBuffer(threshold: 10) { chunk in flushed.update { $0.append(chunk) } }
        for index in 0..<7 {
            buffer.write("line\(index)\n")
            try buffer.flushIfFull()
        }
        try buffer.flush()
        let all = flushed.get()
        #expect(all.count > 1)
        #expect(String(decoding: all.flatMap { $0 }, as: UTF8.self) == (0..<7).map { "line\($0)\n" }.joined())
    }
}

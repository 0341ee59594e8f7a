import Conntrack
import NetCore
import Testing

@Suite("conntrack -L and /proc/net/nf_conntrack text")
struct ConntrackTextParserTests {
    func parse(_ text: String) throws(ParseError) -> ConntrackTextParser.Result {
        try ConntrackTextParser.parse(Array(text.utf8), source: "input")
    }

    @Test func readsEveryTCPStateAndTheOtherProtocols() throws {
        let result = try ConntrackTextParser.parse(try Fixture.bytes("handmade/conntrack-every-state.txt"), source: "states")
        #expect(result.skippedLines == 1, "the summary line")
        let states = Set(result.entries.compactMap(\.tcpState))
        #expect(states == Set(ConntrackTCPState.allCases))
        let sctp = try #require(result.entries.first { $0.protocolNumber == IPProtocolName.sctp })
        #expect(sctp.state == .sctp(4) && sctp.state?.name == "ESTABLISHED")
        let icmp = try #require(result.entries.first { $0.protocolNumber == IPProtocolName.icmp })
        #expect(icmp.original.icmp == ICMPKey(type: 8, code: 0, id: 77))
        #expect(icmp.reply.icmp == ICMPKey(type: 0, code: 0, id: 77))
        #expect(icmp.id == nil, "id=77 belongs to the ICMP tuple, not the entry")
        let udp = try #require(result.entries.first { $0.protocolNumber == IPProtocolName.udp })
        #expect(udp.state == nil && !udp.status.contains(.seenReply) && udp.timeout == 29)
    }

    @Test(arguments: ["handmade/conntrack-zones-gre.txt", "handmade/proc-nf_conntrack-zones-gre.txt", "handmade/conntrack-zones-gre.xml"])
    func readsDirectionalZonesGREKeysAndAges(path: String) throws {
        let bytes = try Fixture.bytes(path)
        let entries = path.hasSuffix(".xml")
            ? try ConntrackXMLParser.parse(bytes, source: path) : try ConntrackTextParser.parse(bytes, source: path).entries
        #expect(entries.count == 4)
        func entry(_ source: String, _ protocolNumber: UInt8 = 6) throws -> ConntrackEntry {
            try #require(entries.first { $0.original.source == IPAddress(source) && $0.protocolNumber == protocolNumber })
        }
        let origZone = try entry("10.1.1.1")
        #expect(origZone.original.zone == 5 && origZone.reply.zone == nil && origZone.zone == 0)
        let replyZone = try entry("10.1.1.3")
        #expect(replyZone.original.zone == nil && replyZone.reply.zone == 7)
        #expect(try entry("10.1.1.4").zone == 9 && (try entry("10.1.1.4").original.zone) == nil)
        let gre = try entry("10.1.1.1", 47)
        #expect(gre.original.sourcePort == 0x11 && gre.original.destinationPort == 0x22)
        #expect(gre.reply.sourcePort == 0x22 && gre.reply.destinationPort == 0x11 && gre.timeout == 99)
        #expect(entries.allSatisfy { $0.ageSeconds == 0 && $0.counters != nil })
    }

    @Test func refusesABrokenGREKeyNamingIt() {
        let line = "ipv4 2 gre 47 99 src=10.1.1.1 dst=10.2.2.2 srckey=0xzz dstkey=0x22 src=10.2.2.2 dst=10.1.1.1 srckey=0x22 dstkey=0x11 mark=0 use=1"
        #expect {
            try parse(line)
        } throws: { error in
            let failure = error as? ParseError
            return failure?.field == "srckey" && failure?.description.contains("hexadecimal") == true
        }
    }

    @Test func readsAnExtendedRedirectedLineWithCountersAndAnID() throws {
        let line = "ipv4     2 tcp      6 58 CLOSE_WAIT src=10.1.0.5 dst=10.1.0.5 sport=57788 dport=8080 packets=3 bytes=164 src=127.0.0.1 dst=10.1.0.5 sport=15001 dport=57788 packets=2 bytes=112 [ASSURED] mark=0 zone=3 use=1 id=240509733"
        let entry = try #require(try parse(line).entries.first)
        #expect(entry.tcpState == .closeWait && entry.timeout == 58)
        #expect(entry.original.destinationPort == 8080 && entry.reply.sourcePort == 15001)
        #expect(entry.status == [.seenReply, .assured, .destinationNAT])
        #expect(entry.isDestinationNATed && !entry.isSourceNATed)
        #expect(entry.counters == ConntrackCounters(originalPackets: 3, originalBytes: 164, replyPackets: 2, replyBytes: 112))
        #expect(entry.id == 240_509_733 && entry.zone == 3 && entry.use == 1)
    }

    @Test func readsIPv6InBothTheCompressedAndTheProcForm() throws {
        let compressed = "tcp      6 431998 ESTABLISHED src=fd00::5 dst=fd00::5 sport=58130 dport=8080 src=::1 dst=fd00::5 sport=15001 dport=58130 [ASSURED] mark=0 use=1"
        let full = "ipv6     10 tcp      6 431998 ESTABLISHED src=fd00:0000:0000:0000:0000:0000:0000:0005 dst=fd00:0000:0000:0000:0000:0000:0000:0005 sport=58130 dport=8080 src=0000:0000:0000:0000:0000:0000:0000:0001 dst=fd00:0000:0000:0000:0000:0000:0000:0005 sport=15001 dport=58130 [ASSURED] mark=0 zone=0 use=2"
        let a = try #require(try parse(compressed).entries.first)
        let b = try #require(try parse(full).entries.first)
        #expect(a.family == .ipv6 && a.reply.source == .loopbackV6)
        #expect(a.original == b.original && a.reply == b.reply)
    }

    @Test func acceptsCRLFAndSkipsBlankLines() throws {
        let text = "\r\ntcp 6 10 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 mark=0 use=1\r\n\r\n"
        let result = try parse(text)
        #expect(result.entries.count == 1 && result.skippedLines == 2)
    }

    /// Malformed lines fail with the line number and the field at fault.
    @Test(arguments: [
        ("tcp 6 117 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2", "tuple"),
        ("tcp 6 117 ESTABLISHED src=1.2.3.999 dst=5.6.7.8 sport=1 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1", "src"),
        ("tcp 6 117 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=70000 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1", "sport"),
        ("tcp 6 117 BOGUS src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1", "state"),
        // Where the timeout stands, a word that is not a number is a timeout error.
        ("tcp 6 abc ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1", "timeout"),
        ("udp 17 12s src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1", "timeout"),
        ("[NEW] tcp 6 120 SYN_SENT src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2 [UNREPLIED] src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1", "event"),
        ("tcp 17 117 src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1", "protocol"),
        ("tcp 6 117 ESTABLISHED src=1.2.3.4 dst=::1 sport=1 dport=2 src=::1 dst=1.2.3.4 sport=2 dport=1", "tuple"),
        ("ipv6 10 tcp 6 117 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 sport=1 dport=2 src=5.6.7.8 dst=1.2.3.4 sport=2 dport=1", "l3proto"),
        ("tcp six 117", "protocol"),
        ("\u{7f}ELF\u{02}\u{01}\u{01}", "protocol"),
        ("tcp 6 117 ESTABLISHED src=1.2.3.4 dst=5.6.7.8 src=5.6.7.8 dst=1.2.3.4 src=9.9.9.9", "src"),
        ("tcp 6 1 ESTABLISHED dport=5 src=1.2.3.4 dst=5.6.7.8 src=5.6.7.8 dst=1.2.3.4", "dport"),
    ])
    func refusesMalformedLinesNamingTheField(line: String, field: String) {
        do {
            _ = try parse("tcp 6 1 ESTABLISHED src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1 mark=0\n" + line)
            Issue.record("accepted: \(line)")
        } catch {
            #expect(error.field == field, "\(error)")
            #expect(error.line == 2)
            #expect(!error.description.contains("\n"), "one line")
        }
    }

    @Test func filtersByEveryCriterion() throws {
        let entries = try ConntrackTextParser.parse(try Fixture.bytes("captured/conntrack-L.txt"), source: "L").entries
        func count(_ filter: ConntrackFilter) -> Int { entries.filter(filter.matches).count }
        #expect(count(.all) == entries.count)
        #expect(count(ConntrackFilter(protocolNumber: IPProtocolName.udp)) == 1)
        #expect(count(ConntrackFilter(states: [.tcp(.closeWait)])) == 1)
        #expect(count(ConntrackFilter(port: 15001)) == 3, "two IPv4 and one IPv6 redirected flow")
        #expect(count(ConntrackFilter(destinationNATOnly: true)) == 3)
        #expect(count(ConntrackFilter(replySourcePort: 15001)) == 3)
        #expect(count(ConntrackFilter(states: [.tcp(.established)], replySourcePort: 15001)) == 2)
        #expect(count(ConntrackFilter(port: 9999)) == 1)
    }
}

@Suite("Reply-tuple index")
struct ReplyTupleIndexTests {
    /// The key has no protocol: a UDP flow on the same addresses and ports must not stand
    /// in for the TCP flow a sidecar socket looks up (the stall index once let it).
    @Test func onlyTCPEntriesAreIndexedAndTheFirstOfTwinsWins() throws {
        let text = """
            udp 17 20 src=10.66.0.5 dst=10.96.0.10 sport=40000 dport=80 src=127.0.0.1 dst=10.66.0.5 sport=15001 dport=40000 mark=0 use=1
            tcp 6 60 CLOSE_WAIT src=10.66.0.5 dst=10.96.0.10 sport=40000 dport=80 src=127.0.0.1 dst=10.66.0.5 sport=15001 dport=40000 [ASSURED] mark=0 use=1
            tcp 6 30 SYN_SENT src=10.66.0.5 dst=10.96.0.11 sport=40000 dport=80 [UNREPLIED] src=127.0.0.1 dst=10.66.0.5 sport=15001 dport=40000 mark=0 use=1
            """
        let entries = try ConntrackTextParser.parse(Array(text.utf8), source: "t").entries
        let index = ReplyTupleKey.index(tcpEntries: entries)
        let key = ReplyTupleKey(source: Endpoint(.loopbackV4, 15001), destination: Endpoint(try #require(IPAddress("::ffff:10.66.0.5")), 40000))
        #expect(index.count == 1 && index[key]?.tcpState == .closeWait)
    }
}

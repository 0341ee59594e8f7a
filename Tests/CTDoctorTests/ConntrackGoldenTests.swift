import Conntrack
import NetCore
import Netlink
import TestSupport
import Testing

/// The captured fixtures were taken in the same second (Fixtures/README.md), so the raw
/// ctnetlink dump, `conntrack -L` in three formats and /proc/net/nf_conntrack must
/// describe the same table.
@Suite("Conntrack golden fixtures")
struct ConntrackGoldenTests {
    let dumped: [ConntrackEntry]

    init() throws {
        dumped = try ConntrackMessageDecoder.decodeDump(try Fixture.bytes("captured/conntrack-dump.bin"))
    }

    func text(_ name: String) throws -> [ConntrackEntry] {
        try ConntrackTextParser.parse(try Fixture.bytes("captured/\(name)"), source: name).entries
    }

    @Test func theFixtureHoldsEveryCaseItIsMeantTo() throws {
        #expect(dumped.count >= 10)
        #expect(dumped.contains { $0.family == .ipv6 })
        #expect(dumped.contains { $0.protocolNumber == IPProtocolName.udp && !$0.status.contains(.seenReply) })
        #expect(dumped.contains { $0.original.icmp?.type == 8 })
        #expect(dumped.contains { $0.zone == 7 && $0.mark == 7 })
        #expect(dumped.contains { $0.tcpState == .synSent })
        #expect(dumped.contains { $0.tcpState == .closeWait && $0.reply.sourcePort == 15001 })
        #expect(dumped.contains { $0.tcpState == .timeWait })
        #expect(dumped.allSatisfy { $0.counters != nil }, "nf_conntrack_acct was on")
        #expect(dumped.allSatisfy { $0.id != nil })
    }

    @Test func netlinkDumpAgreesWithConntrackListingEntryForEntry() throws {
        let listed = try text("conntrack-L-id.txt")
        #expect(listed.count == dumped.count)
        let byID = Dictionary(uniqueKeysWithValues: dumped.map { ($0.id!, $0) })
        for entry in listed {
            let id = try #require(entry.id)
            let decoded = try #require(byID[id], "id \(id) missing from the netlink dump")
            expectSameFlow(decoded, entry)
        }
    }

    @Test func procFileAndOtherListingFormatsDescribeTheSameTable() throws {
        let reference = dumped.map(FlowKey.init).sorted()
        for name in ["conntrack-L.txt", "conntrack-L-extended.txt", "proc-nf_conntrack.txt"] {
            let parsed = try text(name)
            #expect(parsed.map(FlowKey.init).sorted() == reference, "\(name)")
        }
        let proc = try text("proc-nf_conntrack.txt")
        #expect(proc.allSatisfy { $0.id == nil }, "/proc has no ids")
        #expect(proc.contains { $0.family == .ipv6 && $0.original.source == IPAddress("fd00::5") })
    }

    @Test func libnetfilterConntrackDecodesEveryMessageTheSameWay() throws {
        let bytes = try Fixture.bytes("captured/conntrack-dump.bin")
        var reader = NetlinkMessageReader(bytes, count: bytes.count)
        var compared = 0
        while let message = try reader.next() {
            guard ConntrackMessageDecoder.carriesEntry(message) else { continue }
            let whole = Array(bytes[(message.payload.lowerBound - 16)..<message.payload.upperBound])
            let reference = try #require(ReferenceConntrackDecoder.decode(message: whole))
            let ours = try ConntrackMessageDecoder.decode(bytes, message)
            #expect(reference == ReferenceFields(ours), "entry \(ours.id ?? 0)")
            compared += 1
        }
        #expect(compared == dumped.count)
    }

    /// Timeouts tick between captures; everything else must match exactly.
    func expectSameFlow(_ decoded: ConntrackEntry, _ listed: ConntrackEntry, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(FlowKey(decoded) == FlowKey(listed), sourceLocation: sourceLocation)
        #expect(decoded.counters == listed.counters, sourceLocation: sourceLocation)
        #expect(decoded.use == listed.use, sourceLocation: sourceLocation)
        if let a = decoded.timeout, let b = listed.timeout {
            #expect(abs(Int(a) - Int(b)) <= 2, "timeout \(a) vs \(b)", sourceLocation: sourceLocation)
        }
        // Text shows only these status bits; NAT is derived from the tuples.
        let visible: ConntrackStatus = [.seenReply, .assured, .offload, .hardwareOffload]
        #expect(decoded.status.intersection(visible) == listed.status.intersection(visible), sourceLocation: sourceLocation)
        #expect(decoded.status.contains(.destinationNAT) == listed.status.contains(.destinationNAT), sourceLocation: sourceLocation)
        #expect(decoded.status.contains(.sourceNAT) == listed.status.contains(.sourceNAT), sourceLocation: sourceLocation)
    }
}

/// Our decoded entry in the shape libnetfilter_conntrack reports.
func ReferenceFields(_ entry: ConntrackEntry) -> ReferenceConntrackFields {
    let hasPorts = IPProtocolName.hasPorts(entry.protocolNumber)
    return ReferenceConntrackFields(
        family: entry.family.rawValue,
        protocolNumber: entry.protocolNumber,
        originalSource: entry.original.source.bytes,
        originalDestination: entry.original.destination.bytes,
        replySource: entry.reply.source.bytes,
        replyDestination: entry.reply.destination.bytes,
        originalPorts: hasPorts ? (entry.original.sourcePort, entry.original.destinationPort) : nil,
        replyPorts: hasPorts ? (entry.reply.sourcePort, entry.reply.destinationPort) : nil,
        tcpState: entry.tcpState?.rawValue,
        status: entry.status.rawValue,
        timeout: entry.timeout,
        mark: entry.mark,
        zone: entry.zone == 0 ? nil : entry.zone,
        id: entry.id,
        counters: entry.counters.map { [$0.originalPackets, $0.originalBytes, $0.replyPackets, $0.replyBytes] }
    )
}

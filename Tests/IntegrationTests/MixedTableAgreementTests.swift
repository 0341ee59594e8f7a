import Conntrack
import Foundation
import KernelIO
import Live
import NetCore
import TestSupport
import Testing

/// A table of every kind conntrack-tools can insert — IPv4 and IPv6; TCP, UDP, ICMP, SCTP
/// and GRE; DNAT and SNAT; a mark; a zone for both directions and a zone for one — read
/// four ways in one namespace: ctdoctor's netlink dump, /proc/net/nf_conntrack,
/// `conntrack -L -o extended,id` and `-o xml`, all compared field by field. Entries are
/// matched by their tuples, never by id alone (ids are 32-bit and repeat in large tables).
@Suite("Mixed table: netlink, /proc, conntrack -L and XML agree", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class MixedTableAgreementTests {
    let lab: TestNamespace

    static let inserts: [[String]] = [
        ["-p", "tcp", "-s", "10.1.1.1", "-d", "10.2.2.2", "--sport", "1000", "--dport", "80", "--state", "ESTABLISHED", "--orig-zone", "5", "-u", "ASSURED"],
        ["-p", "tcp", "-s", "10.1.1.3", "-d", "10.2.2.2", "--sport", "1000", "--dport", "80", "--state", "ESTABLISHED", "--reply-zone", "7"],
        ["-p", "tcp", "-s", "10.1.1.4", "-d", "10.2.2.2", "--sport", "1000", "--dport", "80", "--state", "ESTABLISHED", "--zone", "9", "-m", "3"],
        ["-p", "tcp", "-s", "10.1.1.9", "-d", "10.96.0.1", "--sport", "5", "--dport", "80", "--state", "ESTABLISHED", "--dst-nat", "127.0.0.1:15001", "-u", "SEEN_REPLY"],
        ["-p", "tcp", "-s", "10.1.1.8", "-d", "10.96.0.1", "--sport", "6", "--dport", "80", "--state", "TIME_WAIT", "--src-nat", "10.0.0.1:7000"],
        ["-p", "gre", "-s", "10.1.1.1", "-d", "10.2.2.2", "--srckey", "0x11", "--dstkey", "0x22"],
        ["-p", "gre", "-s", "fd00::1", "-d", "fd00::2", "--srckey", "0xabcd", "--dstkey", "0x1", "--reply-zone", "2"],
        ["-p", "udp", "-s", "fd00::1", "-d", "fd00::2", "--sport", "53", "--dport", "5353", "-m", "7"],
        ["-p", "icmp", "-s", "10.1.1.1", "-d", "10.2.2.2", "--icmp-type", "8", "--icmp-code", "0", "--icmp-id", "77"],
        ["-p", "sctp", "-s", "10.0.0.1", "-d", "10.0.0.2", "--orig-port-src", "9", "--orig-port-dst", "10",
         "--reply-port-src", "10", "--reply-port-dst", "9", "--state", "ESTABLISHED", "--orig-vtag", "1", "--reply-vtag", "2"],
    ]

    init() throws {
        lab = try TestNamespace(tag: "mixed")
        try lab.exec(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_timestamp=1", "net.netfilter.nf_conntrack_acct=1"])
        for insert in Self.inserts { try lab.exec(["conntrack", "-I"] + insert + ["-t", "300"]) }
    }

    deinit { lab.destroy() }

    func parsedText(_ command: [String], source: String) throws -> [ConntrackEntry] {
        try ConntrackTextParser.parse(Array(try lab.exec(command).utf8), source: source).entries
    }

    func byTuples(_ entries: [ConntrackEntry]) -> [FlowKey: ConntrackEntry] {
        Dictionary(entries.map { (FlowKey($0), $0) }, uniquingKeysWith: { first, _ in first })
    }

    @Test func everyReadingAgreesFieldByField() throws {
        let clock = ContinuousClock()
        let readStart = clock.now
        let (netlink, report) = try ConntrackReader(namespace: lab.namespace).entries()
        #expect(report.source == .netlink)
        let proc = try parsedText(["cat", "/proc/net/nf_conntrack"], source: "/proc/net/nf_conntrack")
        let tool = try parsedText(["conntrack", "-L", "-o", "extended,id"], source: "conntrack -L")
        let xml = try ConntrackXMLParser.parse(Array(try lab.exec(["conntrack", "-L", "-o", "xml"]).utf8), source: "conntrack -L -o xml")
        #expect(netlink.count == Self.inserts.count)
        // Timeouts tick in whole seconds between the reads; a busy machine spreads them.
        let spread = Int((clock.now - readStart).components.seconds) + 2
        // conntrack's XML leaves out ICMP's type, code and id.
        func withoutICMP(_ entry: ConntrackEntry) -> ConntrackEntry {
            var entry = entry
            entry.original.icmp = nil
            entry.reply.icmp = nil
            return entry
        }
        for (name, entries, keepsICMP) in [("/proc", proc, true), ("conntrack -L", tool, true), ("XML", xml, false)] {
            let reference = byTuples(keepsICMP ? netlink : netlink.map(withoutICMP))
            #expect(Set(byTuples(entries).keys) == Set(reference.keys), "\(name) lists other flows")
            for (key, theirs) in byTuples(entries) {
                let ours = try #require(reference[key])
                #expect(theirs.counters == ours.counters, "\(name): \(key)")
                #expect(theirs.status.contains(.destinationNAT) == ours.status.contains(.destinationNAT), "\(name) dnat: \(key)")
                #expect(abs(Int(theirs.timeout ?? 0) - Int(ours.timeout ?? 0)) <= spread, "\(name) timeout: \(key)")
                // The text's age against netlink's start time.
                let start = try #require(ours.startNanoseconds)
                let age = Date().timeIntervalSince1970 - Double(start) / 1e9
                #expect(abs(Double(try #require(theirs.ageSeconds)) - age) <= Double(spread + 1), "\(name) age: \(key)")
            }
        }
        // conntrack -L -o id and netlink agree on ids too, tuple for tuple.
        let reference = byTuples(netlink)
        for (key, theirs) in byTuples(tool) { #expect(theirs.id == reference[key]?.id) }
    }

    @Test func zonesKeysAndNATAreWhereTheKernelPutThem() throws {
        let (entries, _) = try ConntrackReader(namespace: lab.namespace).entries()
        func entry(_ source: String, _ protocolNumber: UInt8 = 6) throws -> ConntrackEntry {
            try #require(entries.first { $0.original.source == IPAddress(source) && $0.protocolNumber == protocolNumber })
        }
        let origZone = try entry("10.1.1.1")
        #expect(origZone.original.zone == 5 && origZone.reply.zone == nil && origZone.zone == 0)
        let replyZone = try entry("10.1.1.3")
        #expect(replyZone.original.zone == nil && replyZone.reply.zone == 7 && replyZone.zone == 0)
        let bothZone = try entry("10.1.1.4")
        #expect(bothZone.zone == 9 && bothZone.original.zone == nil && bothZone.mark == 3)
        let gre = try entry("10.1.1.1", 47)
        #expect(gre.hasKeys && gre.original.sourcePort == 0x11 && gre.original.destinationPort == 0x22)
        #expect(gre.reply.sourcePort == 0x22 && gre.reply.destinationPort == 0x11)
        let gre6 = try entry("fd00::1", 47)
        #expect(gre6.original.sourcePort == 0xabcd && gre6.reply.zone == 2)
        #expect(try entry("10.1.1.9").status.contains(.destinationNAT))
        let snat = try entry("10.1.1.8")
        #expect(!snat.status.contains(.destinationNAT) && snat.status.contains(.sourceNAT))
        #expect(try entry("10.1.1.1", 1).original.icmp == ICMPKey(type: 8, code: 0, id: 77))
    }

    @Test func theJSONCarriesZonesAndKeys() throws {
        let result = try lab.run([Binary.ctdoctor, "conntrack", "--format", "ndjson"])
        #expect(result.status == 0, "\(result.standardError)")
        let objects = try result.standardOutput.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        let gre = try #require(objects.first { $0["protocol"] as? String == "gre" && ($0["original"] as? [String: Any])?["src"] as? String == "10.1.1.1" })
        let original = try #require(gre["original"] as? [String: Any])
        let keys = try #require(original["keys"] as? [String: Any])
        #expect(keys["src"] as? Int == 0x11 && keys["dst"] as? Int == 0x22)
        #expect(original["sport"] is NSNull && original["zone"] is NSNull)
        let zoned = try #require(objects.first { ($0["original"] as? [String: Any])?["src"] as? String == "10.1.1.1" && $0["protocol"] as? String == "tcp" })
        #expect((zoned["original"] as? [String: Any])?["zone"] as? Int == 5)
        #expect((zoned["reply"] as? [String: Any])?["zone"] is NSNull)
        #expect((zoned["original"] as? [String: Any])?["keys"] is NSNull)
    }
}

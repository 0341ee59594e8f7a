import Foundation
import Netlink
import Nftables
import Testing

/// nf_tables rules as the kernel dumps them, and which of them drop INVALID packets.
/// The fixture is a real dump (`ctdoctor-bench capture nftables`, kernel 6.18, iptables
/// 1.8.9 and nft 1.0.6) of a namespace holding each way people write that rule —
/// iptables-nft's `-m conntrack` and `-m state`, nft's `ct state`, a state set, a jump
/// to Istio's ISTIO_DROP — and rules that look like it but are not.
struct NftablesTests {
    static let rules: [NftablesRule] = {
        let url = Bundle.module.url(forResource: "Fixtures/captured/nftables-rules", withExtension: "bin")!
        return try! NftablesCodec.decodeRules(Array(try! Data(contentsOf: url)))
    }()

    /// What each rule of the fixture was made with, in the dump's order, and whether it
    /// drops INVALID packets.
    static let expected: [(place: String, made: String, drops: Bool)] = [
        ("ip filter OUTPUT", "iptables -A OUTPUT -m conntrack --ctstate INVALID -j DROP", true),
        ("ip filter OUTPUT", "iptables -A OUTPUT -m conntrack --ctstate ESTABLISHED -j DROP", false),
        ("ip filter OUTPUT", "iptables -A OUTPUT -m conntrack ! --ctstate INVALID -j DROP", false),
        ("ip mangle PREROUTING", "iptables -t mangle -A PREROUTING -m state --state INVALID,NEW -j DROP", true),
        ("ip mangle ISTIO_DROP", "iptables -t mangle -A ISTIO_DROP -j DROP", false),
        ("ip mangle OUTPUT", "iptables -t mangle -A OUTPUT -m conntrack --ctstate INVALID -j ISTIO_DROP", true),
        ("inet t c", "nft add rule inet t c ct state invalid counter drop", true),
        ("inet t c", "nft add rule inet t c ct state { invalid, untracked } drop", true),
        ("inet t c", "nft add rule inet t c ct state != invalid accept", false),
        ("inet t c", "nft add rule inet t c ct state established drop", false),
        ("inet t c", "nft add rule inet t c ct state invalid accept", false),
        ("inet t c", "nft add rule inet t c tcp dport 80 ct state invalid counter jump ISTIO_DROP", true),
        ("inet t c", "nft add rule inet t c ct state { established, related } drop", false),
        ("ip6 filter INPUT", "ip6tables -A INPUT -p tcp -m state --state INVALID -j DROP", true),
    ]

    /// The anonymous sets of table inet t: __set0 is { invalid, untracked }.
    static func setHoldsInvalid(_ name: String) -> Bool { name == "__set0" }

    @Test func decodesEveryRuleInItsPlace() {
        #expect(Self.rules.map { "\($0.family) \($0.table) \($0.chain)" } == Self.expected.map(\.place))
        #expect(Self.rules.allSatisfy { $0.handle != nil && !$0.expressions.isEmpty })
    }

    @Test(arguments: Array(zip(rules, expected).enumerated()))
    func judgesWhetherTheRuleDropsInvalidPackets(_ item: (offset: Int, element: (NftablesRule, (place: String, made: String, drops: Bool)))) {
        let (rule, expected) = item.element
        let line = InvalidDropJudgement.describe(rule, setContainsInvalid: Self.setHoldsInvalid)
        #expect((line != nil) == expected.drops, "\(expected.made): \(line ?? "not an INVALID drop")")
        if let line {
            #expect(line.hasPrefix("table \(rule.family) \(rule.table), chain \(rule.chain)"), "\(line)")
            #expect(line.lowercased().contains("invalid") && (line.contains("drop") || line.contains("ISTIO_DROP")), "\(line)")
        }
    }

    @Test func aStateSetIsReadOnlyWhenItsRuleWouldDropAndJudgedByItsElements() {
        let bySet = Self.rules.filter { !InvalidDropJudgement.setsToRead($0).isEmpty }
        #expect(bySet.map { InvalidDropJudgement.setsToRead($0) } == [["__set0"], ["__set1"]])
        #expect(bySet.allSatisfy { InvalidDropJudgement.describe($0) == nil }, "a set not read holds nothing")
        #expect(bySet.map { InvalidDropJudgement.describe($0, setContainsInvalid: { _ in true }) != nil } == [true, true])
    }

    @Test func iptablesNftRulesReadAsIptablesSaveWritesThem() {
        let lines = Self.rules.compactMap { InvalidDropJudgement.describe($0, setContainsInvalid: Self.setHoldsInvalid) }
        #expect(lines.first == "table ip filter, chain OUTPUT (handle 2): -m conntrack --ctstate INVALID … drop")
        #expect(lines.contains("table ip mangle, chain PREROUTING (handle 2): -m state --state INVALID … drop"))
        #expect(lines.contains("table ip mangle, chain OUTPUT (handle 6): -m conntrack --ctstate INVALID … jump ISTIO_DROP"))
    }

    @Test func truncatedOrCorruptDumpsFailWithTheirOffsetNeverATrap() throws {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/captured/nftables-rules", withExtension: "bin"))
        let bytes = Array(try Data(contentsOf: url))
        for cut in stride(from: 1, to: bytes.count, by: 7) {
            _ = try? NftablesCodec.decodeRules(Array(bytes[0..<cut]))
        }
        var corrupt = bytes
        corrupt[20] = 0xFF  // the first attribute's length: past its message
        corrupt[21] = 0xFF
        #expect(throws: NetlinkFramingError.self) { try NftablesCodec.decodeRules(corrupt) }
    }
}

import Foundation
import Netlink
@testable import Nftables
import Testing

/// nf_tables rules as the kernel dumps them, and which of them drop INVALID packets.
/// The fixture is a real dump (`ctdoctor-bench capture nftables`, kernel 6.18, iptables
/// 1.8.9, nft 1.0.6) of a namespace holding each way people write that rule —
/// iptables-nft's `-m conntrack` and `-m state`, nft's `ct state`, state sets and verdict
/// maps, reject, a jump to a chain that drops (Istio's ISTIO_DROP and istio-drop, an
/// operator's INVDROP) — and rules that look like it but are not.
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
        ("ip filter OUTPUT", "iptables -A OUTPUT -m conntrack ! --ctstate ESTABLISHED,RELATED -j DROP", true),
        ("ip filter OUTPUT", "iptables -A OUTPUT -p tcp -m conntrack --ctstate INVALID -j REJECT --reject-with tcp-reset", true),
        ("ip mangle PREROUTING", "iptables -t mangle -A PREROUTING -m state --state INVALID,NEW -j DROP", true),
        ("ip mangle ISTIO_DROP", "iptables -t mangle -A ISTIO_DROP -j DROP", false),
        ("ip mangle OUTPUT", "iptables -t mangle -A OUTPUT -m conntrack --ctstate INVALID -j ISTIO_DROP", true),
        ("ip mangle OUTPUT", "iptables -t mangle -A OUTPUT -m conntrack --ctstate INVALID -j LOGONLY", false),
        ("ip mangle LOGONLY", "iptables -t mangle -A LOGONLY -j LOG", false),
        ("ip6 filter INPUT", "ip6tables -A INPUT -p tcp -m state --state INVALID -j DROP", true),
        ("inet t INVDROP", "counter drop", false),
        ("inet t quiet", "counter", false),
        ("inet t c", "ct state invalid counter drop", true),
        ("inet t c", "ct state { invalid, untracked } drop", true),
        ("inet t c", "ct state != invalid accept", false),
        ("inet t c", "ct state established drop", false),
        ("inet t c", "ct state invalid accept", false),
        ("inet t c", "ct state { established, related } drop", false),
        ("inet t c", "ct state vmap { invalid : drop, established : accept }", true),
        ("inet t c", "ct state vmap { established : accept, related : accept }", false),
        ("inet t c", "ct state invalid counter reject", true),
        ("inet t c", "ct state invalid jump INVDROP", true),
        ("inet t c", "ct state invalid jump quiet", false),
        ("inet t c", "ct state != established,related drop", true),
        ("inet t c", "ip saddr { 10.0.0.1, 10.0.0.2 } ct state invalid drop", true),
        ("inet istio-proxy-mangle prerouting", "meta l4proto tcp ct state invalid jump istio-drop (Istio's nftables backend)", true),
        ("inet istio-proxy-mangle istio-drop", "drop", false),
    ]

    /// What the fixture's anonymous sets hold for the INVALID key, as nft made them.
    static func table(_ name: String) -> NftablesObject { NftablesObject(family: .inet, table: "t", name: name) }
    static let sets: [(NftablesObject, NftablesSetElement?)] = [
        (table("__set0"), NftablesSetElement(key: 1)),  // { invalid, untracked }
        (table("__set1"), nil),  // { established, related }
        (table("__map0"), NftablesSetElement(key: 1, verdict: .drop)),  // { invalid : drop, established : accept }
        (table("__map1"), nil),  // { established : accept, related : accept }
    ]

    /// The search over the whole fixture, its sets read.
    static func searched() -> InvalidDropSearch {
        var search = InvalidDropSearch()
        for rule in rules { search.consider(rule) }
        for (set, element) in sets { search.learn(set, invalidElement: element) }
        return search
    }

    @Test func decodesEveryRuleInItsPlace() {
        #expect(Self.rules.map { "\($0.family) \($0.table) \($0.chain)" } == Self.expected.map(\.place))
        #expect(Self.rules.allSatisfy { $0.handle != nil && !$0.expressions.isEmpty })
    }

    @Test(arguments: Array(zip(rules, expected).enumerated()))
    func judgesWhetherTheRuleDropsInvalidPackets(_ item: (offset: Int, element: (NftablesRule, (place: String, made: String, drops: Bool)))) {
        let (rule, expected) = item.element
        let judgement = Self.searched().judge(rule, final: true)
        guard case .drops(let line) = judgement else {
            #expect(!expected.drops, "\(expected.made): judged \(judgement)")
            return
        }
        #expect(expected.drops, "\(expected.made): \(line)")
        #expect(line.hasPrefix("table \(rule.family) \(rule.table), chain \(rule.chain)"), "\(line)")
        #expect(line.lowercased().contains("invalid") && ["drop", "reject", "ISTIO_DROP", "INVDROP"].contains { line.contains($0) }, "\(line)")
    }

    @Test func rulesThatNeedASetOrALaterChainWaitAndOnlyStateSetsAreRead() throws {
        var search = InvalidDropSearch()
        // Without the iptables-nft rules, the first match needs what comes after it.
        for rule in Self.rules where rule.table == "t" { search.consider(rule) }
        #expect(search.found == "table inet t, chain c (handle 6): ct state invalid … drop")
        let lookups = Self.rules.filter { rule in rule.expressions.contains { if case .lookup = $0 { true } else { false } } }
        var waiting = InvalidDropSearch()
        for rule in lookups where rule.expressions.first == .loadConntrackState(into: 1) { waiting.consider(rule) }
        #expect(waiting.found == nil)
        #expect(waiting.setsToRead.map(\.name) == ["__set0", "__set1", "__map0", "__map1"])
        #expect(waiting.conclusion() == nil, "a set not read holds nothing")
        let addresses = try #require(lookups.first { $0.expressions.first == .other("meta") })
        #expect(InvalidDropSearch.stateLookups(addresses).isEmpty, "an address set says nothing of the state: never read")
    }

    @Test func aJumpCountsOnceItsChainIsSeenToDropEverything() {
        // Istio's nftables backend: the jump comes before the chain it goes to.
        let istio = Self.rules.filter { $0.table == "istio-proxy-mangle" }
        var search = InvalidDropSearch()
        for rule in istio { search.consider(rule) }
        #expect(search.found?.hasPrefix("table inet istio-proxy-mangle, chain prerouting") == true, "\(search.found ?? "none")")
        #expect(search.found?.hasSuffix("jump istio-drop") == true)

        let quiet = Self.rules.filter { $0.table == "t" && ($0.chain == "quiet" || $0.expressions.contains(.verdict(.jump("quiet")))) }
        var none = InvalidDropSearch()
        for rule in quiet { none.consider(rule) }
        #expect(none.conclusion() == nil && none.incomplete == nil)
    }

    @Test func iptablesNftRulesReadAsIptablesSaveWritesThem() {
        var search = Self.searched()
        #expect(search.conclusion() == "table ip filter, chain OUTPUT (handle 2): -m conntrack --ctstate INVALID … drop")
        let lines = Self.rules.compactMap { rule -> String? in
            if case .drops(let line) = Self.searched().judge(rule, final: true) { line } else { nil }
        }
        #expect(lines.contains { $0.hasSuffix("-m state --state INVALID … drop") && $0.contains("PREROUTING") })
        #expect(lines.contains { $0.hasSuffix("-m conntrack ! --ctstate … (INVALID passes) … drop") })
        #expect(lines.contains { $0.hasSuffix("-m conntrack --ctstate INVALID … reject") })
        #expect(lines.contains { $0.hasSuffix("-m conntrack --ctstate INVALID … jump ISTIO_DROP") })
        #expect(lines.contains { $0.hasSuffix("ct state vmap @__map0 (invalid: drop)") })
    }

    @Test func aTenantsFloodOfWaitingRulesMakesTheAnswerUnknownNotNo() throws {
        let waits = try #require(Self.rules.first { $0.expressions.contains(.verdict(.jump("quiet"))) })
        var search = InvalidDropSearch()
        for _ in 0...InvalidDropSearch.waitingLimit { search.consider(waits) }
        #expect(search.conclusion() == nil)
        #expect(search.incomplete?.contains("more than \(InvalidDropSearch.waitingLimit) rules") == true)
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

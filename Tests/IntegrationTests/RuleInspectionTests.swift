import Diagnosis
import Live
import TestSupport
import Testing

/// The INVALID-drop rule that makes a collision time out on a fixed kernel, found in
/// each rule backend a node may use.
@Suite("packet filter rules", .enabled(if: Privileges.shouldRunPrivilegedTests))
struct RuleInspectionTests {
    func rules(in namespace: TestNamespace) throws -> RulesFacts {
        try LiveCollector(namespace: namespace.namespace).collect(profile: nil).rules
    }

    @Test func aBareNamespaceHasNoDropRuleAndNoLegacyTablesToRead() throws {
        let bare = try TestNamespace(tag: "rules-bare")
        defer { bare.destroy() }
        let facts = try rules(in: bare)
        #expect(facts.invalidDrop == false)
        #expect(facts.source.hasPrefix("nf_tables over netlink (0 rules)"), "\(facts.source)")
        #expect(facts.source.contains("no legacy iptables tables loaded"))
        let tables = try bare.exec(["cat", "/proc/net/ip_tables_names"])
        #expect(tables.isEmpty, "reading the rules must not load legacy tables into the namespace")
    }

    @Test(arguments: ["iptables-nft", "iptables-legacy"])
    func findsTheInvalidDropRuleInEitherBackend(iptables: String) throws {
        let namespace = try TestNamespace(tag: "rules-\(iptables.split(separator: "-").last!)")
        defer { namespace.destroy() }
        try namespace.exec([iptables, "-w", "-A", "OUTPUT", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"])
        let facts = try rules(in: namespace)
        #expect(facts.invalidDrop == true)
        #expect(facts.source == (iptables == "iptables-legacy" ? "iptables-legacy-save" : "nf_tables over netlink"))
        #expect(facts.matchingRule?.contains("INVALID") == true || facts.matchingRule?.contains("invalid") == true, "\(facts.matchingRule ?? "")")
    }

    /// nft's own forms, read over netlink: a state set is read for its elements, and a
    /// rule that only looks like the drop is not taken for it.
    @Test func findsNftsStateSetRuleAndTellsLookalikesApart() throws {
        let namespace = try TestNamespace(tag: "rules-nft")
        defer { namespace.destroy() }
        for command in [
            ["nft", "add", "table", "inet", "mesh"],
            ["nft", "add", "chain", "inet", "mesh", "pre", "{ type filter hook prerouting priority -150; }"],
            ["nft", "add", "rule", "inet", "mesh", "pre", "ct", "state", "!=", "invalid", "accept"],
            ["nft", "add", "rule", "inet", "mesh", "pre", "ct", "state", "{ established, related }", "drop"],
            ["nft", "add", "rule", "inet", "mesh", "pre", "ct", "state", "invalid", "accept"],
        ] { try namespace.exec(command) }
        let lookalikes = try rules(in: namespace)
        #expect(lookalikes.invalidDrop == false)
        #expect(lookalikes.source.hasPrefix("nf_tables over netlink (3 rules)"), "\(lookalikes.source)")

        try namespace.exec(["nft", "add", "rule", "inet", "mesh", "pre", "ct", "state", "vmap", "{ established : accept, related : accept }"])
        #expect(try rules(in: namespace).invalidDrop == false, "a verdict map without invalid in it")

        try namespace.exec(["nft", "add", "rule", "inet", "mesh", "pre", "tcp", "dport", "15006", "ct", "state", "{ invalid, untracked }", "drop"])
        let facts = try rules(in: namespace)
        #expect(facts.invalidDrop == true)
        #expect(facts.source == "nf_tables over netlink")
        #expect(facts.matchingRule?.hasPrefix("table inet mesh, chain pre") == true && facts.matchingRule?.contains("holds invalid") == true, "\(facts.matchingRule ?? "")")
    }

    /// Istio's nftables backend (istio-iptables with nftables, INVALID_DROP set), as its
    /// own golden file writes it: the jump comes before the chain that drops.
    @Test func findsIstiosNftablesDropAndAVerdictMap() throws {
        let istio = try TestNamespace(tag: "rules-istio")
        defer { istio.destroy() }
        for command in [
            ["nft", "add", "table", "inet", "istio-proxy-mangle"],
            ["nft", "add", "chain", "inet", "istio-proxy-mangle", "prerouting", "{ type filter hook prerouting priority -150; }"],
            ["nft", "add", "chain", "inet", "istio-proxy-mangle", "istio-drop"],
            ["nft", "add", "rule", "inet", "istio-proxy-mangle", "prerouting", "meta", "l4proto", "tcp", "ct", "state", "invalid", "jump", "istio-drop"],
            ["nft", "add", "rule", "inet", "istio-proxy-mangle", "istio-drop", "drop"],
        ] { try istio.exec(command) }
        let facts = try rules(in: istio)
        #expect(facts.invalidDrop == true && facts.source == "nf_tables over netlink")
        let line = facts.matchingRule ?? ""
        #expect(line.hasPrefix("table inet istio-proxy-mangle, chain prerouting (handle ") && line.hasSuffix("): ct state invalid … jump istio-drop"), "\(line)")

        let map = try TestNamespace(tag: "rules-vmap")
        defer { map.destroy() }
        for command in [
            ["nft", "add", "table", "inet", "host"],
            ["nft", "add", "chain", "inet", "host", "input", "{ type filter hook input priority 0; }"],
            ["nft", "add", "rule", "inet", "host", "input", "ct", "state", "vmap", "{ invalid : drop, established : accept, related : accept }"],
        ] { try map.exec(command) }
        let mapped = try rules(in: map)
        #expect(mapped.invalidDrop == true)
        #expect(mapped.matchingRule?.hasSuffix("(invalid: drop)") == true, "\(mapped.matchingRule ?? "")")
    }
}

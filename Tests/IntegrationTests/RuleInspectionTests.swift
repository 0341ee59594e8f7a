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

        try namespace.exec(["nft", "add", "rule", "inet", "mesh", "pre", "tcp", "dport", "15006", "ct", "state", "{ invalid, untracked }", "drop"])
        let facts = try rules(in: namespace)
        #expect(facts.invalidDrop == true)
        #expect(facts.source == "nf_tables over netlink")
        #expect(facts.matchingRule?.hasPrefix("table inet mesh, chain pre") == true && facts.matchingRule?.contains("holds invalid") == true, "\(facts.matchingRule ?? "")")
    }
}

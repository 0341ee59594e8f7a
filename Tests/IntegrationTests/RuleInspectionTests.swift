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
        #expect(facts.source.hasPrefix("nft list ruleset"), "\(facts.source)")
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
        #expect(facts.source == (iptables == "iptables-legacy" ? "iptables-legacy-save" : "nft list ruleset"))
        #expect(facts.matchingRule?.contains("INVALID") == true || facts.matchingRule?.contains("invalid") == true, "\(facts.matchingRule ?? "")")
    }
}

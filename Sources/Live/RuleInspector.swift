import Diagnosis
import KernelIO

/// Reads the namespace's packet filter rules to find an INVALID-drop rule. Fixed
/// command lines, no shell. Runs inside the namespace (the children inherit it).
enum RuleInspector {
    /// `nft` sees nftables and iptables-nft rules; iptables-legacy-save the legacy tables;
    /// where nft is missing, iptables-save reads whichever backend it was built for.
    static let listings: [[String]] = [
        ["nft", "list", "ruleset"], ["iptables-save"], ["iptables-legacy-save"], ["ip6tables-legacy-save"],
    ]

    /// The legacy listings and the /proc/net file that names the legacy tables loaded in
    /// this namespace. Where it is missing or empty there are no legacy rules, and
    /// running the save would only load ip_tables into the namespace (and cost a process).
    static let legacyTableNames = ["iptables-legacy-save": "ip_tables_names", "ip6tables-legacy-save": "ip6_tables_names"]

    static func inspect(procfs: ProcFS = ProcFS()) -> RulesFacts {
        var read: [String] = []
        var skipped: [String] = []
        for command in listings {
            if command[0] == "iptables-save" && read.contains("nft list ruleset") { continue }
            if let names = legacyTableNames[command[0]] {
                guard let tables = try? procfs.readNet(names), tables.contains(where: { $0 > 0x20 }) else {
                    skipped.append(command[0])
                    continue
                }
            }
            guard let path = systemProgram(command[0]),
                let output = try? runCapturingOutput([path] + command.dropFirst()), output.exitStatus == 0
            else { continue }
            read.append(command.joined(separator: " "))
            if let rule = KernelText.invalidDropRule(in: String(decoding: output.standardOutput, as: UTF8.self)) {
                return RulesFacts(invalidDrop: true, source: command.joined(separator: " "), matchingRule: rule)
            }
        }
        guard !read.isEmpty else {
            return RulesFacts(invalidDrop: nil, source: "unknown: none of nft, iptables-save, iptables-legacy-save could be run here")
        }
        let legacy = skipped.count == legacyTableNames.count ? "; no legacy iptables tables loaded" : ""
        return RulesFacts(invalidDrop: false, source: read.joined(separator: ", ") + legacy)
    }
}

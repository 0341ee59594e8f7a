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

    static func inspect() -> RulesFacts {
        var read: [String] = []
        for command in listings {
            if command[0] == "iptables-save" && read.contains("nft list ruleset") { continue }
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
        return RulesFacts(invalidDrop: false, source: read.joined(separator: ", "))
    }
}

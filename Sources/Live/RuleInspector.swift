import Diagnosis
import KernelIO

/// Reads the namespace's packet filter rules to find an INVALID-drop rule: nf_tables
/// over netlink, the legacy tables (and nf_tables where netlink is refused) through
/// their listing programs, with fixed command lines and no shell. Runs inside the
/// namespace (the children inherit it).
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

    static let overNetlink = "nf_tables over netlink"

    static func inspect(procfs: ProcFS = ProcFS()) -> RulesFacts {
        var read: [String] = []
        var skipped: [String] = []
        // nf_tables over netlink first: what nft and iptables-nft list, without a process.
        // Where it is refused (no CAP_NET_ADMIN), nft would be too, but it is tried.
        var netlinkFailure: String?
        var notAllJudged: String?
        do {
            let nftables = try NftablesRuleReader.findInvalidDrop()
            if let rule = nftables.invalidDrop { return RulesFacts(invalidDrop: true, source: overNetlink, matchingRule: rule) }
            notAllJudged = nftables.incomplete
            read.append("\(overNetlink) (\(nftables.rules) rules)")
        } catch {
            netlinkFailure = "\(error)"
        }
        var legacyUnread: [String] = []
        for command in listings {
            // nf_tables read one way or the other (netlink, then nft) needs no iptables-save.
            if (command[0] == "nft" || command[0] == "iptables-save") && !read.isEmpty { continue }
            let legacy = legacyTableNames[command[0]] != nil
            if let names = legacyTableNames[command[0]] {
                guard let tables = try? procfs.readNet(names), tables.contains(where: { $0 > 0x20 }) else {
                    skipped.append(command[0])
                    continue
                }
            }
            guard let path = systemProgram(command[0]),
                let output = try? runCapturingOutput([path] + command.dropFirst()), output.exitStatus == 0
            else {
                if legacy { legacyUnread.append(command[0]) }
                continue
            }
            read.append(command.joined(separator: " "))
            if let rule = KernelText.invalidDropRule(in: String(decoding: output.standardOutput, as: UTF8.self)) {
                return RulesFacts(invalidDrop: true, source: command.joined(separator: " "), matchingRule: rule)
            }
        }
        guard !read.isEmpty else {
            return RulesFacts(
                invalidDrop: nil,
                source: "unknown: nf_tables could not be read over netlink (\(netlinkFailure ?? "no answer")), and none of nft, iptables-save, iptables-legacy-save could be run here")
        }
        // Legacy tables that are loaded but could not be listed (no iptables-legacy-save in
        // the image) may hold the rule: then nothing can be said.
        guard legacyUnread.isEmpty else {
            return RulesFacts(
                invalidDrop: nil,
                source: "unknown: " + read.joined(separator: ", ") + "; legacy iptables tables are loaded but \(legacyUnread.joined(separator: " and ")) could not be run")
        }
        let legacy = skipped.count == legacyTableNames.count ? "; no legacy iptables tables loaded" : ""
        if let notAllJudged {
            return RulesFacts(invalidDrop: nil, source: "unknown: " + read.joined(separator: ", ") + legacy + "; not every rule judged: \(notAllJudged)")
        }
        return RulesFacts(invalidDrop: false, source: read.joined(separator: ", ") + legacy)
    }
}

import KernelIO
import Netlink
import Nftables

/// Reads the namespace's nf_tables rules over netlink, the way `nft` does, to find an
/// INVALID-drop rule: no process per namespace (a node sweep ran `nft` a hundred
/// times), and rules found in an image that has neither nft nor iptables. nf_tables
/// holds iptables-nft's rules too; the legacy tables stay with iptables-legacy-save.
/// Runs in the calling thread's namespace. libnftnl would decode the same messages but
/// hand back every rule as an object tree to walk; the few expressions the judgement
/// needs are decoded in `NftablesCodec` instead.
enum NftablesRuleReader {
    struct Outcome {
        var rules: Int
        var invalidDrop: String?
    }

    /// Rules that drop only through a state set wait for that set to be read; a tenant's
    /// table may hold any number, so only the first few are.
    static let setLookupsRead = 16
    /// A dump the rules' generation changed under is started again, up to this many times.
    static let attempts = 3

    static func findInvalidDrop() throws -> Outcome {
        let socket = try NetlinkSocket(bus: .netfilter)
        for attempt in 1...attempts {
            var rules = 0
            var found: String?
            var waiting: [(rule: NftablesRule, sets: [String])] = []
            let sequence = UInt32(attempt)
            let pass = try NetlinkDump.run(transport: socket, request: NftablesCodec.ruleDump(sequence: sequence), sequence: sequence) {
                bytes, message in
                guard NftablesCodec.isRule(message) else { return }
                rules += 1
                guard found == nil else { return }
                let rule = try NftablesCodec.decodeRule(bytes, message)
                if let line = InvalidDropJudgement.describe(rule) {
                    found = line
                } else if waiting.count < setLookupsRead, case let sets = InvalidDropJudgement.setsToRead(rule), !sets.isEmpty {
                    waiting.append((rule, sets))
                }
            }
            if pass.interrupted && attempt < attempts { continue }
            for (rule, sets) in waiting where found == nil {
                var holdsInvalid: [String: Bool] = [:]
                for set in sets { holdsInvalid[set] = try setHoldsInvalid(socket, rule: rule, set: set) }
                found = InvalidDropJudgement.describe(rule) { holdsInvalid[$0] ?? false }
            }
            return Outcome(rules: rules, invalidDrop: found)
        }
        return Outcome(rules: 0, invalidDrop: nil)
    }

    static func setHoldsInvalid(_ socket: NetlinkSocket, rule: NftablesRule, set: String) throws -> Bool {
        let sequence: UInt32 = 100
        var holds = false
        let request = NftablesCodec.setElementDump(family: rule.family, table: rule.table, set: set, sequence: sequence)
        _ = try NetlinkDump.run(transport: socket, request: request, sequence: sequence) { bytes, message in
            if try NftablesCodec.decodeElementKeys(bytes, message).contains(InvalidDropJudgement.invalidState) { holds = true }
        }
        return holds
    }
}

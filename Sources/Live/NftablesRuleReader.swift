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
        /// Why the absence of a match says nothing (a limit reached on a tenant's rules).
        var incomplete: String?
    }

    /// The rules changed during every one of this many dumps (NLM_F_DUMP_INTR).
    struct KeptChanging: Error, CustomStringConvertible {
        var description: String { "the rules changed during each of \(NftablesRuleReader.attempts) dumps" }
    }

    static let attempts = 3
    /// State sets read per namespace, and their elements in all: a tenant's sets may be
    /// of any size, and what is past the limit is said, not guessed.
    static let setsRead = 64
    static let elementsRead = 1 << 20

    static func findInvalidDrop() throws -> Outcome {
        let socket = try NetlinkSocket(bus: .netfilter)
        var sequence: UInt32 = 0
        for _ in 1...attempts {
            sequence += 1
            var search = InvalidDropSearch()
            let pass = try NetlinkDump.run(transport: socket, request: NftablesCodec.ruleDump(sequence: sequence), sequence: sequence) {
                bytes, message in
                guard NftablesCodec.isRule(message) else { return }
                search.consider(try NftablesCodec.decodeRule(bytes, message))
            }
            if pass.interrupted { continue }
            if search.found == nil {
                let sets = search.setsToRead
                if sets.count > setsRead { search.markIncomplete("more than \(setsRead) state sets to read") }
                var elements = 0
                for set in sets.prefix(setsRead) {
                    sequence += 1
                    var invalid: NftablesSetElement?
                    let request = NftablesCodec.setElementDump(family: set.family, table: set.table, set: set.name, sequence: sequence)
                    _ = try NetlinkDump.run(transport: socket, request: request, sequence: sequence) { bytes, message in
                        for element in try NftablesCodec.decodeElements(bytes, message) {
                            elements += 1
                            if invalid == nil, !element.endsInterval, element.key == InvalidDropSearch.invalidState { invalid = element }
                        }
                    }
                    search.learn(set, invalidElement: invalid)
                    if elements > elementsRead {
                        search.markIncomplete("state sets of more than \(elementsRead) elements")
                        break
                    }
                }
            }
            let found = search.conclusion()
            return Outcome(rules: search.rulesSeen, invalidDrop: found, incomplete: found == nil ? search.incomplete : nil)
        }
        throw KeptChanging()
    }
}

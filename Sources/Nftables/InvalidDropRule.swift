/// Whether a rule drops the packets conntrack judges INVALID — the rule that turns a
/// port collision's RST into a connect timeout on kernels with the v6.2 fix too (Istio's
/// INVALID_DROP, an operator's hardening). The same judgement as the text listings'
/// (`KernelText.invalidDropRule`), made on the rule itself: a positive state test that
/// INVALID passes, and a drop or a jump to Istio's ISTIO_DROP chain.
public enum InvalidDropJudgement {
    /// NF_CT_STATE_INVALID_BIT, XT_CONNTRACK_STATE_INVALID, XT_STATE_INVALID: the same bit.
    static let invalidBit: UInt32 = 1 << 0
    /// The INVALID state as an element of a state set.
    public static let invalidState = invalidBit

    /// What the rule needs answered before it can be judged: the anonymous sets its
    /// state lookups name (`ct state { invalid, untracked }`), when it would drop.
    public static func setsToRead(_ rule: NftablesRule) -> [String] {
        guard verdict(of: rule) != nil else { return [] }
        var sets: [String] = []
        _ = invalidTest(rule) { set in
            sets.append(set)
            return false
        }
        return sets
    }

    /// The rule in a line people recognise, when it drops INVALID packets.
    /// - Parameter setContainsInvalid: whether a named set holds the INVALID state
    ///   (read with `NftablesCodec.setElementDump`); sets not read count as not.
    public static func describe(_ rule: NftablesRule, setContainsInvalid: (String) -> Bool = { _ in false }) -> String? {
        guard let verdict = verdict(of: rule) else { return nil }
        guard let test = invalidTest(rule, setContainsInvalid: setContainsInvalid) else { return nil }
        let handle = rule.handle.map { " (handle \($0))" } ?? ""
        return "table \(rule.family) \(rule.table), chain \(rule.chain)\(handle): \(test) … \(verdict)"
    }

    static func verdict(of rule: NftablesRule) -> String? {
        for case .verdict(let verdict) in rule.expressions {
            switch verdict {
            case .drop: return "drop"
            case .jump(let chain) where chain.uppercased() == "ISTIO_DROP": return "jump \(chain)"
            case .goto(let chain) where chain.uppercased() == "ISTIO_DROP": return "goto \(chain)"
            default: return nil
            }
        }
        return nil
    }

    static func invalidTest(_ rule: NftablesRule, setContainsInvalid: (String) -> Bool) -> String? {
        // What each register holds: the state, through a mask and xor (identity when loaded).
        var held: [UInt32: (mask: UInt32, xor: UInt32)] = [:]
        for expression in rule.expressions {
            switch expression {
            case .loadConntrackState(let register): held[register] = (~0, 0)
            case .loadConntrack(let register): held[register] = nil
            case .bitwise(let from, let into, let mask, let xor):
                held[into] = held[from].map { (mask: $0.mask & mask, xor: ($0.xor & mask) ^ xor) }
            case .compare(let register, let equal, let value):
                guard let state = held[register] else { continue }
                let invalid = (invalidBit & state.mask) ^ state.xor
                // A positive test INVALID passes: `ct state invalid`, `ct state invalid,new`
                // (masked, != 0), `ct state == invalid` (exact). Negative ones (`!= new`)
                // pass INVALID too but are not how anyone drops it.
                let positive = equal ? invalid == value && invalid != 0 : value == 0 && invalid != 0 && state.mask != ~0
                if positive { return "ct state invalid" }
            case .lookup(let register, let set, let inverted):
                if !inverted, held[register].map({ $0.mask == ~0 && $0.xor == 0 }) == true, setContainsInvalid(set) {
                    return "ct state @\(set) (holds invalid)"
                }
            case .xtablesMatch(let name, let revision, let info):
                if let test = xtablesInvalidTest(name: name, revision: revision, info: info) { return test }
            case .other:
                // It may load a register (payload, meta): what the registers held is lost.
                held.removeAll()
            case .verdict: break
            }
        }
        return nil
    }

    /// iptables-nft's `-m conntrack --ctstate` and `-m state --state` (since iptables 1.8
    /// an alias of it), run by nft_compat with the xtables structures as they are
    /// (include/uapi/linux/netfilter/xt_conntrack.h, xt_state.h; host order).
    /// - Returns: the test as iptables-save writes it, when INVALID passes it.
    static func xtablesInvalidTest(name: String, revision: UInt32, info: [UInt8]) -> String? {
        func half(_ offset: Int) -> UInt16? {
            guard info.count >= offset + 2 else { return nil }
            return UInt16(info[offset]) | UInt16(info[offset + 1]) << 8
        }
        switch (name, revision) {
        case ("state", _):
            // struct xt_state_info { unsigned int statemask; }
            guard info.count >= 4, UInt32(info[0]) & invalidBit != 0 else { return nil }
            return "-m state --state INVALID"
        case ("conntrack", 1...3):
            // Eight 16-byte addresses and masks, expires_min/max, l4proto, four ports:
            // match_flags at 146, invert_flags at 148, state_mask at 150 (a byte in rev 1).
            let stateFlag: UInt16 = 1 << 0  // XT_CONNTRACK_STATE
            let aliasFlag: UInt16 = 1 << 13  // XT_CONNTRACK_STATE_ALIAS: written as -m state
            guard let flags = half(146), let inverted = half(148), info.count > 150,
                flags & stateFlag != 0, inverted & stateFlag == 0, UInt32(info[150]) & invalidBit != 0
            else { return nil }
            return flags & aliasFlag != 0 ? "-m state --state INVALID" : "-m conntrack --ctstate INVALID"
        default:
            return nil
        }
    }
}

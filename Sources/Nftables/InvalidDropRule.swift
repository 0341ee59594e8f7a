/// A set or a chain by where it lives: both are a table's.
public struct NftablesObject: Sendable, Hashable, CustomStringConvertible {
    public var family: NftablesFamily
    public var table: String
    public var name: String

    public init(family: NftablesFamily, table: String, name: String) {
        self.family = family
        self.table = table
        self.name = name
    }

    public var description: String { "\(family) \(table) \(name)" }
}

/// Looks through one dump of a namespace's rules for one that drops the packets
/// conntrack judges INVALID — the rule that turns a port collision's RST into a connect
/// timeout even on kernels with the v6.2 fix (Istio's INVALID_DROP in both its backends,
/// an operator's hardening). A rule counts when an INVALID packet passes its state test
/// (`ct state invalid`, `-m conntrack --ctstate INVALID`, a set or verdict map holding
/// invalid, or a negative test such as `! --ctstate ESTABLISHED,RELATED`) and it then
/// drops, rejects, or jumps to a chain that drops everything it is handed (Istio's
/// `ISTIO_DROP` / `istio-drop`, an operator's `INVDROP`).
///
/// Rules are judged as they come; one that needs what comes later — the elements of its
/// set, a chain whose rules follow — waits, a bounded number of them, until `conclusion`.
/// Pure: the caller reads the kernel and feeds the answers in.
public struct InvalidDropSearch: Sendable {
    /// NF_CT_STATE_INVALID_BIT, XT_CONNTRACK_STATE_INVALID, XT_STATE_INVALID: the same
    /// bit, and the key an INVALID packet looks up in a state set.
    public static let invalidState: UInt32 = 1 << 0
    /// The other states a test is tried with, to tell `ct state invalid` from a test that
    /// lets INVALID through among others (ESTABLISHED, RELATED, NEW, UNTRACKED).
    static let otherStates: [UInt32] = [1 << 1, 1 << 2, 1 << 3, 1 << 6]
    /// Rules kept waiting; a namespace's tenant may write any number of them.
    public static let waitingLimit = 256

    /// The matching rule in a line people recognise, once one is found.
    public private(set) var found: String?
    /// Why "no such rule" cannot be said even if none is found (a limit was reached).
    public private(set) var incomplete: String?
    public private(set) var rulesSeen = 0

    var waiting: [NftablesRule] = []
    var droppingChains: Set<NftablesObject> = []
    /// What each set read holds for the INVALID key: nil when it lacks it, the element
    /// (its verdict, in a map) when it has it.
    var invalidElements: [NftablesObject: NftablesSetElement?] = [:]

    public init() {}

    public mutating func consider(_ rule: NftablesRule) {
        rulesSeen += 1
        if Self.dropsEverything(rule) { droppingChains.insert(NftablesObject(family: rule.family, table: rule.table, name: rule.chain)) }
        guard found == nil else { return }
        switch judge(rule, final: false) {
        case .drops(let line): found = line
        case .no: break
        case .waits:
            if waiting.count < Self.waitingLimit {
                waiting.append(rule)
            } else {
                incomplete = "more than \(Self.waitingLimit) rules needed a set or a chain read after them"
            }
        }
    }

    /// The sets the waiting rules need, each once.
    public var setsToRead: [NftablesObject] {
        var wanted: [NftablesObject] = []
        for rule in waiting {
            for set in Self.stateLookups(rule) {
                let object = NftablesObject(family: rule.family, table: rule.table, name: set)
                if invalidElements[object] == nil, !wanted.contains(object) { wanted.append(object) }
            }
        }
        return wanted
    }

    /// The sets a rule looks the plain conntrack state up in (not its address sets,
    /// which may hold millions of elements and say nothing of the state).
    static func stateLookups(_ rule: NftablesRule) -> [String] {
        var state = Set<UInt32>()
        var sets: [String] = []
        for expression in rule.expressions {
            switch expression {
            case .loadConntrackState(let register): state.insert(register)
            case .loadConntrack(let register), .bitwise(_, let register, _, _): state.remove(register)
            case .other: state.removeAll()
            case .lookup(let register, let set, _, _) where state.contains(register): sets.append(set)
            default: break
            }
        }
        return sets
    }

    /// What a set read holds for the INVALID key (nil: it does not hold it).
    public mutating func learn(_ set: NftablesObject, invalidElement: NftablesSetElement?) {
        invalidElements[set] = .some(invalidElement)
    }

    public mutating func markIncomplete(_ why: String) {
        if incomplete == nil { incomplete = why }
    }

    /// The rule that drops INVALID packets, judged with everything the dump showed;
    /// nil when there is none (or none could be told, `incomplete` says which).
    public mutating func conclusion() -> String? {
        if found == nil {
            for rule in waiting {
                if case .drops(let line) = judge(rule, final: true) {
                    found = line
                    break
                }
            }
        }
        waiting.removeAll()
        return found
    }

    // MARK: - Judging one rule

    enum Judgement: Equatable {
        case drops(String)
        case no
        /// It may drop: what it needs (a set's elements, a later chain) is not known yet.
        case waits
    }

    /// What a register holds: the state through a mask and an xor (identity when loaded).
    struct HeldState {
        var mask: UInt32 = ~0
        var xor: UInt32 = 0
        func value(_ state: UInt32) -> UInt32 { (state & mask) ^ xor }
        var isPlain: Bool { mask == ~0 && xor == 0 }
    }

    func judge(_ rule: NftablesRule, final: Bool) -> Judgement {
        var held: [UInt32: HeldState] = [:]
        var test: String?
        var waits = false
        for expression in rule.expressions {
            switch expression {
            case .loadConntrackState(let register): held[register] = HeldState()
            case .loadConntrack(let register): held[register] = nil
            case .bitwise(let from, let into, let mask, let xor):
                held[into] = held[from].map { HeldState(mask: $0.mask & mask, xor: ($0.xor & mask) ^ xor) }
            case .compare(let register, let equal, let value):
                guard let state = held[register] else { continue }
                func passes(_ candidate: UInt32) -> Bool { (state.value(candidate) == value) == equal }
                // An INVALID packet goes on past a state test it fails: no drop for it.
                guard passes(Self.invalidState) else { return .no }
                test = test ?? (Self.otherStates.contains(where: passes) ? "ct state (INVALID among the states it matches)" : "ct state invalid")
            case .lookup(let register, let set, let inverted, let verdictMap):
                guard let state = held[register], state.isPlain else { continue }
                let object = NftablesObject(family: rule.family, table: rule.table, name: set)
                guard let known = invalidElements[object] else {
                    if final { return .no }
                    waits = true
                    continue
                }
                if verdictMap {
                    // The map's verdict for INVALID is the rule's; without one, it goes on.
                    guard let verdict = known?.verdict, let line = verdictLine(verdict, rule) else {
                        return waits || (!final && Self.goesToAChain(known?.verdict)) ? .waits : .no
                    }
                    return .drops(place(rule) + "ct state vmap @\(set) (invalid: \(line))")
                }
                guard (known != nil) != inverted else { return .no }
                test = test ?? (inverted ? "ct state != @\(set) (INVALID not in it)" : "ct state @\(set) (holds invalid)")
            case .xtablesMatch(let name, let revision, let info):
                switch Self.xtablesStateTest(name: name, revision: revision, info: info) {
                case .passes(let line)?: test = test ?? line
                case .fails?: return .no
                case nil: break
                }
            case .other:
                // It may load a register (payload, meta): what the registers held is lost.
                held.removeAll()
            case .verdict(let verdict):
                guard test != nil || waits else { return .no }
                guard let line = verdictLine(verdict, rule) else {
                    // The chain it goes to may come later in the dump.
                    return !final && Self.goesToAChain(verdict) ? .waits : .no
                }
                if waits { return .waits }
                return .drops(place(rule) + "\(test!) … \(line)")
            case .reject, .xtablesTarget("REJECT"):
                if waits { return .waits }
                guard let test else { return .no }
                return .drops(place(rule) + "\(test) … reject")
            case .xtablesTarget:
                break
            }
        }
        // A verdict map ends the rule without a verdict expression.
        return waits ? .waits : .no
    }

    func place(_ rule: NftablesRule) -> String {
        "table \(rule.family) \(rule.table), chain \(rule.chain)" + (rule.handle.map { " (handle \($0))" } ?? "") + ": "
    }

    /// The verdict in words, when it drops the packet; nil otherwise (or not known yet).
    func verdictLine(_ verdict: NftablesVerdict, _ rule: NftablesRule) -> String? {
        switch verdict {
        case .drop: return "drop"
        case .jump(let chain), .goto(let chain):
            let word = if case .jump = verdict { "jump" } else { "goto" }
            let object = NftablesObject(family: rule.family, table: rule.table, name: chain)
            let istio = ["istio_drop", "istio-drop"].contains(chain.lowercased())
            return istio || droppingChains.contains(object) ? "\(word) \(chain)" : nil
        default: return nil
        }
    }

    static func goesToAChain(_ verdict: NftablesVerdict?) -> Bool {
        switch verdict {
        case .jump?, .goto?: true
        default: false
        }
    }

    /// A chain's rule that drops whatever reaches it (`-j DROP` alone, `counter drop`):
    /// a jump there is a drop.
    static func dropsEverything(_ rule: NftablesRule) -> Bool {
        for expression in rule.expressions {
            switch expression {
            case .other("counter"), .other("log"), .xtablesTarget("LOG"): continue
            case .verdict(.drop), .reject, .xtablesTarget("REJECT"): return true
            default: return false
            }
        }
        return false
    }

    enum StateTest: Equatable {
        case passes(String)
        case fails
    }

    /// iptables-nft's `-m conntrack --ctstate` and `-m state --state` (since iptables 1.8
    /// an alias of it), run by nft_compat with the xtables structures as they are
    /// (include/uapi/linux/netfilter/xt_conntrack.h, xt_state.h; host order).
    /// - Returns: whether an INVALID packet passes the match's state test, nil when the
    ///   match tests no state.
    static func xtablesStateTest(name: String, revision: UInt32, info: [UInt8]) -> StateTest? {
        switch (name, revision) {
        case ("state", _):
            // struct xt_state_info { unsigned int statemask; }; userspace complements it
            // for `! --state`, which then sets bits no state has.
            guard info.count >= 4 else { return nil }
            let mask = UInt32(info[0]) | UInt32(info[1]) << 8 | UInt32(info[2]) << 16 | UInt32(info[3]) << 24
            guard mask & invalidState != 0 else { return .fails }
            return .passes(mask & ~0x7F != 0 ? "-m state ! --state … (INVALID passes)" : "-m state --state INVALID")
        case ("conntrack", 1...3):
            // Eight 16-byte addresses and masks, expires_min/max, l4proto, four ports:
            // match_flags at 146, invert_flags at 148, state_mask at 150 (a byte in rev 1).
            guard info.count > 151 else { return nil }
            let flags = UInt16(info[146]) | UInt16(info[147]) << 8
            let inverted = UInt16(info[148]) | UInt16(info[149]) << 8
            let stateFlag: UInt16 = 1 << 0  // XT_CONNTRACK_STATE
            let aliasFlag: UInt16 = 1 << 13  // XT_CONNTRACK_STATE_ALIAS: written as -m state
            guard flags & stateFlag != 0 else { return nil }
            let listed = UInt32(info[150]) & invalidState != 0
            let invert = inverted & stateFlag != 0
            guard listed != invert else { return .fails }
            let match = flags & aliasFlag != 0 ? "-m state --state" : "-m conntrack --ctstate"
            return .passes(invert ? "\(match.replacing(" --", with: " ! --")) … (INVALID passes)" : "\(match) INVALID")
        default:
            return nil
        }
    }
}

import Netlink

/// The numbers of nf_tables' netlink interface that ctdoctor speaks
/// (include/uapi/linux/netfilter/nf_tables.h, nf_tables_compat.h, nfnetlink.h).
enum Nft {
    static let subsystem: UInt16 = 10  // NFNL_SUBSYS_NFTABLES
    static let newRule: UInt16 = 6  // NFT_MSG_NEWRULE: what a rule dump answers with
    static let getRule: UInt16 = 7  // NFT_MSG_GETRULE
    static let getSetElements: UInt16 = 13  // NFT_MSG_GETSETELEM
    static func type(_ message: UInt16) -> UInt16 { subsystem << 8 | message }
    /// nfgenmsg: family (NFPROTO_UNSPEC dumps every family), NFNETLINK_V0, res_id.
    static let headerSize = 4

    // enum nft_rule_attributes
    static let ruleTable: UInt16 = 1
    static let ruleChain: UInt16 = 2
    static let ruleHandle: UInt16 = 3
    static let ruleExpressions: UInt16 = 4
    static let listElement: UInt16 = 1  // NFTA_LIST_ELEM
    // enum nft_expr_attributes
    static let expressionName: UInt16 = 1
    static let expressionData: UInt16 = 2
    // enum nft_data_attributes, nft_verdict_attributes
    static let dataValue: UInt16 = 1
    static let dataVerdict: UInt16 = 2
    static let verdictCode: UInt16 = 1
    static let verdictChain: UInt16 = 2
    // enum nft_ct_attributes; NFT_CT_STATE
    static let ctDestination: UInt16 = 1
    static let ctKey: UInt16 = 2
    static let ctKeyState: UInt32 = 0
    // enum nft_bitwise_attributes; NFT_BITWISE_MASK_XOR
    static let bitwiseSource: UInt16 = 1
    static let bitwiseDestination: UInt16 = 2
    static let bitwiseMask: UInt16 = 4
    static let bitwiseXor: UInt16 = 5
    static let bitwiseOperation: UInt16 = 6
    // enum nft_cmp_attributes
    static let compareSource: UInt16 = 1
    static let compareOperation: UInt16 = 2
    static let compareData: UInt16 = 3
    // enum nft_lookup_attributes; NFT_LOOKUP_F_INV
    static let lookupSet: UInt16 = 1
    static let lookupSource: UInt16 = 2
    static let lookupDestination: UInt16 = 3
    static let lookupFlags: UInt16 = 5
    static let lookupInverted: UInt32 = 1
    // enum nft_immediate_attributes; NFT_REG_VERDICT
    static let immediateDestination: UInt16 = 1
    static let immediateData: UInt16 = 2
    static let verdictRegister: UInt32 = 0
    // enum nft_match_attributes (xtables matches run by nft_compat: iptables-nft)
    static let matchName: UInt16 = 1
    static let matchRevision: UInt16 = 2
    static let matchInfo: UInt16 = 3
    // enum nft_set_elem_list_attributes, nft_set_elem_attributes
    static let elementListTable: UInt16 = 1
    static let elementListSet: UInt16 = 2
    static let elementListElements: UInt16 = 3
    static let elementKey: UInt16 = 1
    static let elementData: UInt16 = 2
    static let elementFlags: UInt16 = 3
    static let elementIntervalEnd: UInt32 = 1  // NFT_SET_ELEM_INTERVAL_END
    // enum nft_target_attributes (xtables targets: iptables-nft's REJECT, LOG…)
    static let targetName: UInt16 = 1
}

/// One nf_tables rule as ctdoctor reads it: where it is, and its expressions in order.
public struct NftablesRule: Sendable, Equatable {
    public var family: NftablesFamily
    public var table: String
    public var chain: String
    public var handle: UInt64?
    public var expressions: [NftablesExpression]

    public init(family: NftablesFamily, table: String, chain: String, handle: UInt64?, expressions: [NftablesExpression]) {
        self.family = family
        self.table = table
        self.chain = chain
        self.handle = handle
        self.expressions = expressions
    }
}

/// A table's family (NFPROTO_*), named as `nft` names it.
public struct NftablesFamily: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let inet = Self(rawValue: 1)
    public static let ip = Self(rawValue: 2)
    public static let arp = Self(rawValue: 3)
    public static let netdev = Self(rawValue: 5)
    public static let bridge = Self(rawValue: 7)
    public static let ip6 = Self(rawValue: 10)

    public var description: String {
        switch self {
        case .inet: "inet"
        case .ip: "ip"
        case .arp: "arp"
        case .netdev: "netdev"
        case .bridge: "bridge"
        case .ip6: "ip6"
        default: "family \(rawValue)"
        }
    }
}

/// The expressions whose meaning the INVALID-drop judgement needs; every other one is
/// kept by name only. Registers are nf_tables' numbers (NFT_REG_1…, NFT_REG32_00…).
public enum NftablesExpression: Sendable, Equatable {
    /// `ct load state => reg`.
    case loadConntrackState(into: UInt32)
    /// Any other `ct` key: the register no longer holds the state.
    case loadConntrack(into: UInt32)
    /// `reg = (reg & mask) ^ xor`, mask and xor as 32-bit host-order words (the state's width).
    case bitwise(from: UInt32, into: UInt32, mask: UInt32, xor: UInt32)
    case compare(register: UInt32, equal: Bool, value: UInt32)
    /// `reg @set`, or with `verdictMap` `vmap @set`: the set's element for the key gives
    /// the verdict.
    case lookup(register: UInt32, set: String, inverted: Bool, verdictMap: Bool)
    case verdict(NftablesVerdict)
    /// `reject` (nft) ends the rule with a drop and an answer.
    case reject
    /// An xtables match run by nft_compat, as iptables-nft writes `-m conntrack`/`-m state`.
    case xtablesMatch(name: String, revision: UInt32, info: [UInt8])
    /// An xtables target run by nft_compat (`-j REJECT`, `-j LOG`).
    case xtablesTarget(String)
    case other(String)
}

/// One element of a set or map, as far as a state set needs it: its key when it is one
/// 32-bit word, and the verdict it maps to in a verdict map.
public struct NftablesSetElement: Sendable, Equatable {
    public var key: UInt32?
    public var verdict: NftablesVerdict?
    /// The end of an interval (an interval set's second element), not a key of its own.
    public var endsInterval: Bool

    public init(key: UInt32?, verdict: NftablesVerdict? = nil, endsInterval: Bool = false) {
        self.key = key
        self.verdict = verdict
        self.endsInterval = endsInterval
    }
}

public enum NftablesVerdict: Sendable, Equatable {
    case drop, accept, `return`, `continue`, `break`
    case jump(String)
    case goto(String)
    case other(Int32)
}

/// Builds nf_tables requests and decodes their answers. Pure: bytes in, values out;
/// every length is checked before use (the rules are a tenant's).
public enum NftablesCodec {
    /// A dump of every rule of every table in the namespace.
    public static func ruleDump(sequence: UInt32) -> [UInt8] {
        var builder = NetlinkRequestBuilder(
            type: Nft.type(Nft.getRule), flags: NetlinkConstant.request | NetlinkConstant.dump, sequence: sequence)
        builder.appendBytes([0, 0, 0, 0])
        return builder.finish()
    }

    /// A dump of one set's elements (an anonymous set such as `ct state { invalid, untracked }`).
    public static func setElementDump(family: NftablesFamily, table: String, set: String, sequence: UInt32) -> [UInt8] {
        var builder = NetlinkRequestBuilder(
            type: Nft.type(Nft.getSetElements), flags: NetlinkConstant.request | NetlinkConstant.dump, sequence: sequence)
        builder.appendBytes([family.rawValue, 0, 0, 0])
        builder.attribute(Nft.elementListTable, Array(table.utf8) + [0])
        builder.attribute(Nft.elementListSet, Array(set.utf8) + [0])
        return builder.finish()
    }

    /// Whether `message` is a rule (NFT_MSG_NEWRULE, as dumps answer).
    public static func isRule(_ message: NetlinkMessage) -> Bool { message.type == Nft.type(Nft.newRule) }

    public static func decodeRule(_ bytes: [UInt8], _ message: NetlinkMessage) throws(NetlinkFramingError) -> NftablesRule {
        let payload = message.payload
        guard payload.count >= Nft.headerSize else {
            throw NetlinkFramingError(offset: payload.lowerBound, reason: "nf_tables message shorter than its header")
        }
        var rule = NftablesRule(family: NftablesFamily(rawValue: bytes[payload.lowerBound]), table: "", chain: "", handle: nil, expressions: [])
        var attributes = NetlinkAttributeReader(bytes, range: (payload.lowerBound + Nft.headerSize)..<payload.upperBound)
        while let attribute = try attributes.next() {
            switch attribute.type {
            case Nft.ruleTable: rule.table = string(bytes, attribute.value)
            case Nft.ruleChain: rule.chain = string(bytes, attribute.value)
            case Nft.ruleHandle where attribute.value.count == 8: rule.handle = bytes.uint64BE(at: attribute.value.lowerBound)
            case Nft.ruleExpressions:
                var elements = NetlinkAttributeReader(bytes, range: attribute.value)
                while let element = try elements.next() {
                    guard element.type == Nft.listElement else { continue }
                    rule.expressions.append(try expression(bytes, element.value))
                }
            default: break
            }
        }
        return rule
    }

    /// Every rule in recorded dump replies (datagrams back to back, as the benchmark's
    /// `capture nftables` writes them): for fixtures and the fuzzer.
    public static func decodeRules(_ bytes: [UInt8]) throws(NetlinkFramingError) -> [NftablesRule] {
        var reader = NetlinkMessageReader(bytes, count: bytes.count)
        var rules: [NftablesRule] = []
        while let message = try reader.next() {
            guard isRule(message) else { continue }
            rules.append(try decodeRule(bytes, message))
        }
        return rules
    }

    /// The elements in one message of a set-element dump.
    public static func decodeElements(_ bytes: [UInt8], _ message: NetlinkMessage) throws(NetlinkFramingError) -> [NftablesSetElement] {
        let payload = message.payload
        guard payload.count >= Nft.headerSize else { return [] }
        var decoded: [NftablesSetElement] = []
        var attributes = NetlinkAttributeReader(bytes, range: (payload.lowerBound + Nft.headerSize)..<payload.upperBound)
        while let attribute = try attributes.next() {
            guard attribute.type == Nft.elementListElements else { continue }
            var elements = NetlinkAttributeReader(bytes, range: attribute.value)
            while let element = try elements.next() {
                guard element.type == Nft.listElement else { continue }
                var one = NftablesSetElement(key: nil)
                var fields = NetlinkAttributeReader(bytes, range: element.value)
                while let field = try fields.next() {
                    switch field.type {
                    case Nft.elementKey: one.key = try dataWord(bytes, field.value)
                    case Nft.elementData: one.verdict = try verdict(bytes, field.value)
                    case Nft.elementFlags where field.value.count == 4:
                        one.endsInterval = bytes.uint32BE(at: field.value.lowerBound) & Nft.elementIntervalEnd != 0
                    default: break
                    }
                }
                decoded.append(one)
            }
        }
        return decoded
    }

    static func expression(_ bytes: [UInt8], _ range: Range<Int>) throws(NetlinkFramingError) -> NftablesExpression {
        var name = ""
        var data: Range<Int> = range.upperBound..<range.upperBound
        var attributes = NetlinkAttributeReader(bytes, range: range)
        while let attribute = try attributes.next() {
            switch attribute.type {
            case Nft.expressionName: name = string(bytes, attribute.value)
            case Nft.expressionData: data = attribute.value
            default: break
            }
        }
        var fields: [UInt16: Range<Int>] = [:]
        var reader = NetlinkAttributeReader(bytes, range: data)
        while let attribute = try reader.next() { fields[attribute.type] = attribute.value }
        func number(_ type: UInt16) -> UInt32? {
            guard let value = fields[type], value.count == 4 else { return nil }
            return bytes.uint32BE(at: value.lowerBound)
        }
        switch name {
        case "ct":
            guard let register = number(Nft.ctDestination), let key = number(Nft.ctKey) else { return .other(name) }
            return key == Nft.ctKeyState ? .loadConntrackState(into: register) : .loadConntrack(into: register)
        case "bitwise":
            // Only the mask-and-xor form (NFT_BITWISE_MASK_XOR, the default when absent).
            guard let from = number(Nft.bitwiseSource), let into = number(Nft.bitwiseDestination), (number(Nft.bitwiseOperation) ?? 0) == 0,
                let mask = try fields[Nft.bitwiseMask].flatMap({ range throws(NetlinkFramingError) in try dataWord(bytes, range) }),
                let xor = try fields[Nft.bitwiseXor].flatMap({ range throws(NetlinkFramingError) in try dataWord(bytes, range) })
            else { return .other(name) }
            return .bitwise(from: from, into: into, mask: mask, xor: xor)
        case "cmp":
            guard let register = number(Nft.compareSource), let operation = number(Nft.compareOperation), operation <= 1,
                let value = try fields[Nft.compareData].flatMap({ range throws(NetlinkFramingError) in try dataWord(bytes, range) })
            else { return .other(name) }
            return .compare(register: register, equal: operation == 0, value: value)
        case "lookup":
            guard let set = fields[Nft.lookupSet].map({ string(bytes, $0) }), let register = number(Nft.lookupSource) else { return .other(name) }
            // A data map (`ct state map { … }`) loads a register: not a test of its own here.
            if let destination = number(Nft.lookupDestination), destination != Nft.verdictRegister { return .other(name) }
            return .lookup(
                register: register, set: set, inverted: (number(Nft.lookupFlags) ?? 0) & Nft.lookupInverted != 0,
                verdictMap: number(Nft.lookupDestination) == Nft.verdictRegister)
        case "reject":
            return .reject
        case "target":
            return fields[Nft.targetName].map { .xtablesTarget(string(bytes, $0)) } ?? .other(name)
        case "immediate":
            guard number(Nft.immediateDestination) == Nft.verdictRegister, let data = fields[Nft.immediateData] else { return .other(name) }
            return try verdict(bytes, data).map { .verdict($0) } ?? .other(name)
        case "match":
            guard let matchName = fields[Nft.matchName].map({ string(bytes, $0) }), let revision = number(Nft.matchRevision) else { return .other(name) }
            return .xtablesMatch(name: matchName, revision: revision, info: fields[Nft.matchInfo].map { Array(bytes[$0]) } ?? [])
        default:
            return .other(name)
        }
    }

    /// NFTA_IMMEDIATE_DATA / NFTA_DATA_VERDICT / code and chain.
    static func verdict(_ bytes: [UInt8], _ range: Range<Int>) throws(NetlinkFramingError) -> NftablesVerdict? {
        var outer = NetlinkAttributeReader(bytes, range: range)
        while let data = try outer.next() {
            guard data.type == Nft.dataVerdict else { continue }
            var code: Int32?
            var chain = ""
            var inner = NetlinkAttributeReader(bytes, range: data.value)
            while let field = try inner.next() {
                if field.type == Nft.verdictCode, field.value.count == 4 { code = Int32(bitPattern: bytes.uint32BE(at: field.value.lowerBound)) }
                if field.type == Nft.verdictChain { chain = string(bytes, field.value) }
            }
            guard let code else { return nil }
            return switch code {
            case 0: .drop  // NF_DROP
            case 1: .accept  // NF_ACCEPT
            case -1: .continue
            case -2: .break
            case -3: .jump(chain)
            case -4: .goto(chain)
            case -5: .return
            default: .other(code)
            }
        }
        return nil
    }

    /// A nested nft_data holding a 4-byte value (NFTA_DATA_VALUE); nil for any other width.
    static func dataWord(_ bytes: [UInt8], _ range: Range<Int>) throws(NetlinkFramingError) -> UInt32? {
        var reader = NetlinkAttributeReader(bytes, range: range)
        while let attribute = try reader.next() {
            guard attribute.type == Nft.dataValue else { continue }
            return word(bytes, attribute.value)
        }
        return nil
    }

    /// Registers hold host-order words: little-endian on every machine ctdoctor is built for.
    static func word(_ bytes: [UInt8], _ range: Range<Int>) -> UInt32? {
        range.count == 4 ? bytes.uint32LE(at: range.lowerBound) : nil
    }

    /// An NLA_STRING: up to its first NUL, control characters kept for the caller to escape.
    static func string(_ bytes: [UInt8], _ range: Range<Int>) -> String {
        let end = bytes[range].firstIndex(of: 0) ?? range.upperBound
        return String(decoding: bytes[range.lowerBound..<end], as: UTF8.self)
    }
}

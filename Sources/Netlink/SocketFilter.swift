/// A classic BPF socket filter (struct sock_filter[], attached with SO_ATTACH_FILTER): the
/// kernel runs it on each datagram before queueing it, so what it refuses never wakes the
/// reader, takes room in its receive buffer or costs it a copy and a decode.
///
/// Written by hand because no kept Swift package assembles cBPF, and a netlink filter needs
/// only the handful of instructions below. Jumps name a target instead of an offset: the
/// program resolves them when it is finished, so an added test cannot silently shift a
/// jump onto the wrong instruction. cBPF jumps only forward, so a label must be placed
/// after every jump to it.
public struct SocketFilterProgram: Sendable, Equatable {
    /// One instruction as the kernel reads it (include/uapi/linux/filter.h).
    public struct Instruction: Sendable, Hashable {
        public var code: UInt16
        public var jumpIfTrue: UInt8
        public var jumpIfFalse: UInt8
        public var constant: UInt32
    }

    /// Where a jump leads: one of the two verdicts (placed at the end), or a label.
    public enum Target: Sendable, Hashable {
        case accept, reject
        case label(String)
    }

    /// A word of the filter's scratch memory (cBPF has 16), to keep a value across loads.
    public struct Slot: Sendable, Hashable {
        public let index: UInt32
        public init(_ index: UInt32) {
            precondition(index < 16, "cBPF has 16 scratch words")
            self.index = index
        }
    }

    public private(set) var instructions: [Instruction] = []
    /// Conditional jumps waiting for their targets' positions.
    private var pending: [(index: Int, whenTrue: Target?, whenFalse: Target?)] = []
    private var labels: [String: Int] = [:]

    public init() {}

    // Opcodes (BPF_CLASS | BPF_SIZE | BPF_MODE, from include/uapi/linux/bpf_common.h).
    static let loadImmediate: UInt16 = 0x00  // BPF_LD | BPF_W | BPF_IMM
    static let loadAbsoluteWord: UInt16 = 0x20  // BPF_LD | BPF_W | BPF_ABS
    static let loadAbsoluteByte: UInt16 = 0x30  // BPF_LD | BPF_B | BPF_ABS
    static let loadIndexedHalf: UInt16 = 0x48  // BPF_LD | BPF_H | BPF_IND
    static let loadIndexedByte: UInt16 = 0x50  // BPF_LD | BPF_B | BPF_IND
    static let loadMemory: UInt16 = 0x60  // BPF_LD | BPF_MEM
    static let loadIndexImmediate: UInt16 = 0x01  // BPF_LDX | BPF_W | BPF_IMM
    static let store: UInt16 = 0x02  // BPF_ST
    static let jumpIfEqual: UInt16 = 0x15  // BPF_JMP | BPF_JEQ | BPF_K
    static let jumpIfAnyBit: UInt16 = 0x45  // BPF_JMP | BPF_JSET | BPF_K
    static let moveToIndex: UInt16 = 0x07  // BPF_MISC | BPF_TAX
    static let returnConstant: UInt16 = 0x06  // BPF_RET | BPF_K

    /// Ancillary loads (SKF_AD_OFF + SKF_AD_NLATTR, + SKF_AD_NLATTR_NEST): A becomes the
    /// offset of the first attribute of type X, searched from offset A in the datagram or
    /// inside the nested attribute at offset A; 0 when there is none.
    static let findAttribute: UInt32 = 0xFFFF_F000 &+ 12
    static let findNestedAttribute: UInt32 = 0xFFFF_F000 &+ 16

    /// The most a jump can skip: jt and jf are one byte.
    public static let longestJump = 255

    mutating func append(_ code: UInt16, _ constant: UInt32 = 0) {
        instructions.append(Instruction(code: code, jumpIfTrue: 0, jumpIfFalse: 0, constant: constant))
    }

    /// A = the offset of attribute `type`, searched from the offset in A (netlink
    /// attributes: nla_find); to `missing` when there is none.
    public mutating func findAttribute(_ type: UInt16, nested: Bool, else missing: Target) {
        append(Self.loadIndexImmediate, UInt32(type))
        append(Self.loadAbsoluteWord, nested ? Self.findNestedAttribute : Self.findAttribute)
        jump(ifEqualTo: 0, then: missing, else: nil)
    }

    public mutating func loadConstant(_ value: UInt32) { append(Self.loadImmediate, value) }
    /// A = the byte at `offset` in the datagram.
    public mutating func loadByte(at offset: UInt32) { append(Self.loadAbsoluteByte, offset) }
    public mutating func store(in slot: Slot) { append(Self.store, slot.index) }
    public mutating func load(from slot: Slot) { append(Self.loadMemory, slot.index) }

    /// A = the attribute's payload at the offset in A (just past its 4-byte header), read
    /// as one byte or as a big-endian 16-bit value, as netlink carries ports.
    public mutating func loadPayload(bytes: Int) {
        precondition(bytes == 1 || bytes == 2, "a payload of one or two bytes")
        append(Self.moveToIndex)
        append(bytes == 1 ? Self.loadIndexedByte : Self.loadIndexedHalf, 4)
    }

    /// If A equals `value`, to `then`, else to `otherwise` (nil: the next instruction).
    public mutating func jump(ifEqualTo value: UInt32, then: Target?, else otherwise: Target?) {
        pending.append((instructions.count, then, otherwise))
        append(Self.jumpIfEqual, value)
    }

    /// If A has any of `bits` set, to `then`, else to `otherwise` (nil: the next instruction).
    public mutating func jump(ifAnyOf bits: UInt32, then: Target?, else otherwise: Target?) {
        pending.append((instructions.count, then, otherwise))
        append(Self.jumpIfAnyBit, bits)
    }

    /// Places `name` at the next instruction.
    public mutating func mark(_ name: String) {
        precondition(labels[name] == nil, "label \(name) placed twice")
        labels[name] = instructions.count
    }

    /// The program with its two verdicts at the end (accept: the whole datagram), or nil
    /// when a jump would be longer than cBPF can encode.
    public func finished() -> SocketFilterProgram? {
        var program = self
        let reject = program.instructions.count
        program.append(Self.returnConstant, 0)
        program.append(Self.returnConstant, UInt32.max)
        for (index, whenTrue, whenFalse) in pending {
            func offset(_ target: Target?) -> UInt8? {
                let position: Int
                switch target {
                case nil: return 0
                case .reject: position = reject
                case .accept: position = reject + 1
                case .label(let name):
                    guard let placed = labels[name] else { preconditionFailure("label \(name) never placed") }
                    position = placed
                }
                let distance = position - index - 1
                precondition(distance >= 0, "cBPF jumps only forward")
                return distance <= Self.longestJump ? UInt8(distance) : nil
            }
            guard let onTrue = offset(whenTrue), let onFalse = offset(whenFalse) else { return nil }
            program.instructions[index].jumpIfTrue = onTrue
            program.instructions[index].jumpIfFalse = onFalse
        }
        program.pending = []
        program.labels = [:]
        return program
    }

    public static func == (lhs: SocketFilterProgram, rhs: SocketFilterProgram) -> Bool {
        lhs.instructions == rhs.instructions
    }
}

/// Netlink framing constants, from include/uapi/linux/netlink.h. Each keeps its C name.
public enum NetlinkConstant {
    public static let headerSize = 16  // NLMSG_HDRLEN
    public static let attributeHeaderSize = 4  // NLA_HDRLEN

    public static let noop: UInt16 = 1  // NLMSG_NOOP
    public static let error: UInt16 = 2  // NLMSG_ERROR
    public static let done: UInt16 = 3  // NLMSG_DONE
    public static let overrun: UInt16 = 4  // NLMSG_OVERRUN

    public static let request: UInt16 = 0x1  // NLM_F_REQUEST
    public static let multi: UInt16 = 0x2  // NLM_F_MULTI
    public static let ack: UInt16 = 0x4  // NLM_F_ACK
    /// Set on dump messages when the table changed while the dump ran.
    public static let dumpInterrupted: UInt16 = 0x10  // NLM_F_DUMP_INTR
    public static let dump: UInt16 = 0x300  // NLM_F_ROOT | NLM_F_MATCH
    public static let create: UInt16 = 0x400  // NLM_F_CREATE
    public static let exclusive: UInt16 = 0x200  // NLM_F_EXCL

    public static let attributeNested: UInt16 = 0x8000  // NLA_F_NESTED
    public static let attributeNetByteOrder: UInt16 = 0x4000  // NLA_F_NET_BYTEORDER
    public static let attributeTypeMask: UInt16 = 0x3FFF  // NLA_TYPE_MASK
}

/// Rounds a length up to netlink's 4-byte alignment (NLMSG_ALIGN / NLA_ALIGN).
@inlinable
public func netlinkAligned(_ length: Int) -> Int { (length + 3) & ~3 }

// MARK: - Reading integers out of kernel bytes

extension Array where Element == UInt8 {
    @inlinable
    public func uint16LE(at offset: Int) -> UInt16 {
        UInt16(self[offset]) | UInt16(self[offset + 1]) << 8
    }

    @inlinable
    public func uint16BE(at offset: Int) -> UInt16 {
        UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }

    @inlinable
    public func uint32LE(at offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16
            | UInt32(self[offset + 3]) << 24
    }

    @inlinable
    public func uint32BE(at offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8
            | UInt32(self[offset + 3])
    }

    @inlinable
    public func uint64LE(at offset: Int) -> UInt64 {
        UInt64(uint32LE(at: offset)) | UInt64(uint32LE(at: offset + 4)) << 32
    }

    @inlinable
    public func uint64BE(at offset: Int) -> UInt64 {
        UInt64(uint32BE(at: offset)) << 32 | UInt64(uint32BE(at: offset + 4))
    }
}

// MARK: - Messages

/// One netlink message inside a receive buffer: its header fields and where its payload
/// lies. It holds offsets, not bytes, so walking a buffer allocates nothing.
public struct NetlinkMessage: Sendable, Equatable {
    public var type: UInt16
    public var flags: UInt16
    public var sequence: UInt32
    public var portID: UInt32
    /// The bytes after the 16-byte header, within the buffer the message came from.
    public var payload: Range<Int>

    @inlinable
    public init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32, payload: Range<Int>) {
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
        self.payload = payload
    }

    /// Netlink subsystem messages carry (subsystem << 8 | command) in `type`.
    @inlinable public var subsystem: UInt8 { UInt8(truncatingIfNeeded: type >> 8) }
    @inlinable public var command: UInt8 { UInt8(truncatingIfNeeded: type) }
}

/// Input that does not follow netlink's framing: a length that overruns the buffer, an
/// attribute shorter than its header. Raised instead of reading out of bounds.
public struct NetlinkFramingError: Error, Sendable, CustomStringConvertible, Equatable {
    public var offset: Int
    public var reason: String

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "malformed netlink data at byte \(offset): \(reason)" }
}

/// Walks the messages of one receive buffer, validating each length before use.
public struct NetlinkMessageReader {
    public let bytes: [UInt8]
    private var offset: Int
    private let end: Int

    public init(_ bytes: [UInt8], count: Int) {
        self.init(bytes, range: 0..<count)
    }

    /// Reads the messages of one datagram that sits at `range` in a larger buffer (a
    /// slot of a batched receive); the messages' offsets stay relative to `bytes`.
    public init(_ bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.offset = range.lowerBound
        self.end = Swift.min(range.upperBound, bytes.count)
    }

    /// The next message, nil at the end of the buffer.
    @inlinable
    public mutating func next() throws(NetlinkFramingError) -> NetlinkMessage? {
        try nextMessage()
    }

    @usableFromInline
    mutating func nextMessage() throws(NetlinkFramingError) -> NetlinkMessage? {
        guard end - offset >= NetlinkConstant.headerSize else {
            if offset < end {
                throw NetlinkFramingError(offset: offset, reason: "\(end - offset) trailing bytes, less than a header")
            }
            return nil
        }
        let length = Int(bytes.uint32LE(at: offset))
        guard length >= NetlinkConstant.headerSize, length <= end - offset else {
            throw NetlinkFramingError(
                offset: offset, reason: "message length \(length) outside 16...\(end - offset)")
        }
        let message = NetlinkMessage(
            type: bytes.uint16LE(at: offset + 4),
            flags: bytes.uint16LE(at: offset + 6),
            sequence: bytes.uint32LE(at: offset + 8),
            portID: bytes.uint32LE(at: offset + 12),
            payload: (offset + NetlinkConstant.headerSize)..<(offset + length)
        )
        offset += Swift.min(netlinkAligned(length), end - offset)
        return message
    }
}

// MARK: - Attributes

/// One attribute: its type (flags masked off), whether it is nested, and its value bytes.
public struct NetlinkAttribute: Sendable, Equatable {
    public var type: UInt16
    public var isNested: Bool
    public var value: Range<Int>

    @inlinable
    public init(type: UInt16, isNested: Bool, value: Range<Int>) {
        self.type = type
        self.isNested = isNested
        self.value = value
    }
}

/// Walks the attributes in a byte range (a message payload after its fixed header, or
/// the value of a nested attribute).
public struct NetlinkAttributeReader {
    @usableFromInline let bytes: [UInt8]
    @usableFromInline var offset: Int
    @usableFromInline let end: Int

    @inlinable
    public init(_ bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.offset = range.lowerBound
        self.end = range.upperBound
    }

    @inlinable
    public mutating func next() throws(NetlinkFramingError) -> NetlinkAttribute? {
        guard end - offset >= NetlinkConstant.attributeHeaderSize else {
            // Fewer than 4 trailing bytes are padding the kernel may leave; ignore them.
            return nil
        }
        let length = Int(bytes.uint16LE(at: offset))
        let rawType = bytes.uint16LE(at: offset + 2)
        guard length >= NetlinkConstant.attributeHeaderSize, length <= end - offset else {
            throw NetlinkFramingError(
                offset: offset, reason: "attribute length \(length) outside 4...\(end - offset)")
        }
        let attribute = NetlinkAttribute(
            type: rawType & NetlinkConstant.attributeTypeMask,
            isNested: rawType & NetlinkConstant.attributeNested != 0,
            value: (offset + NetlinkConstant.attributeHeaderSize)..<(offset + length)
        )
        offset += Swift.min(netlinkAligned(length), end - offset)
        return attribute
    }
}

// MARK: - Building requests

/// Encodes one netlink request message. Integers in headers are host (little-endian)
/// order; attribute values use whichever order the subsystem wants, so the caller says.
public struct NetlinkRequestBuilder: Sendable {
    public private(set) var bytes: [UInt8]
    private var nestStarts: [Int] = []

    /// Starts a message with its header; the length is filled in by `finish()`.
    public init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32 = 0) {
        bytes = []
        bytes.reserveCapacity(128)
        appendLE(UInt32(0))
        appendLE(type)
        appendLE(flags)
        appendLE(sequence)
        appendLE(portID)
    }

    public mutating func appendBytes(_ raw: some Sequence<UInt8>) {
        bytes.append(contentsOf: raw)
    }

    public mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        for index in 0..<(T.bitWidth / 8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index)))
        }
    }

    public mutating func appendBE<T: FixedWidthInteger>(_ value: T) {
        for index in (0..<(T.bitWidth / 8)).reversed() {
            bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index)))
        }
    }

    public mutating func padToAlignment() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    /// Adds an attribute whose value is `value`'s bytes.
    public mutating func attribute(_ type: UInt16, _ value: some Collection<UInt8>) {
        appendLE(UInt16(NetlinkConstant.attributeHeaderSize + value.count))
        appendLE(type)
        bytes.append(contentsOf: value)
        padToAlignment()
    }

    public mutating func attributeBE<T: FixedWidthInteger>(_ type: UInt16, _ value: T) {
        appendLE(UInt16(NetlinkConstant.attributeHeaderSize + T.bitWidth / 8))
        appendLE(type)
        appendBE(value)
        padToAlignment()
    }

    public mutating func attributeLE<T: FixedWidthInteger>(_ type: UInt16, _ value: T) {
        appendLE(UInt16(NetlinkConstant.attributeHeaderSize + T.bitWidth / 8))
        appendLE(type)
        appendLE(value)
        padToAlignment()
    }

    /// Opens a nested attribute; close it with `endNested()`.
    public mutating func beginNested(_ type: UInt16) {
        nestStarts.append(bytes.count)
        appendLE(UInt16(0))
        appendLE(type | NetlinkConstant.attributeNested)
    }

    public mutating func endNested() {
        let start = nestStarts.removeLast()
        let length = UInt16(bytes.count - start)
        bytes[start] = UInt8(truncatingIfNeeded: length)
        bytes[start + 1] = UInt8(truncatingIfNeeded: length >> 8)
    }

    /// The finished message with its length written into the header.
    public func finish() -> [UInt8] {
        precondition(nestStarts.isEmpty, "unclosed nested attribute")
        var out = bytes
        let length = UInt32(out.count)
        for index in 0..<4 { out[index] = UInt8(truncatingIfNeeded: length >> (8 * index)) }
        return out
    }
}

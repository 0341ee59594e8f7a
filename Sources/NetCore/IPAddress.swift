/// The address families ctdoctor reads. Raw values are the kernel's `AF_*` numbers.
public enum AddressFamily: UInt8, Sendable, Hashable, CaseIterable {
    case ipv4 = 2  // AF_INET
    case ipv6 = 10  // AF_INET6

    /// The name used in JSON output and in conntrack's extended format.
    public var name: String {
        switch self {
        case .ipv4: "ipv4"
        case .ipv6: "ipv6"
        }
    }
}

/// An IPv4 or IPv6 address held as numbers, so comparing and hashing never touch strings.
///
/// IPv4 is the address as a big-endian number (127.0.0.1 is 0x7F00_0001); IPv6 is the
/// 128-bit address split into its high and low 64 bits, also big-endian.
public enum IPAddress: Sendable, Hashable, Comparable {
    case v4(UInt32)
    case v6(high: UInt64, low: UInt64)

    public static let loopbackV4 = IPAddress.v4(0x7F00_0001)
    public static let loopbackV6 = IPAddress.v6(high: 0, low: 1)

    public var family: AddressFamily {
        switch self {
        case .v4: .ipv4
        case .v6: .ipv6
        }
    }

    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value):
            return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32($0))) }
        case .v6(let high, let low):
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
        }
    }

    /// Builds an address from network-order bytes; nil unless there are exactly 4 or 16.
    public init?(networkBytes bytes: some Collection<UInt8>) {
        var iterator = bytes.makeIterator()
        switch bytes.count {
        case 4:
            var value: UInt32 = 0
            while let byte = iterator.next() { value = value << 8 | UInt32(byte) }
            self = .v4(value)
        case 16:
            var high: UInt64 = 0
            var low: UInt64 = 0
            for _ in 0..<8 { high = high << 8 | UInt64(iterator.next()!) }
            for _ in 0..<8 { low = low << 8 | UInt64(iterator.next()!) }
            self = .v6(high: high, low: low)
        default:
            return nil
        }
    }

    /// True for addresses in 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104.
    public var isLoopback: Bool {
        switch self {
        case .v4(let value): value >> 24 == 127
        case .v6(let high, let low):
            high == 0 && (low == 1 || low >> 24 == 0xFFFF_7F)
        }
    }

    /// 169.254.0.0/16 and fe80::/10: an interface's own, never a pod's address.
    public var isLinkLocal: Bool {
        switch self {
        case .v4(let value): value >> 16 == 0xA9FE
        case .v6(let high, _): high >> 54 == 0x3FA
        }
    }

    /// 0.0.0.0 or ::, what a listener bound to every address shows.
    public var isUnspecified: Bool {
        switch self {
        case .v4(let value): value == 0
        case .v6(let high, let low): high == 0 && low == 0
        }
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (::ffff:a.b.c.d), if it is one.
    public var unmappedV4: IPAddress? {
        if case .v6(0, let low) = self, low >> 32 == 0xFFFF {
            return .v4(UInt32(truncatingIfNeeded: low))
        }
        return nil
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): a < b
        case (.v4, .v6): true
        case (.v6, .v4): false
        case (.v6(let ah, let al), .v6(let bh, let bl)): (ah, al) < (bh, bl)
        }
    }
}

extension IPAddress: CustomStringConvertible {
    /// Dotted quad for IPv4; RFC 5952 text for IPv6, as inet_ntop(3) writes it.
    public var description: String {
        var out: [UInt8] = []
        out.reserveCapacity(39)
        appendText(to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the address text to a byte buffer without creating a String.
    @inlinable
    public func appendText(to out: inout [UInt8]) {
        out.append(addingCapacity: 45) { writeText(to: &$0) }
    }

    /// Writes the address text into a span (at most 45 bytes).
    @inlinable
    public func writeText(to out: inout OutputSpan<UInt8>) {
        switch self {
        case .v4(let value):
            for shift in stride(from: 24, through: 0, by: -8) {
                let octet = UInt8(truncatingIfNeeded: value >> UInt32(shift))
                if octet >= 100 { out.append(0x30 + octet / 100) }
                if octet >= 10 { out.append(0x30 + (octet / 10) % 10) }
                out.append(0x30 + octet % 10)
                if shift != 0 { out.append(UInt8(ascii: ".")) }
            }
        case .v6(let high, let low):
            for byte in Self.v6Text(high: high, low: low) { out.append(byte) }
        }
    }

    /// RFC 5952 text of an IPv6 address, as inet_ntop(3) writes it.
    @usableFromInline
    static func v6Text(high: UInt64, low: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(45)
        var groups = [UInt16](repeating: 0, count: 8)
        for index in 0..<4 {
            groups[index] = UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64(index)))
            groups[index + 4] = UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64(index)))
        }
        // inet_ntop writes ::ffff:a.b.c.d for IPv4-mapped and ::a.b.c.d for the deprecated
        // IPv4-compatible form (but not for :: and ::1).
        let embedsV4 =
            high == 0
            && (low >> 32 == 0xFFFF || (low >> 32 == 0 && low > 0xFFFF))
        // The longest run of two or more zero groups becomes "::" (RFC 5952 §4.2); the
        // first such run wins a tie.
        var bestStart = -1
        var bestLength = 1
        var runStart = -1
        let textGroups = embedsV4 ? 6 : 8
        for index in 0...textGroups {
            if index < textGroups && groups[index] == 0 {
                if runStart < 0 { runStart = index }
            } else if runStart >= 0 {
                if index - runStart > bestLength {
                    bestStart = runStart
                    bestLength = index - runStart
                }
                runStart = -1
            }
        }
        var index = 0
        while index < textGroups {
            if index == bestStart {
                out.append(UInt8(ascii: ":"))
                if index == 0 { out.append(UInt8(ascii: ":")) }
                index += bestLength
                continue
            }
            appendHexGroup(groups[index], to: &out)
            if index < 7 { out.append(UInt8(ascii: ":")) }
            index += 1
        }
        if embedsV4 {
            IPAddress.v4(UInt32(truncatingIfNeeded: low)).appendText(to: &out)
        }
        return out
    }

    @usableFromInline
    static func appendHexGroup(_ group: UInt16, to out: inout [UInt8]) {
        var started = false
        for shift in stride(from: 12, through: 0, by: -4) {
            let nibble = UInt8(truncatingIfNeeded: group >> UInt16(shift)) & 0xF
            if nibble != 0 || started || shift == 0 {
                started = true
                out.append(nibble < 10 ? 0x30 + nibble : 0x57 + nibble)
            }
        }
    }
}

extension IPAddress {
    /// Parses dotted-quad IPv4 or IPv6 text in any form the tools print: compressed
    /// (`::1`, `fe80::1`), full (`0000:0000:...:0001`, as /proc/net/nf_conntrack writes
    /// it) and with an embedded IPv4 tail (`::ffff:10.0.0.1`). A zone suffix is refused.
    public init?(_ text: some StringProtocol) {
        self.init(utf8: Array(text.utf8)[...])
    }

    /// The byte-level parser behind `init?(_:)`, for scanners that hold bytes already.
    public init?(utf8 text: ArraySlice<UInt8>) {
        if let v4 = Self.parseV4(text) {
            self = .v4(v4)
        } else if let (high, low) = Self.parseV6(text) {
            self = .v6(high: high, low: low)
        } else {
            return nil
        }
    }

    static func parseV4(_ text: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var current: UInt32 = 0
        var digits = 0
        for byte in text {
            if byte >= 0x30 && byte <= 0x39 {
                current = current * 10 + UInt32(byte - 0x30)
                digits += 1
                if digits > 3 || current > 255 { return nil }
            } else if byte == UInt8(ascii: ".") {
                if digits == 0 || octets == 3 { return nil }
                value = value << 8 | current
                octets += 1
                current = 0
                digits = 0
            } else {
                return nil
            }
        }
        guard octets == 3, digits > 0 else { return nil }
        return value << 8 | current
    }

    static func parseV6(_ text: ArraySlice<UInt8>) -> (UInt64, UInt64)? {
        guard text.count >= 2, text.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        var index = text.startIndex
        if text[index] == UInt8(ascii: ":") {
            guard text[index + 1] == UInt8(ascii: ":") else { return nil }
            sawGap = true
            index += 2
        }
        while index < text.endIndex {
            // A group holding a dot is an embedded IPv4 tail, and must be the last one.
            let rest = text[index...]
            let segment = rest.prefix { $0 != UInt8(ascii: ":") }
            if segment.contains(UInt8(ascii: ".")) {
                guard segment.count == rest.count, let v4 = parseV4(rest) else { return nil }
                let groups = [UInt16(v4 >> 16), UInt16(v4 & 0xFFFF)]
                if sawGap { tail += groups } else { head += groups }
                index = text.endIndex
                break
            }
            var group: UInt32 = 0
            var digits = 0
            while index < text.endIndex, let nibble = hexValue(text[index]) {
                group = group << 4 | UInt32(nibble)
                digits += 1
                index += 1
            }
            guard digits > 0, digits <= 4 else { return nil }
            if sawGap { tail.append(UInt16(group)) } else { head.append(UInt16(group)) }
            if index == text.endIndex { break }
            guard text[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            if index < text.endIndex, text[index] == UInt8(ascii: ":") {
                guard !sawGap else { return nil }
                sawGap = true
                index += 1
            } else if index == text.endIndex {
                return nil
            }
        }
        let count = head.count + tail.count
        if sawGap {
            guard count <= 7 else { return nil }
        } else {
            guard count == 8 else { return nil }
        }
        let groups = head + [UInt16](repeating: 0, count: 8 - count) + tail
        var high: UInt64 = 0
        var low: UInt64 = 0
        for group in groups[0..<4] { high = high << 16 | UInt64(group) }
        for group in groups[4..<8] { low = low << 16 | UInt64(group) }
        return (high, low)
    }
}

/// The value of one ASCII hex digit, or nil.
@inlinable
public func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case 0x30...0x39: byte &- 0x30
    case 0x41...0x46: byte &- 0x37
    case 0x61...0x66: byte &- 0x57
    default: nil
    }
}

/// An address and a port: one end of a connection.
public struct Endpoint: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(_ address: IPAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }

    /// The endpoint with an IPv4-mapped address (`::ffff:10.0.0.5`, as a dual-stack
    /// socket reports an IPv4 peer) as plain IPv4, the way conntrack tracks that flow.
    public var unmapped: Endpoint { Endpoint(address.unmappedV4 ?? address, port) }

    /// `10.0.0.1:80` or `[::1]:80`, as ss(8) prints endpoints.
    public var description: String {
        switch address {
        case .v4: "\(address):\(port)"
        case .v6: "[\(address)]:\(port)"
        }
    }

    public static func < (lhs: Endpoint, rhs: Endpoint) -> Bool {
        (lhs.address, lhs.port) < (rhs.address, rhs.port)
    }
}

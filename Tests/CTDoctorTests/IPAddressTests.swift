import NetCore
import Testing

@Suite("IP addresses")
struct IPAddressTests {
    /// Input text, then the text inet_ntop(3) would print for it.
    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("::1", "::1"),
        ("::", "::"),
        ("fe80::1", "fe80::1"),
        ("fd00:0000:0000:0000:0000:0000:0000:0005", "fd00::5"),  // /proc/net/nf_conntrack form
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  // first of two equal runs wins
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  // a single zero group stays
        ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),  // the longest run wins
        ("1::", "1::"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),  // IPv4-mapped keeps the dotted tail
        ("::ffff:0a00:0001", "::ffff:10.0.0.1"),
        ("::1.2.3.4", "::1.2.3.4"),  // deprecated IPv4-compatible
        ("ABCD:EF01:2345:6789:ABCD:EF01:2345:6789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"),
    ])
    func parsesAndPrintsLikeInetNtop(input: String, printed: String) throws {
        let address = try #require(IPAddress(input))
        #expect(address.description == printed)
        #expect(IPAddress(printed) == address)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.04444", "1::2::3", ":1", "1:", "1:2:3:4:5:6:7:8:9",
        "g::1", "1.2.3.4 ", "fe80::1%eth0", "12345::1", "::1.2.3", "[::1]",
    ])
    func refusesMalformedText(input: String) {
        #expect(IPAddress(input) == nil)
    }

    @Test func networkBytesRoundTrip() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let high = UInt64.random(in: 0...UInt64.max, using: &generator) & (Bool.random() ? 0 : UInt64.max)
            let low = UInt64.random(in: 0...UInt64.max, using: &generator)
            let address = IPAddress.v6(high: high, low: low)
            #expect(IPAddress(networkBytes: address.bytes) == address)
            #expect(IPAddress(address.description) == address, "\(address)")
        }
        #expect(IPAddress(networkBytes: [127, 0, 0, 1]) == .loopbackV4)
        #expect(IPAddress(networkBytes: [1, 2, 3]) == nil)
    }

    @Test func classifiesLoopbackAndMappedAddresses() throws {
        #expect(try #require(IPAddress("127.6.0.1")).isLoopback)
        #expect(try #require(IPAddress("::1")).isLoopback)
        #expect(try #require(IPAddress("::ffff:127.0.0.1")).isLoopback)
        #expect(!(try #require(IPAddress("10.0.0.1")).isLoopback))
        #expect(try #require(IPAddress("::ffff:10.0.0.1")).unmappedV4 == IPAddress("10.0.0.1"))
        #expect(try #require(IPAddress("fd00::1")).unmappedV4 == nil)
    }

    @Test func endpointsPrintLikeSS() throws {
        #expect(Endpoint(try #require(IPAddress("10.0.0.1")), 80).description == "10.0.0.1:80")
        #expect(Endpoint(try #require(IPAddress("::1")), 15001).description == "[::1]:15001")
    }
}

@Suite("Byte scanner")
struct ByteScannerTests {
    @Test func readsNumbersAndStopsAtTheFirstForeignByte() {
        let bytes = Array("  1234 0xz ff:12 -7 18446744073709551616".utf8)
        var scanner = ByteScanner(bytes, range: 0..<bytes.count)
        scanner.skipBlanks()
        #expect(scanner.decimal() == 1234)
        scanner.skipBlanks()
        #expect(scanner.decimal() == 0)
        #expect(scanner.hexNumber() == nil)  // 'x' is not hex
        _ = scanner.token()
        #expect(scanner.token().map { scanner.text($0) } == "ff:12")
        scanner.skipBlanks()
        #expect(scanner.signedDecimal() == -7)
        scanner.skipBlanks()
        #expect(scanner.decimal() == nil, "2^64 overflows")
    }

    @Test func splitsLinesAndCountsThem() {
        let bytes = Array("a\nbb\n\nccc".utf8)
        var lines = LineSplitter(bytes)
        var seen: [String] = []
        while let range = lines.next() { seen.append(String(decoding: bytes[range], as: UTF8.self)) }
        #expect(seen == ["a", "bb", "", "ccc"])
        #expect(lines.lineNumber == 4)
    }

    @Test func quotesBadInputShortAndPrintable() {
        #expect(ParseError.quote(Array("ab\"\u{01}".utf8)) == "\"ab\\\"\\x01\"")
        #expect(ParseError.quote(Array(repeating: 0x41, count: 100)).hasSuffix("…\""))
    }
}

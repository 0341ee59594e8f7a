import Foundation
import JSON
import Testing

/// The span writers that every ndjson record goes through, at the edges their fast paths
/// introduce: digit counts, strings with and without something to escape, literals
/// copied in one piece up to the record's reserved bound.
@Suite("JSON span writers")
struct JSONWriterTests {
    func written(bound: Int = 256, _ body: (inout OutputSpan<UInt8>) -> Void) -> String {
        var bytes: [UInt8] = []
        bytes.appendRecord(bound: bound, body)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func decimalsAtEveryDigitCountBoundary() {
        var values: [UInt64] = [0, 1, 9, UInt64.max, UInt64.max - 1]
        var power: UInt64 = 10
        while true {
            values += [power - 1, power, power + 1]
            let (next, overflow) = power.multipliedReportingOverflow(by: 10)
            if overflow { break }
            power = next
        }
        for value in values {
            #expect(written { $0.write(decimal: value) } == String(value))
        }
        #expect(written { $0.write(number: Int64.min + 1) } == String(Int64.min + 1))
        #expect(written { $0.write(optionalNumber: Int?.none) } == "null")
    }

    @Test(arguments: [
        ("ESTABLISHED", "\"ESTABLISHED\""),
        ("", "\"\""),
        ("pod-é-名", "\"pod-é-名\""),
        ("a\"b", "\"a\\\"b\""),
        ("back\\slash", "\"back\\\\slash\""),
        ("line\nfeed\r\t", "\"line\\nfeed\\r\\t\""),
        ("\u{1B}[31mred", "\"\\u001b[31mred\""),
        ("tail\u{01}", "\"tail\\u0001\""),
    ])
    func stringsEscapeExactlyWhatRFC8259Requires(text: String, expected: String) throws {
        let json = written { $0.write(jsonString: text) }
        #expect(json == expected)
        // And a JSON parser reads the original back.
        let decoded = try JSONSerialization.jsonObject(with: Data("[\(json)]".utf8)) as? [String]
        #expect(decoded == [text])
    }

    @Test func literalsAndTextAreCopiedWhole() {
        #expect(written { $0.write("{\"family\":\"ipv4\",\"protocol\":"); $0.write(text: "tcp") } == "{\"family\":\"ipv4\",\"protocol\":tcp")
        let long = String(repeating: "x", count: 200)
        #expect(written(bound: 200) { $0.write(text: long) } == long)
        #expect(written { $0.write(bytes: [0x61, 0x62]); $0.write("") } == "ab")
    }
}

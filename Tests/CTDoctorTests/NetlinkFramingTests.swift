import Netlink
import Testing

@Suite("Netlink framing")
struct NetlinkFramingTests {
    func message(type: UInt16, flags: UInt16 = 0, payload: [UInt8]) -> [UInt8] {
        var builder = NetlinkRequestBuilder(type: type, flags: flags, sequence: 9)
        builder.appendBytes(payload)
        return builder.finish()
    }

    @Test func walksMessagesAndTheirAttributes() throws {
        var builder = NetlinkRequestBuilder(type: 0x100, flags: NetlinkConstant.multi, sequence: 7, portID: 3)
        builder.appendBytes([2, 0, 0, 0])
        builder.attributeBE(3, UInt32(0xDEAD_BEEF))
        builder.beginNested(1)
        builder.attribute(2, [1, 2, 3])
        builder.endNested()
        let bytes = builder.finish() + message(type: NetlinkConstant.done, payload: [0, 0, 0, 0])

        var reader = NetlinkMessageReader(bytes, count: bytes.count)
        let first = try #require(try reader.next())
        #expect(first.type == 0x100 && first.sequence == 7 && first.portID == 3 && first.subsystem == 1)
        var attributes = NetlinkAttributeReader(bytes, range: (first.payload.lowerBound + 4)..<first.payload.upperBound)
        let status = try #require(try attributes.next())
        #expect(status.type == 3 && !status.isNested && bytes.uint32BE(at: status.value.lowerBound) == 0xDEAD_BEEF)
        let nest = try #require(try attributes.next())
        #expect(nest.type == 1 && nest.isNested)
        var inner = NetlinkAttributeReader(bytes, range: nest.value)
        let leaf = try #require(try inner.next())
        #expect(Array(bytes[leaf.value]) == [1, 2, 3])
        #expect(try inner.next() == nil)
        #expect(try attributes.next() == nil)
        #expect(try reader.next()?.type == NetlinkConstant.done)
        #expect(try reader.next() == nil)
    }

    /// Each row corrupts a valid message one way and expects a framing error, never a
    /// read out of bounds.
    @Test(arguments: [
        ("length beyond the buffer", { @Sendable (bytes: inout [UInt8]) in bytes[0] = 200 }),
        ("length below the header", { @Sendable (bytes: inout [UInt8]) in bytes[0] = 8 }),
        ("truncated header", { @Sendable (bytes: inout [UInt8]) in bytes.removeLast(bytes.count - 10) }),
    ] as [(String, @Sendable (inout [UInt8]) -> Void)])
    func refusesBrokenMessageFraming(name: String, corrupt: @Sendable (inout [UInt8]) -> Void) {
        var bytes = message(type: 0x100, payload: [2, 0, 0, 0, 8, 0, 3, 0, 1, 2, 3, 4])
        corrupt(&bytes)
        var reader = NetlinkMessageReader(bytes, count: bytes.count)
        #expect(throws: NetlinkFramingError.self, "\(name)") { _ = try reader.next() }
    }

    @Test func refusesAnAttributeLongerThanItsParent() {
        let bytes: [UInt8] = [40, 0, 7, 0, 1, 2, 3, 4]
        var reader = NetlinkAttributeReader(bytes, range: 0..<bytes.count)
        #expect(throws: NetlinkFramingError.self) { _ = try reader.next() }
        let short: [UInt8] = [2, 0, 7, 0]
        var shortReader = NetlinkAttributeReader(short, range: 0..<short.count)
        #expect(throws: NetlinkFramingError.self) { _ = try shortReader.next() }
    }

    @Test func recognisesTheEndOfADumpOnlyForItsOwnSequence() {
        let done = message(type: NetlinkConstant.done, payload: [0, 0, 0, 0])
        #expect(NetlinkDump.endsDump(done, count: done.count, sequence: 9))
        #expect(!NetlinkDump.endsDump(done, count: done.count, sequence: 10))
        let data = message(type: 0x100, payload: [2, 0, 0, 0])
        #expect(!NetlinkDump.endsDump(data, count: data.count, sequence: 9))
    }
}

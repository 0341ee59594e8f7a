import Foundation
import KernelIO
import Live
import NetCore
import Sockets
import TestSupport
import Testing

/// The fields `ss -e` adds — the bound device and IPv6's v6only — read through sock_diag
/// in a namespace with listeners bound to `lo` and to a veth, and IPv6 listeners with and
/// without IPV6_V6ONLY, compared with ss on the same sockets.
@Suite("ss -e fields: bound device and v6only", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class BoundSocketTests {
    let lab: TestNamespace
    var held: [StreamSocket] = []

    init() throws {
        lab = try TestNamespace(tag: "bound")
        try lab.exec(["ip", "link", "add", "ctdb0", "type", "veth", "peer", "name", "ctdb1"])
        try lab.exec(["ip", "link", "set", "ctdb0", "up"])
        held = try lab.namespace.run {
            [
                try StreamSocket.listen(on: Endpoint(.v4(0), 8080), device: "lo"),
                try StreamSocket.listen(on: Endpoint(.v4(0), 8083), device: "ctdb0"),
                try StreamSocket.listen(on: Endpoint(.v6(high: 0, low: 0), 8081), v6Only: true),
                try StreamSocket.listen(on: Endpoint(.v6(high: 0, low: 0), 8082), v6Only: false),
            ]
        }
    }

    deinit {
        held.forEach { $0.close() }
        lab.destroy()
    }

    func index(of device: String) throws -> UInt32 {
        let line = try lab.exec(["ip", "-o", "link", "show", "dev", device])
        return try #require(UInt32(line.prefix { $0 != ":" }))
    }

    @Test func sockDiagAgreesWithSSDashE() throws {
        let (sockets, source) = try SocketReader(namespace: lab.namespace).sockets(in: [.listen])
        #expect(source == .sockDiag)
        let ours = Dictionary(uniqueKeysWithValues: sockets.map { ($0.local.port, $0) })
        let lo = try index(of: "lo")
        let veth = try index(of: "ctdb0")
        #expect(ours[8080]?.boundDevice == BoundDevice(index: lo, name: "lo"))
        #expect(ours[8083]?.boundDevice == BoundDevice(index: veth, name: "ctdb0"))
        #expect(ours[8081]?.v6Only == true && ours[8082]?.v6Only == false && ours[8080]?.v6Only == nil)
        #expect(ours[8081]?.boundDevice == nil)
        let theirs = try SSOutputParser.parse(Array(try lab.exec(["ss", "-tlne"]).utf8), source: "ss -tlne").lines.map(\.socket)
        #expect(theirs.count == sockets.count)
        for socket in theirs {
            let mine = try #require(ours[socket.local.port])
            #expect(mine.boundDevice?.name == socket.boundDevice?.name, "port \(socket.local.port)")
            #expect(mine.v6Only == socket.v6Only, "port \(socket.local.port)")
        }
    }

    @Test func theCLIPrintsThemInJSONAndTheTable() throws {
        let json = try lab.run([Binary.ctdoctor, "sockets", "--state", "LISTEN", "--format", "ndjson"])
        #expect(json.status == 0, "\(json.standardError)")
        let objects = try json.standardOutput.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        let bound = try #require(objects.first { ($0["local"] as? [String: Any])?["port"] as? Int == 8083 })
        let device = try #require(bound["bound_device"] as? [String: Any])
        let veth = Int(try index(of: "ctdb0"))
        #expect(device["name"] as? String == "ctdb0" && device["index"] as? Int == veth)
        #expect(bound["v6only"] is NSNull)
        let v6 = try #require(objects.first { ($0["local"] as? [String: Any])?["port"] as? Int == 8081 })
        #expect(v6["v6only"] as? Bool == true && v6["bound_device"] is NSNull)
        let table = try lab.run([Binary.ctdoctor, "sockets", "--state", "LISTEN"])
        #expect(table.standardOutput.contains("0.0.0.0%lo:8080") && table.standardOutput.contains("0.0.0.0%ctdb0:8083"))
    }
}

import Diagnosis
import Foundation
import TestSupport
import Testing

/// A socket that is only bound (bind() without listen() or connect()) lives in the bind
/// hash alone. /proc/net/tcp does not list it (nor `ss -tan` before iproute2 6.8), and the kernel finds it only
/// when a dump asks for BOUND_INACTIVE (Linux 6.8+) by walking the node-wide bind hash,
/// every namespace's bound sockets: a plain listing must not ask for that walk, and
/// `--state CLOSE` must bring the socket. Needs root; with CI=true it never skips.
@Suite("sockets that are only bound", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class BoundOnlySocketTests {
    let lab: TestNamespace
    let holder: SocketHolder
    static let boundPort = 7201, listeningPort = 7202

    init() throws {
        lab = try TestNamespace(tag: "boundonly")
        let hold = """
            import socket,time
            b=socket.socket();b.bind(('127.0.0.1',\(Self.boundPort)))
            l=socket.socket();l.bind(('127.0.0.1',\(Self.listeningPort)));l.listen()
            print('bound',flush=True)
            time.sleep(300)
            """
        holder = try SocketHolder(inNamespace: lab.name, script: hold, saying: "bound")
    }

    deinit {
        // The holder is killed first: its sockets must not outlive the namespace's removal.
        holder.stop()
        lab.destroy()
    }

    func ports(_ arguments: [String]) throws -> [(port: Int, state: String)] {
        let output = try Shell.check([Binary.ctdoctor, "sockets", "--netns", lab.name, "--format", "ndjson"] + arguments)
        return try output.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let local = try #require(object["local"] as? [String: Any])
            return (try #require(local["port"] as? Int), try #require(object["state"] as? String))
        }
    }

    @Test func aPlainListingIsWhatSSListsAndCloseAddsTheBoundOnes() throws {
        try #require(holder.isReady, "the holder never said its sockets were bound")
        let plain = try ports([])
        #expect(plain.map(\.port) == [Self.listeningPort], "the listener only: \(plain)")
        // As many as /proc/net/tcp{,6} list (each file's first line is its header).
        let proc = try ["tcp", "tcp6"].flatMap { try lab.exec(["cat", "/proc/net/\($0)"]).split(separator: "\n").dropFirst() }
        #expect(proc.count == plain.count, "as many as /proc/net/tcp: \(proc)")

        let release = try String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)
        let version = try #require(KernelText.version(ofRelease: release))
        let closed = try ports(["--state", "CLOSE"])
        if (version.major, version.minor) >= (6, 8) {
            #expect(closed.map(\.port) == [Self.boundPort] && closed.first?.state == "CLOSE", "\(closed)")
            #expect(try ports(["--state", "BOUND_INACTIVE"]).map(\.port) == [Self.boundPort])
        } else {
            // Before 6.8 a kernel cannot dump them (unless a distribution backported it):
            // whatever comes must still be the bound socket, never the listener.
            #expect(closed.allSatisfy { $0.port == Self.boundPort }, "\(closed)")
        }
    }
}

import Foundation
import KernelIO
@testable import Live
import Testing

/// The owner search against a /proc tree built in a temporary directory: descriptors and
/// namespace links are symlinks whose targets read "socket:[N]" and "net:[N]", as the
/// kernel's do, so which links the search follows shows in whom it names.
@Suite("listener owner search")
struct OwnerSearchTests {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-owners-\(UUID().uuidString)")
    static let namespace = "net:[4026532281]"

    func process(_ pid: Int32, net: String, command: String, sockets: [Int32: UInt64] = [:], descriptorsReadable: Bool = true) throws {
        let manager = FileManager.default
        let directory = root.appendingPathComponent("\(pid)")
        try manager.createDirectory(at: directory.appendingPathComponent("ns"), withIntermediateDirectories: true)
        try manager.createSymbolicLink(atPath: directory.appendingPathComponent("ns/net").path, withDestinationPath: net)
        try Data("\(command)\n".utf8).write(to: directory.appendingPathComponent("comm"))
        try Data("\(pid) (\(command)) S 1 \(pid) \(pid) 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n".utf8)
            .write(to: directory.appendingPathComponent("stat"))
        guard descriptorsReadable else { return }  // no fd directory: listing it fails, as for another user's process
        try manager.createDirectory(at: directory.appendingPathComponent("fd"), withIntermediateDirectories: true)
        for (fd, inode) in sockets {
            try manager.createSymbolicLink(atPath: directory.appendingPathComponent("fd/\(fd)").path, withDestinationPath: "socket:[\(inode)]")
        }
    }

    var search: OwnerSearch { OwnerSearch(procfs: ProcFS(root: root.path)) }

    @Test func withoutTheNamespacesProcessesTheLinksDecideWhoIsSearchedFirst() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        try process(10, net: Self.namespace, command: "envoy", sockets: [3: 9001])
        try process(20, net: "net:[4026531840]", command: "ztunnel", sockets: [7: 9001])
        let (owners, unreadable) = search.owners(of: [9001], namespaceLink: Self.namespace)
        #expect(owners[9001]?.map(\.pid) == [10], "the process in the namespace, and the search stops there")
        #expect(owners[9001]?.first?.command == "envoy" && owners[9001]?.first?.fd == 3)
        #expect(unreadable == 0)
    }

    @Test func theProcessesTheInventoryFoundInsideAreSearchedFirstWithoutReadingLinks() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        // The links say 10 lives in the namespace; the caller says 20 does. Naming 20
        // shows the links were not read.
        try process(10, net: Self.namespace, command: "envoy", sockets: [3: 9001])
        try process(20, net: "net:[4026531840]", command: "pilot-agent", sockets: [5: 9001])
        // 9002 is held only by a process outside: found by the search of the rest.
        try process(30, net: "net:[4026531840]", command: "lab", sockets: [8: 9002])
        let (owners, _) = search.owners(of: [9001, 9002], namespaceLink: Self.namespace, inside: [20])
        #expect(owners[9001]?.map(\.pid) == [20])
        #expect(owners[9002]?.map(\.pid) == [30], "what is missing inside is searched for among the others")
    }

    @Test func aListedProcessThatExitedIsNotCountedAsUnreadable() throws {
        defer { try? FileManager.default.removeItem(at: root) }
        try process(10, net: Self.namespace, command: "envoy", sockets: [3: 9001])
        try process(11, net: Self.namespace, command: "app", descriptorsReadable: false)
        // 12 was in the inventory and has exited: no /proc/12 at all.
        let (owners, unreadable) = search.owners(of: [9001, 9999], namespaceLink: Self.namespace, inside: [12, 11, 10])
        #expect(owners[9001]?.map(\.pid) == [10])
        #expect(unreadable == 1, "11 cannot be read; 12 is gone, which is no reason to ask for CAP_SYS_PTRACE")
    }
}

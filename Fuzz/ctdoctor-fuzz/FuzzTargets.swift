import Conntrack
import MeshLint
import NetCore
import Netlink
import Offline
import Sockets

#if CTDOCTOR_FUZZING
import Glibc

/// libFuzzer entry points for every parser of outside input. One binary, the target
/// chosen by CTDOCTOR_FUZZ_TARGET (scripts/fuzz sets it). A parser may reject any input
/// with its error; what the fuzzer hunts is a crash, a trap (overflow, out-of-range
/// index), a hang or runaway memory.
enum FuzzTarget: String, CaseIterable {
    case procNetTCP = "proc-net-tcp"
    case conntrackText = "conntrack-text"
    case conntrackXML = "conntrack-xml"
    case ssOutput = "ss-output"
    case pastedTables = "pasted-tables"
    case ctnetlinkDump = "ctnetlink-dump"
    case sockDiagDump = "sock-diag-dump"
    case snapshot
    case manifest

    func run(_ bytes: [UInt8]) {
        switch self {
        case .procNetTCP: _ = try? ProcNetTCPParser.parse(bytes, family: nil, source: "fuzz")
        case .conntrackText: _ = try? ConntrackTextParser.parse(bytes, source: "fuzz")
        case .conntrackXML: _ = try? ConntrackXMLParser.parse(bytes, source: "fuzz")
        case .ssOutput: _ = try? SSOutputParser.parse(bytes, source: "fuzz")
        case .pastedTables:
            _ = try? PastedInput.conntrack(bytes, source: "fuzz")
            _ = try? PastedInput.sockets(bytes, source: "fuzz")
        case .ctnetlinkDump: _ = try? ConntrackMessageDecoder.decodeDump(bytes)
        case .sockDiagDump: _ = try? SockDiagCodec.decodeDump(bytes)
        case .snapshot: _ = try? SnapshotFormat.decode(bytes, source: "fuzz")
        case .manifest:
            if let objects = try? ManifestParser.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml") {
                _ = Linter.lint(objects, files: ["fuzz.yaml"])
            }
        }
    }
}

nonisolated(unsafe) private var selected: FuzzTarget?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    if selected == nil {
        let name = getenv("CTDOCTOR_FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            let message = "ctdoctor-fuzz: set CTDOCTOR_FUZZ_TARGET to one of: \(names)\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            exit(2)
        }
        selected = target
    }
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selected!.run(bytes)
    return 0
}
#else
/// Built without the fuzzer (a plain `swift build`): says how to build it.
@main
enum FuzzerNotBuilt {
    static func main() {
        print("ctdoctor-fuzz is built and run by scripts/fuzz, with libFuzzer and -DCTDOCTOR_FUZZING")
    }
}
#endif

import Conntrack
import Diagnosis
import Export
import Formats
import Live
import MeshLint
import NetCore
import Netlink
import Nftables
import NodeSweep
import Offline
import Pressure
import Sockets
import YAML

import Glibc

// The targets compile in every build, so a plain `swift build` type-checks them against
// the parsers they call; only libFuzzer's entry point needs the fuzzing build.

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
    /// A namespace's nf_tables rules, which its tenant writes: decoded and judged.
    case nftablesDump = "nftables-dump"
    case snapshot
    case manifest
    /// The YAML reader alone, on bytes that need not be UTF-8, every node walked (merges
    /// followed) as a linter could.
    case yaml
    /// Durations and numbers from options, snapshots and a tenant's environment, carried
    /// through the diagnosis that converts them (it trapped on 99999999999999999h).
    case numbers
    /// What a node sweep reads of a tenant's process: environ, stat, comm-like names,
    /// cgroup paths, a runtime's config.json, /etc/hostname.
    case tenantFiles = "tenant-files"
    /// What `pressure` reads from outside: conntrack -S and /proc/net/stat copies, sysctl
    /// listings, EndpointSlice JSON, ctnetlink's statistics messages, and a copied table
    /// through the one-pass summary and its findings.
    case pressureInputs = "pressure-inputs"
    /// What a client of watch's /metrics endpoint sends: any bytes as a request head,
    /// whole or cut at the limit.
    case httpRequests = "http-requests"

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
        case .nftablesDump:
            var search = InvalidDropSearch()
            for rule in (try? NftablesCodec.decodeRules(bytes)) ?? [] { search.consider(rule) }
            for set in search.setsToRead { search.learn(set, invalidElement: set.name.count % 2 == 0 ? NftablesSetElement(key: 1, verdict: .drop) : nil) }
            _ = search.conclusion()
        case .snapshot: _ = try? SnapshotFormat.decode(bytes, source: "fuzz")
        case .manifest:
            if let objects = try? ManifestParser.parse(String(decoding: bytes, as: UTF8.self), file: "fuzz.yaml") {
                _ = Linter.lint(objects, files: ["fuzz.yaml"])
            }
        case .yaml: Self.yaml(bytes)
        case .numbers: Self.numbers(String(decoding: bytes, as: UTF8.self))
        case .tenantFiles: Self.tenantFiles(bytes)
        case .pressureInputs: Self.pressureInputs(bytes)
        case .httpRequests:
            let head = bytes.prefix(HTTPRequestHead.limit)
            let end = HTTPRequestHead.end(head)
            _ = MetricsHTTP.response(toHead: head[..<(end ?? head.endIndex)], complete: end != nil) { [0x78, 0x0A] }
        }
    }

    static func pressureInputs(_ bytes: [UInt8]) {
        let statistics = try? PastedInput.statistics(bytes, source: "fuzz")
        let sysctls = try? SysctlText.parse(bytes, source: "fuzz")
        let endpoints = try? EndpointList.parse(bytes, source: "fuzz")
        var reader = NetlinkMessageReader(bytes, count: bytes.count)
        while let message = try? reader.next() {
            _ = try? ConntrackStatisticsDecoder.decodeCPU(bytes, message)
            _ = try? ConntrackStatisticsDecoder.decodeGlobal(bytes, message)
        }
        guard let table = try? PastedInput.conntrack(bytes, source: "fuzz") else { return }
        var accumulator = TablePressureAccumulator(context: PressureContext(
            timeouts: .reading(sysctls?.timeouts ?? [:]), liveEndpoints: endpoints ?? [], unrepliedAfterSeconds: 1, nowNanoseconds: UInt64.max,
            topCapacity: 4))
        table.entries.forEach { accumulator.add($0) }
        _ = PressureReport(
            table: accumulator.summary(), statistics: statistics,
            delta: statistics.map { StatisticsDelta(from: $0, to: $0, seconds: 1) }, count: sysctls?.count ?? table.entries.count,
            maximum: sysctls?.maximum, buckets: sysctls?.buckets, rules: RulesFacts(), notices: [])
    }

    static func yaml(_ bytes: [UInt8]) {
        guard let documents = try? YAMLReader.documents(bytes, expandedNodeLimit: bytes.count * 16 + 10_000) else { return }
        // Each distinct node once: aliases share nodes, and walking the expansion is what
        // the limit bounds, not what this target measures.
        var pending = documents
        var walked = 0
        while let node = pending.popLast(), walked < 100_000 {
            walked += 1
            _ = (node.scalar, node.mark, node["kind"], node["<<"])
            pending += node.items
            for (key, value) in node.entries {
                pending.append(key)
                pending.append(value)
            }
        }
    }

    static func numbers(_ text: String) {
        let seconds = DurationText.seconds(text)
        _ = DurationText.goDuration(text)
        let value = Double(text) ?? seconds ?? 0
        _ = formatQuantity(value)
        _ = (Int64(saturating: value), UInt64(saturating: value * 1000), Int32(saturating: value))
        // A proxy whose environment holds the text, over a pod with one leak.
        let listener = TCPSocket(family: .ipv4, state: .listen, local: Endpoint(.v4(0), 15001), remote: Endpoint(.v4(0), 0), inode: 1)
        let leak = TCPSocket(
            family: .ipv4, state: .finWait2, local: Endpoint(.loopbackV4, 15001), remote: Endpoint(.v4(0x0A42_0005), 40001), inode: 2,
            info: TCPInfo(lastDataSentMilliseconds: 1000, lastDataReceivedMilliseconds: 1000, lastAckReceivedMilliseconds: 1000))
        let input = DiagnosisInput(
            namespace: "fuzz", sockets: [listener, leak], socketSource: .sockDiag, conntrack: [], conntrackSource: .lookups(count: 1),
            owners: [1: [SocketOwner(pid: 7, command: "envoy", fd: 3)]],
            sidecarProcess: SidecarProcessFacts(pid: 7, command: "envoy", uptimeSeconds: value.isFinite ? abs(value) : nil, idleTimeoutSetting: text),
            kernel: KernelFacts(), counters: ["TcpActiveOpens": UInt64(saturating: value)], rules: RulesFacts(), notices: [])
        _ = Diagnosis.diagnose(input, options: DiagnosisOptions(connectRate: value.isFinite && value >= 0 ? min(value, 1e9) : nil))
    }

    static func tenantFiles(_ bytes: [UInt8]) {
        _ = ProcText.environmentValue("ISTIO_META_IDLE_TIMEOUT", in: bytes)
        _ = ProcText.stat(bytes)
        _ = ProcText.uptime(bytes)
        _ = PodIdentity.hostname(fromEnviron: bytes)
        _ = PodIdentity.podUID(fromCgroup: bytes)
        _ = PodIdentity.containerID(fromCgroup: bytes)
        _ = PodIdentity.name(fromRuntimeConfig: bytes)
        _ = String(decoding: bytes, as: UTF8.self).terminalSafe
    }
}

#if CTDOCTOR_FUZZING
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

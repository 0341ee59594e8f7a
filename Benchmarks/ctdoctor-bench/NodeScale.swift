import ArgumentParser
import Foundation
import KernelIO

/// Room for a node-sized table: nf_conntrack_max and the hash's buckets raised for the
/// run (kube-proxy sets 32,768 entries per core; busy nodes hold millions), and put back
/// afterwards. Both are the host's: only the initial namespace may write them.
struct ConntrackCapacity {
    static let maximumPath = "/proc/sys/net/netfilter/nf_conntrack_max"
    static let bucketsPath = "/sys/module/nf_conntrack/parameters/hashsize"

    var originalMaximum: Int
    var originalBuckets: Int
    /// What was raised, for the report; nil when the table already had room.
    var note: String?

    static func read(_ path: String) throws -> Int {
        guard let value = Int(try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ValidationError("\(path) does not hold a number")
        }
        return value
    }

    static func write(_ value: Int, to path: String) throws {
        try "\(value)\n".write(toFile: path, atomically: false, encoding: .utf8)
    }

    static func raise(toHold wanted: Int) throws -> ConntrackCapacity {
        var capacity = ConntrackCapacity(originalMaximum: try read(maximumPath), originalBuckets: try read(bucketsPath))
        // Four entries per bucket, the ratio the kernel's own default keeps on large hosts.
        var buckets = 1
        while buckets < wanted / 4 { buckets <<= 1 }
        var raised: [String] = []
        if wanted > capacity.originalMaximum {
            try write(wanted, to: maximumPath)
            raised.append("nf_conntrack_max \(capacity.originalMaximum) -> \(wanted)")
        }
        if buckets > capacity.originalBuckets {
            try write(buckets, to: bucketsPath)
            raised.append("buckets \(capacity.originalBuckets) -> \(buckets)")
        }
        if !raised.isEmpty { capacity.note = "for this run: " + raised.joined(separator: ", ") + " (restored afterwards)" }
        return capacity
    }

    func restore() {
        try? Self.write(originalBuckets, to: Self.bucketsPath)
        try? Self.write(originalMaximum, to: Self.maximumPath)
    }
}

/// Each namespace's own established-socket hash, instead of the node's shared one, for
/// the namespaces made while it is set: `net.ipv4.tcp_child_ehash_entries` (kernel 6.1+)
/// is read from the namespace that creates them, so it is the host's, put back as soon
/// as the pods exist.
struct ChildSocketHash {
    static let path = "/proc/sys/net/ipv4/tcp_child_ehash_entries"

    static func whileCreating<T>(entries: Int, _ body: () throws -> T) throws -> T {
        let original = try ConntrackCapacity.read(path)
        try ConntrackCapacity.write(entries, to: path)
        defer { try? ConntrackCapacity.write(original, to: path) }
        return try body()
    }
}

/// A node of pod-like namespaces, each with a sidecar listening on 15001 and 15006,
/// ~1,500 sockets and a few real leaks: `diagnose --all-netns` against the loop a user
/// would write without it, whether every leak is found in its own namespace, and what
/// `export --every` costs per cycle and namespace once running.
///
/// By default the pods share the node's socket hash, as they do on a node nobody tuned,
/// and each namespace's sock_diag dump walks every socket of the node. With
/// `ownSocketHash` each pod gets a hash of that many buckets: the same sweep where the
/// node removes that floor (the loop a user would write is not run again).
struct NodeStage {
    var pods: Int
    var binary: String
    var helper: String
    var ownSocketHash: Int? = nil
    var socketsPerPod = 1500
    var leaksPerPod = 3

    func report(
        measure: ([(String, [String])]) throws -> [RunBenchmark.Row], table: ([RunBenchmark.Row], String) -> String
    ) throws -> String {
        var namespaces: [BenchNamespace] = []
        var holders: [Holder] = []
        defer {
            holders.forEach { $0.release() }
            namespaces.forEach { $0.destroy() }
        }
        var made: [String: Int] = [:]
        let tag = ownSocketHash == nil ? "ctd-node" : "ctd-nodeh"
        let create = {
            for index in 0..<pods { namespaces.append(try BenchNamespace(name: "\(tag)-\(getpid())-\(index)")) }
        }
        if let ownSocketHash { try ChildSocketHash.whileCreating(entries: ownSocketHash, create) } else { try create() }
        for pod in namespaces {
            holders += try pod.holdSockets(total: socketsPerPod, helper: helper, silentOnCapturePort: 10, alsoListen: [15006])
        }
        for pod in namespaces { made[pod.name] = try pod.leak(flows: leaksPerPod, port: 15001) }

        let names = namespaces.map(\.name).joined(separator: " ")
        let sweep = [binary, "diagnose", "--all-netns", "--fail-on", "never", "--format", "ndjson"]
        // Two at a time, as the sweep goes: the walks alone, on both cores.
        let rawDumps = "raw sock_diag dumps of every pod namespace, two at a time, count only"
        let loop = "ss -tanpoi + conntrack -L in each namespace"
        var contenders = [
            (rawDumps, [helper, "raw-socket-count", "--parallel", "2"] + namespaces.flatMap { ["--netns", $0.name] }),
            ("ctdoctor diagnose --all-netns", sweep),
        ]
        if ownSocketHash == nil {
            contenders.append((loop, ["sh", "-c", "for ns in \(names); do ip netns exec $ns ss -tanpoi; ip netns exec $ns conntrack -L; done"]))
        }
        let rows = try measure(contenders)
        var text = "## Node: \(pods) pod namespaces, each with a sidecar on 15001/15006, \(socketsPerPod) sockets and \(leaksPerPod) leaks"
        if let ownSocketHash {
            text += "; each namespace with its own socket hash (net.ipv4.tcp_child_ehash_entries=\(ownSocketHash) when they were made)\n"
            text += table(rows, rawDumps)
            text += "The same sweep where the node gives each pod its own established-socket hash: a namespace's dump walks its own sockets only.\n"
        } else {
            text += "\n" + table(rows, loop)
            text += "Targets: --all-netns <= 0.5 s and <= 0.05x the loop, peak RSS <= 64 MiB. The raw dumps are the floor: each namespace's sock_diag dump walks the node's whole established-socket hash, which namespaces share.\n"
        }
        text += "Where --all-netns's time goes, summed over the namespaces swept two at a time (CTDOCTOR_TRACE=1): " + (try Trace.phases(of: sweep)) + "\n"
        let (attributed, swept) = try attribution(sweep: sweep, made: made)
        text += attributed
        text += try exportCost(namespaces: swept)
        return text
    }

    /// Every leak found, in the namespace it was made in.
    /// - Returns: the report's line, and how many namespaces the sweep covered.
    func attribution(sweep: [String], made: [String: Int]) throws -> (String, Int) {
        let output = try BenchNamespace.run(sweep)
        var found: [String: Int] = [:]
        var swept = 0
        for line in output.split(separator: "\n") {
            guard let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                record["kind"] as? String == "namespace"
            else { continue }
            swept += 1
            if let name = record["netns_name"] as? String, made[name] != nil { found[name] = record["leaked"] as? Int }
        }
        let wrong = made.filter { found[$0.key] != $0.value }.keys.sorted()
        let total = made.values.reduce(0, +)
        let line = wrong.isEmpty
            ? "Every leak found and attributed: \(total) leaks in \(made.count) namespaces, each in its own (\(swept) namespaces swept).\n"
            : "NOT every leak attributed: \(wrong.count) namespaces differ (\(wrong.prefix(5).map { "\($0): made \(made[$0]!), found \(found[$0].map(String.init) ?? "none")" }.joined(separator: "; ")))\n"
        return (line, swept)
    }

    /// CPU of `export --all-netns --every` once running: five cycles' CPU minus one
    /// cycle's, over the four after the first, per namespace. The interval leaves each
    /// cycle room to finish, so that five start in the window.
    func exportCost(namespaces: Int) throws -> String {
        let file = "/tmp/ctdoctor-bench-export-\(getpid()).prom"
        defer { unlink(file) }
        let once = try runMeasured([binary, "export", "--all-netns", "--output", file])
        guard once.exitStatus == 0 else { return "export --every: could not measure (exit \(once.exitStatus))\n" }
        let interval = max(2, Int((once.wallSeconds * 2).rounded(.up)))
        let window = Double(4 * interval) + once.wallSeconds / 2
        let every = try runMeasured([
            "timeout", "--signal=INT", String(format: "%.1f", window), binary, "export", "--all-netns", "--every", "\(interval)s", "--output", file,
        ])
        let perCycle = (every.userSeconds + every.systemSeconds - once.userSeconds - once.systemSeconds) / 4
        return String(
            format: "export --all-netns --every %ds, steady state: %.0f ms CPU per cycle, %.1f ms per namespace (%d namespaces; one cycle %.0f ms wall)\n",
            interval, perCycle * 1000, perCycle * 1000 / Double(max(1, namespaces)), namespaces, once.wallSeconds * 1000)
    }
}

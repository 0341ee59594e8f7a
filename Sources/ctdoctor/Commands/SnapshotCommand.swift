import ArgumentParser
import Formats
import Glibc
import JSON
import KernelIO
import Live
import Offline

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Capture everything a diagnosis reads into one file, for offline analysis with --from.",
        discussion: """
            Writes the namespace's whole TCP socket table (with tcp_info), its whole conntrack \
            table, the sysctls, kernel release, TCP counters, packet filter rules, the capture \
            listeners' processes and the sidecar's facts as one JSON document \
            (ctdoctor.snapshot.v1), gzip-compressed with --gzip or an --output ending in .gz. \
            diagnose, leaks, collisions and export then read it with --from and give the \
            findings they would have given live, under any options. Costs what the tables \
            cost: a full dump of each.

            Examples:
              ctdoctor snapshot --netns 4242 --output pod.snapshot.json.gz
              ctdoctor diagnose --from pod.snapshot.json.gz --stall-after 30s
            """
    )

    @OptionGroup var namespace: NamespaceOptions

    @Option(help: ArgumentHelp("Write here, atomically, instead of standard output.", valueName: "path"))
    var output: String?

    @Flag(help: "gzip-compress (also implied by an --output ending in .gz).")
    var gzip = false

    var compress: Bool { gzip || (output?.hasSuffix(".gz") ?? false) }

    func validate() throws {
        if compress && output == nil && isatty(1) == 1 {
            throw ValidationError("refusing to write gzip data to a terminal: give --output FILE or redirect standard output")
        }
    }

    func run() throws {
        let input = try LiveCollector(namespace: try namespace.resolve(), trace: Console.tracer).collectEverything()
        let snapshot = Snapshot(input: input, capturedAt: wallClockSeconds(), version: CTDoctor.version)
        var bytes = SnapshotFormat.encode(snapshot)
        if compress { bytes = try gzipCompress(bytes) }
        if let output {
            try writeFileAtomically(bytes, to: output, permissions: [.ownerReadWrite])
            Console.writeError("ctdoctor: snapshot of \(input.namespace): \(input.sockets.count) sockets, \(input.conntrack.count) conntrack entries → \(output)\n")
        } else {
            try Console.writeOut(bytes: bytes)
        }
        input.notices.forEach { log.warning("\($0)") }
    }
}

import ArgumentParser
import Diagnosis
import Formats
import JSON
import KernelIO
import Offline

/// Where a diagnosis reads from: a live namespace (default, or --netns), a snapshot
/// (--from), or tables copied from elsewhere (--conntrack-file with --sockets-file).
struct InputOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Diagnose a snapshot taken with `ctdoctor snapshot` (plain or gzip; - for standard input) instead of a live namespace.", valueName: "snapshot"))
    var from: String?

    @Option(name: .customLong("conntrack-file"), help: ArgumentHelp("The conntrack table as copied from elsewhere: conntrack -L (any -o), -o xml, /proc/net/nf_conntrack, or ctdoctor JSON. With --sockets-file.", valueName: "path"))
    var conntrackFile: String?

    @Option(name: .customLong("sockets-file"), help: ArgumentHelp("The TCP sockets as copied from elsewhere: /proc/net/tcp{,6}, ss -tanpoi (or -tan, -naoep), or ctdoctor JSON. With --conntrack-file.", valueName: "path"))
    var socketsFile: String?

    var isOffline: Bool { from != nil || conntrackFile != nil || socketsFile != nil }

    func validate(with namespace: NamespaceOptions) throws {
        if from != nil && (conntrackFile != nil || socketsFile != nil) {
            throw ValidationError("--from reads a snapshot; --conntrack-file and --sockets-file are for copied tables: give one or the other")
        }
        if (conntrackFile == nil) != (socketsFile == nil) {
            throw ValidationError(conntrackFile == nil
                ? "--sockets-file needs --conntrack-file: without the conntrack table every half-closed socket would look leaked"
                : "--conntrack-file needs --sockets-file: the leaks are found among the sockets")
        }
        if isOffline && namespace.spec != nil {
            throw ValidationError("--netns reads a live namespace; it cannot be combined with --from or the copied-table files")
        }
    }

    /// The input to diagnose, from wherever these options say.
    func load(namespace: NamespaceOptions, options: DiagnosisOptions) throws -> DiagnosisInput {
        if let from {
            return try readSnapshot(from).input
        }
        if let conntrackFile, let socketsFile {
            let conntrack = try PastedInput.conntrack(try readInputFile(conntrackFile), source: conntrackFile)
            let sockets = try PastedInput.sockets(try readInputFile(socketsFile), source: socketsFile)
            return PastedInput.input(conntrack: conntrack, conntrackPath: conntrackFile, sockets: sockets, socketsPath: socketsFile)
        }
        return try collectLive(try namespace.resolve(), options: options)
    }

    /// How the input is named in an export's labels.
    func identity(namespace: NamespaceOptions) -> String {
        from ?? socketsFile ?? namespace.spec ?? "current"
    }
}

/// The most ctdoctor reads from one copied table or snapshot, before and after gzip: a
/// 1M-entry `conntrack -L` is about 250 MB, and what the diagnosis needs of it fits in far
/// less. Documented in README (bad input) and the man pages.
let maximumInputBytes = 128 << 20

/// Reads a file given on the command line (- is standard input), decompressing gzip;
/// refuses what is not a regular file and what exceeds `maximumInputBytes`.
func readInputFile(_ path: String) throws -> [UInt8] {
    let name = path == "-" ? "standard input" : path
    let tooLarge = "\(name) is larger than \(maximumInputBytes >> 20) MiB, the most ctdoctor reads from a copy: copy only what matters (conntrack -L -p tcp, ss -tan state fin-wait-2)"
    let bytes: [UInt8]
    do {
        bytes = try path == "-" ? readStandardInput(limit: maximumInputBytes) : readFile(path, limit: maximumInputBytes)
    } catch let error as KernelIOError where error.errno == .fileTooLarge {
        throw CommandFailure(tooLarge, cause: error)
    }
    guard isGzip(bytes) else { return bytes }
    do {
        return try gzipDecompress(bytes, limit: maximumInputBytes)
    } catch let error as GzipError where error.isTooLarge {
        throw CommandFailure(tooLarge + " (once decompressed)", cause: error)
    } catch {
        throw CommandFailure("\(path): \(error)", cause: error)
    }
}

func readSnapshot(_ path: String) throws -> Snapshot {
    try SnapshotFormat.decode(try readInputFile(path), source: path == "-" ? "standard input" : path)
}

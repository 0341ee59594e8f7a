import ArgumentParser
import Diagnosis
import KernelIO
import NetCore

/// `--netns`, shared by every live command.
struct NamespaceOptions: ParsableArguments {
    @Option(
        name: .customLong("netns"),
        help: ArgumentHelp(
            "The network namespace to read: a name from `ip netns list`, a path to a namespace file, or a PID (its /proc/PID/ns/net). Default: ctdoctor's own.",
            valueName: "name|path|pid"))
    var spec: String?

    func resolve() throws -> NetworkNamespace {
        guard let spec else { return .current }
        return try NetworkNamespace.resolve(spec)
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case table, json, ndjson
}

/// `--format`, shared by every listing command.
struct OutputOptions: ParsableArguments {
    @Option(help: "Output format: an aligned table for people, one JSON document, or one JSON object per line.")
    var format: OutputFormat = .table
}

/// A duration given on the command line: plain seconds ("90", "0.5") or Go's notation
/// ("1h", "90s", "1m30s"), as Istio's own settings are written; nil past Go's bound.
func durationSeconds(_ text: String) -> Double? {
    DurationText.seconds(text)
}

/// A port number given on the command line, refused outside 1-65535 with the value shown.
func parsePort(_ text: String, option: String) throws -> UInt16 {
    guard let port = UInt16(text), port > 0 else {
        throw ValidationError("\(option) takes a port number from 1 to 65535, not '\(text)'")
    }
    return port
}

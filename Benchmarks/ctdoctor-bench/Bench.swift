import ArgumentParser

/// The benchmark and the tools that build its tables (and the golden fixtures).
///
/// Not a timed test: speed and memory targets live here, measured as ratios taken in
/// one run, because the machine is shared and absolute times drift between runs.
@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctdoctor-bench",
        abstract: "Benchmark ctdoctor against conntrack-tools, ss and raw netlink; build test tables.",
        discussion: """
            Examples:
              ctdoctor-bench run                      # the full benchmark (root; ~10 minutes)
              ctdoctor-bench run --entries 262144 --sockets 100000 --pods 0   # the 262k foundation only
              ctdoctor-bench run --entries 10000 --sockets 10000 --pods 10 --repeats 3
              ctdoctor-bench lint --objects 10000 --objects 100000   # lint as manifests grow
              ctdoctor-bench capture conntrack --netns NAME --output dump.bin
            """,
        subcommands: [
            RunBenchmark.self, LintBenchmark.self, FillConntrack.self, HoldSockets.self, RawCount.self, RawSocketCount.self, Spin.self, Capture.self, ParseProcTCP.self, Churn.self, WatchLoad.self,
        ]
    )
}

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
              ctdoctor-bench run                      # the full benchmark (root; ~2 minutes)
              ctdoctor-bench run --entries 10000 --sockets 10000 --repeats 3
              ctdoctor-bench lint --objects 10000 --objects 100000   # lint as manifests grow
              ctdoctor-bench capture conntrack --netns NAME --output dump.bin
            """,
        subcommands: [
            RunBenchmark.self, LintBenchmark.self, FillConntrack.self, HoldSockets.self, RawCount.self, Capture.self, ParseProcTCP.self, Churn.self,
        ]
    )
}

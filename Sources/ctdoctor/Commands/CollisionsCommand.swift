import ArgumentParser
import Diagnosis
import KernelIO
import Live
import Rendering

struct CollisionsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collisions",
        abstract: "Predict ephemeral-port collisions with leaked sidecar sockets, and detect live ones.",
        discussion: """
            Poisoned ports are the leaked sockets' peer ports inside ip_local_port_range, less the \
            reserved ones, split by the parity connect() tries first. For each source address: how \
            many, the share of first-pass ports they take, and the expected number of colliding \
            connects before the leaks end, with the model and its assumptions. Live collisions are \
            SYN_SENT conntrack entries on a leaked socket's tuple; TcpExtTCPChallengeACK, \
            TCPSYNChallenge and TCPSynRetrans are shown. Exit status as diagnose; JSON schema \
            ctdoctor.collisions.v1.

            Examples:
              ctdoctor collisions --connect-rate 50
              ctdoctor collisions --netns 4242 --format json
            """
    )

    @OptionGroup var source: DiagnosisSource
    @OptionGroup var output: OutputOptions
    @OptionGroup var diagnosis: DiagnosisArguments


    func run() throws {
        try source.diagnose(output: output, arguments: diagnosis, sections: [.findings, .collisions, .kernel])
    }
}

import ArgumentParser
import Diagnosis
import KernelIO
import Live
import Rendering

struct DiagnoseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Find sidecar sockets leaked by half-closes, the ports they poison, whether this kernel recovers from the collisions, and stalled server-first connections.",
        discussion: """
            Looks at every sidecar socket left in FIN_WAIT2 on a capture port, finds its flow in \
            conntrack by the reply tuple, and classifies it: leaked (conntrack forgot the flow: the \
            app's FIN can no longer reach the proxy), at risk (conntrack forgets it before the proxy \
            does), or healthy. Leaked sockets poison the app's ephemeral ports; diagnose predicts \
            the collisions and audits the kernel and sysctls that decide whether a collision fails \
            or recovers. Connections a capture port accepted that carried no byte either way for \
            --stall-after are grouped by the port the client dialled: on a server-first port \
            (SMTP, MySQL, NATS, FTP… or --server-first) that is the sidecar's protocol detection \
            waiting for the client while the client waits for the greeting. Every finding comes \
            with its evidence and the fix for this kernel and mesh.

            Exit status: 0 no finding at or above --fail-on; 1 findings; 2 error. JSON schema \
            ctdoctor.diagnosis.v1 is documented in README under "JSON output".

            Examples:
              ctdoctor diagnose
              ctdoctor diagnose --netns 4242 --format json
              ctdoctor diagnose --sidecar linkerd --fail-on error
              ctdoctor diagnose --stall-after 30s --server-first 7000/legacy-rpc
            """
    )

    @OptionGroup var source: DiagnosisSource
    @OptionGroup var output: OutputOptions
    @OptionGroup var diagnosis: DiagnosisArguments


    func run() throws {
        try source.diagnose(output: output, arguments: diagnosis, sections: .all)
    }
}

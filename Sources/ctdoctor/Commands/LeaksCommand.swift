import ArgumentParser
import Diagnosis
import KernelIO
import Live
import Rendering

struct LeaksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leaks",
        abstract: "List sidecar sockets stuck in FIN_WAIT2 after a half-close: leaked, at risk or healthy.",
        discussion: """
            The leak part of diagnose: each FIN_WAIT2 socket on a capture port with its flow's \
            conntrack entry (or its absence), the app's end of the flow (none when several app \
            sockets share its port and conntrack no longer says which dialled through the \
            proxy), the original destination, the owning process, its idle time and when the \
            proxy's idle timeout will close it. Exit status as diagnose; JSON schema ctdoctor.leaks.v1.

            --reap destroys the sockets classified leaked (SOCK_DESTROY over sock_diag; needs \
            CAP_NET_ADMIN), and nothing else: each is read again right before, by its tuple and \
            cookie, and must still be the same socket (inode, cookie), in FIN_WAIT2 on a capture \
            port, without a conntrack entry, idle at least --min-idle (default 120s). Without \
            --yes it is a dry run that says what it would destroy. Every action is logged on \
            standard error. The proxy sees ECONNABORTED on that connection and closes it. Exit \
            0 when every qualifying socket was destroyed (or none qualified), 1 when some remain \
            (dry run, or skipped), 2 when a destroy failed. JSON schema ctdoctor.reap.v1.

            Examples:
              ctdoctor leaks
              ctdoctor leaks --netns 4242 --idle-timeout 30m --format json
              ctdoctor leaks --netns 4242 --reap              # dry run
              ctdoctor leaks --netns 4242 --reap --yes --min-idle 10m
            """
    )

    @OptionGroup var source: DiagnosisSource
    @OptionGroup var output: OutputOptions
    @OptionGroup var diagnosis: DiagnosisArguments
    @OptionGroup(title: "Reclaiming leaked sockets") var reap: ReapOptions

    func validate() throws {
        try reap.validate(sweep: source.sweep, inputs: source.inputs)
    }

    func run() throws {
        if reap.reap { return try runReap(reap, namespace: source.namespace, output: output, arguments: diagnosis) }
        try source.diagnose(output: output, arguments: diagnosis, sections: [.findings, .leaks])
    }
}

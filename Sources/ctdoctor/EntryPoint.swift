import ArgumentParser
import Glibc
import Logging
import NetCore
import SystemPackage

/// The root command: lists the subcommands; each lives in its own file.
struct CTDoctor: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "ctdoctor",
        abstract: "Find the connection failures that service-mesh sidecars cause through Linux conntrack.",
        discussion: """
            Reads the conntrack table (netlink) and TCP sockets (sock_diag, /proc/net/tcp) of a \
            network namespace and lists them.

            Exit status: 0 success; 1 findings at or above the --fail-on severity (diagnose); \
            2 usage, input or permission error. Errors are one line on standard error.

            Examples:
              ctdoctor conntrack --dnat-only
              ctdoctor sockets --state FIN_WAIT2 --processes --netns 4242
            """,
        version: version,
        subcommands: [
            DiagnoseCommand.self, LeaksCommand.self, CollisionsCommand.self, LintCommand.self, ConntrackCommand.self,
            SocketsCommand.self, SnapshotCommand.self, PressureCommand.self, WatchCommand.self, ExportCommand.self, LabCommand.self,
        ]
    )
}

/// Exit statuses, documented in README and ctdoctor(1).
enum ExitStatus {
    static let success: Int32 = 0
    /// diagnose found something at or above --fail-on.
    static let findings: Int32 = 1
    /// Usage, input or permission error.
    static let error: Int32 = 2
}

@main
enum Main {
    static func main() {
        LoggingSystem.bootstrap { label in ConsoleLogHandler(label: label) }
        Cleanup.installSignalHandlers()
        do {
            var command = try CTDoctor.parseAsRoot()
            try command.run()
        } catch {
            finish(with: error)
        }
        Cleanup.runAll()
        exitIfOutputFailed()
    }

    /// A run whose output could not be written has failed, whatever it found.
    static func exitIfOutputFailed() {
        guard let errno = Console.outputFailure.withLock({ $0 }) else { return }
        if errno == .brokenPipe { Console.exit(128 + SIGPIPE) }
        Console.writeError("ctdoctor: error: cannot write to standard output: \(errno.description) (\(errno.symbol))\n")
        Console.exit(ExitStatus.error)
    }

    /// Maps every way a run can end to the documented exit statuses: ArgumentParser's
    /// own codes (64 for usage errors) are not ours.
    static func finish(with error: any Error) -> Never {
        Cleanup.runAll()
        exitIfOutputFailed()
        if let exit = error as? ExitCode { Console.exit(exit.rawValue) }
        // The reader of our output went away (`| head`): stop quietly, as SIGPIPE would.
        if let closed = error as? Errno, closed == .brokenPipe { Console.exit(128 + SIGPIPE) }
        let code = CTDoctor.exitCode(for: error)
        if code == .success {
            Console.writeOut(CTDoctor.fullMessage(for: error) + "\n")
            exitIfOutputFailed()
            Console.exit(ExitStatus.success)
        }
        if code == .validationFailure {
            // One line, as every other error: ArgumentParser's own message adds the usage
            // block, which scripts reading standard error would have to strip.
            let message = CTDoctor.message(for: error).split(whereSeparator: \.isNewline).first.map(String.init) ?? "invalid usage"
            let trimmed = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
            Console.writeError("ctdoctor: error: \(trimmed.terminalSafe) (see ctdoctor --help)\n")
            Console.exit(ExitStatus.error)
        }
        Console.writeError("ctdoctor: error: \(oneLine(error))\n")
        Console.exit(ExitStatus.error)
    }

    /// Errors print as one line, whatever their description holds: line breaks become
    /// spaces and other control characters (a file name's, a process name's) escapes.
    static func oneLine(_ error: any Error) -> String {
        String(describing: error).split(whereSeparator: \.isNewline).joined(separator: " ").terminalSafe
    }
}

import Foundation

/// A python3 process inside a test's namespace that holds the sockets a test needs (a
/// listener a sweep must attribute, a socket that is only bound), started once and
/// waited for until it prints `word`: a test requires `isReady` instead of sleeping a
/// guess, and fails instead of hanging when the holder never gets there.
public final class SocketHolder {
    public let process = Process()
    public let isReady: Bool

    /// `environment` is passed through env(1), as a pod's variables are (HOSTNAME=...).
    public init(inNamespace namespace: String, environment: [String] = [], script: String, saying word: String) throws {
        try TestProgram.check("python3")
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace, "env"] + environment + ["python3", "-c", script]
        process.standardInput = FileHandle.nullDevice
        let ready = Pipe()
        process.standardOutput = ready
        try process.run()
        isReady = Shell.firstLine(from: ready, within: 30) == word
    }

    public var pid: Int32 { process.processIdentifier }

    /// Kills the holder and waits for it (once; `deinit` does it too). SIGKILL: the test
    /// runner's threads block SIGTERM, and children inherit the mask.
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

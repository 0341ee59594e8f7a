import Foundation

/// What a command printed and how it ended.
public struct CommandResult: Sendable {
    public var status: Int32
    public var standardOutput: String
    public var standardError: String

    public var succeeded: Bool { status == 0 }
}

public struct CommandFailed: Error, CustomStringConvertible {
    public var command: [String]
    public var result: CommandResult
    public var description: String {
        "`\(command.joined(separator: " "))` exited \(result.status): \(result.standardError)"
    }
}

/// Runs external commands (ip, iptables, conntrack, ss) for tests: only those
/// `TestProgram` declares, so none is missing on a fresh machine.
public enum Shell {
    /// `ctdoctor lab` runs one at a time across the suite. Each one first removes the
    /// namespaces of labs whose ctdoctor is gone, so two at once race for the same stale
    /// namespaces, and the test that plants them (`aLabRemovesTheNamespacesOfLabsThatWereKilled`)
    /// saw another test's lab remove them and say so instead of its own.
    static let labs = NSLock()

    static func isLab(_ arguments: [String]) -> Bool {
        guard let lab = arguments.firstIndex(of: "lab"), lab > 0 else { return false }
        return arguments[lab - 1] == Binary.ctdoctor
    }

    /// Runs `arguments` (looked up in PATH) and returns what it printed.
    public static func run(_ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
        try arguments.first.map(TestProgram.check)
        if isLab(arguments) { labs.lock() }
        defer { if isLab(arguments) { labs.unlock() } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both pipes concurrently so a chatty command cannot fill one and block.
        let errorData = Locked(Data())
        let reader = Thread { errorData.set(error.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        return CommandResult(
            status: process.terminationStatus,
            standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorData.get(), as: UTF8.self))
    }

    /// The first line a started process writes to `pipe`, or nil when it writes none
    /// within `seconds` (or closes the pipe first): how a test waits for a helper to be
    /// ready instead of sleeping a guess, and fails instead of hanging when it never is.
    public static func firstLine(from pipe: Pipe, within seconds: Double) -> String? {
        let fd = pipe.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(seconds)
        var line: [UInt8] = []
        while Date() < deadline {
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 100) >= 0 else { return nil }
            guard ready.revents != 0 else { continue }
            var byte: UInt8 = 0
            guard read(fd, &byte, 1) == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return nil
    }

    /// Runs and throws unless the command succeeds.
    @discardableResult
    public static func check(_ arguments: [String]) throws -> String {
        let result = try run(arguments)
        guard result.succeeded else { throw CommandFailed(command: arguments, result: result) }
        return result.standardOutput
    }
}

/// A value shared between a test thread and a helper thread.
public final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    public init(_ value: Value) { self.value = value }
    public func get() -> Value { lock.withLock { value } }
    public func set(_ newValue: Value) { lock.withLock { value = newValue } }
    public func update<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&value) } }
}

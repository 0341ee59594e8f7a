import Glibc
import Logging
import NetCore
import Synchronization
import SystemPackage

/// Standard output and error, written with swift-system (no Foundation).
enum Console {
    static func writeOut(_ text: String) { write(Array(text.utf8), to: .standardOutput) }
    static func writeError(_ text: String) { write(Array(text.utf8), to: .standardError) }

    /// Writes bytes to standard output; the sink of every streaming renderer.
    static func writeOut(bytes: [UInt8]) throws {
        do {
            _ = try FileDescriptor.standardOutput.writeAll(bytes)
        } catch {
            // Recorded for the exit (see `outputFailure`); the throw stops the renderer.
            outputFailure.withLock { if $0 == nil { $0 = error as? Errno ?? .ioError } }
            throw error
        }
    }

    /// The first failed write to standard output (a full disk, /dev/full, a closed
    /// descriptor): the run then ends with exit 2 and says so, rather than reporting
    /// success over output nobody received.
    static let outputFailure = Mutex<Errno?>(nil)

    private static func write(_ bytes: [UInt8], to descriptor: FileDescriptor) {
        do {
            _ = try descriptor.writeAll(bytes)
        } catch {
            guard descriptor == .standardOutput else { return }
            let errno = error as? Errno ?? .ioError
            outputFailure.withLock { if $0 == nil { $0 = errno } }
        }
    }

    static func exit(_ status: Int32) -> Never { Glibc.exit(status) }

    /// Colour only for a terminal, and never when NO_COLOR is set (no-color.org).
    static var colorful: Bool { isatty(1) == 1 && getenv("NO_COLOR") == nil }

    /// With CTDOCTOR_TRACE=1, prints each collection phase's wall time on standard error.
    static var tracer: (@Sendable (String, Duration) -> Void)? {
        guard getenv("CTDOCTOR_TRACE") != nil else { return nil }
        return { name, duration in
            let microseconds = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
            writeError("ctdoctor: trace: \(name): \(Double(microseconds / 100) / 10) ms\n")
        }
    }
}

/// Prints log records as `ctdoctor: warning: message` on standard error, one line each,
/// so notices (a /proc fallback, an inconsistent dump) read like the errors do.
struct ConsoleLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .notice

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// One record per line: a notice quoting a process name or a file's bytes is escaped.
    func log(event: LogEvent) {
        Console.writeError("ctdoctor: \(event.level): \(event.message.description.terminalSafe)\n")
    }
}

let log = Logger(label: "ctdoctor")

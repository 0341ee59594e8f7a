import Glibc
import KernelIO
import SystemPackage

// The benchmark's own process timing. The product never measures processes, so this
// lives here rather than behind KernelIO's door; it is the only C the benchmark calls
// itself, and only glibc's.

/// How a child process ran: the benchmark times whole processes, as a user would see them.
struct ProcessMeasurement: Sendable {
    var exitStatus: Int32
    var wallSeconds: Double
    var userSeconds: Double
    var systemSeconds: Double
}

/// Runs `arguments` (arguments[0] is looked up in PATH) with standard output and error
/// sent to the given paths, waits, and measures it with wait4(2).
///
/// Peak memory is deliberately not reported: glibc's posix_spawn shares the parent's
/// memory (vfork), and exec records that memory's high-water mark in the child's
/// ru_maxrss, so the child would look as large as its parent. Measure peaks through a
/// small forking intermediary such as GNU time instead.
func runMeasured(
    _ arguments: [String], standardOutputPath: String = "/dev/null", standardErrorPath: String = "/dev/null"
) throws -> ProcessMeasurement {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, standardOutputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, standardErrorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let start = ContinuousClock.now
    let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
    guard spawned == 0 else {
        throw KernelIOError("spawn", subject: arguments[0], errno: Errno(rawValue: spawned))
    }
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 {
        guard errno == EINTR else { throw KernelIOError("wait4", subject: arguments[0], errno: Errno(rawValue: errno)) }
    }
    let elapsed = ContinuousClock.now - start
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    let exited = status & 0x7F == 0
    return ProcessMeasurement(
        exitStatus: exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F),
        wallSeconds: elapsed.inSeconds,
        userSeconds: seconds(usage.ru_utime),
        systemSeconds: seconds(usage.ru_stime)
    )
}

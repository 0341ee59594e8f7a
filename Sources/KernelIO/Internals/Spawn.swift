import CNetfilter
import Glibc
import SystemPackage

func spawnAndMeasure(_ arguments: [String], standardOutputPath: String, standardErrorPath: String) throws -> ProcessMeasurement {
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
    try systemCall("wait4", subject: arguments[0]) { wait4(pid, &status, 0, &usage) }
    let elapsed = ContinuousClock.now - start
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    let exited = status & 0x7F == 0
    return ProcessMeasurement(
        exitStatus: exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F),
        wallSeconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
        userSeconds: seconds(usage.ru_utime),
        systemSeconds: seconds(usage.ru_stime)
    )
}

import CLinux
import Glibc
import NetCore
import SystemPackage

func spawnCapturing(_ arguments: [String], limit: Int) throws -> CapturedOutput? {
    var pipeEnds: [Int32] = [0, 0]
    try systemCall("pipe") { pipe2(&pipeEnds, O_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let spawned = posix_spawnp(&pid, arguments[0], &actions, nil, &argv, environ)
    close(pipeEnds[1])
    defer { close(pipeEnds[0]) }
    guard spawned == 0 else {
        if spawned == ENOENT { return nil }
        throw KernelIOError("spawn", subject: arguments[0], errno: Errno(rawValue: spawned))
    }
    var output: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while output.count < limit {
        let count = chunk.withUnsafeMutableBytes { raw in read(pipeEnds[0], raw.baseAddress, raw.count) }
        if count < 0 && ctd_errno() == EINTR { continue }
        if count <= 0 { break }
        output += chunk[0..<count]
    }
    var status: Int32 = 0
    try systemCall("waitpid", subject: arguments[0]) { waitpid(pid, &status, 0) }
    // posix_spawnp reports a missing program through exit status 127.
    let exited = status & 0x7F == 0
    let code = exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    if code == 127 && output.isEmpty { return nil }
    return CapturedOutput(exitStatus: code, standardOutput: output)
}

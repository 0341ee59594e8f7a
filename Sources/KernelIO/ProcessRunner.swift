/// How a child process ran: for the benchmark, which must time whole processes and
/// their peak memory the way a user would see them.
public struct ProcessMeasurement: Sendable {
    public var exitStatus: Int32
    public var wallSeconds: Double
    public var userSeconds: Double
    public var systemSeconds: Double
}

/// Runs `arguments` (arguments[0] is looked up in PATH) with standard output and error
/// sent to the given paths, waits, and measures it with wait4(2).
///
/// Peak memory is deliberately not reported: glibc's posix_spawn shares the parent's
/// memory (vfork), and exec records that memory's high-water mark in the child's
/// ru_maxrss, so the child would look as large as its parent. Measure peaks through a
/// small forking intermediary such as GNU time instead.
public func runMeasured(
    _ arguments: [String], standardOutputPath: String = "/dev/null", standardErrorPath: String = "/dev/null"
) throws -> ProcessMeasurement {
    try spawnAndMeasure(arguments, standardOutputPath: standardOutputPath, standardErrorPath: standardErrorPath)
}

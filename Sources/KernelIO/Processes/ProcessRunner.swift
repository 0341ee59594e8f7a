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

/// What a command printed, and how it exited.
public struct CapturedOutput: Sendable {
    public var exitStatus: Int32
    public var standardOutput: [UInt8]
}

/// Runs `arguments` (arguments[0] looked up in PATH, never through a shell) and
/// captures its standard output, up to `limit` bytes; standard error is discarded.
///
/// The child inherits the calling thread's namespaces, so inside
/// `NetworkNamespace.run` it sees that namespace (iptables-save, nft).
/// - Returns: nil when the program does not exist.
public func runCapturingOutput(_ arguments: [String], limit: Int = 16 << 20) throws -> CapturedOutput? {
    try spawnCapturing(arguments, limit: limit)
}

/// Every program ctdoctor itself runs, and the Debian package that brings it. A fresh
/// machine has only what scripts/lib.sh installs, so a test checks each package against
/// that list, and `systemProgram(_:)` runs nothing that is not named here.
public enum SystemProgram: String, CaseIterable, Sendable {
    /// The rule listers diagnose runs (RuleInspector).
    case nft
    case iptablesSave = "iptables-save"
    case iptablesLegacySave = "iptables-legacy-save"
    case ip6tablesLegacySave = "ip6tables-legacy-save"
    /// What the lab builds its namespaces with.
    case ip
    case iptables
    case sysctl

    /// The Debian package (bookworm) that installs the program.
    public var debianPackage: String {
        switch self {
        case .nft: "nftables"
        case .iptablesSave, .iptablesLegacySave, .ip6tablesLegacySave, .iptables: "iptables"
        case .ip: "iproute2"
        case .sysctl: "procps"
        }
    }
}

/// The path of a system program (iproute2, iptables, nft) in the system directories,
/// nil when absent or not one of `SystemProgram`'s. ctdoctor runs these as root: a
/// user's PATH never chooses them.
public func systemProgram(_ name: String) -> String? {
    guard SystemProgram(rawValue: name) != nil else { return nil }
    return ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map { "\($0)/\(name)" }.first(where: isExecutable)
}

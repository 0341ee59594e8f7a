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

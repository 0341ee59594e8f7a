import Foundation

/// Every program the tests run, by name, and the Debian package that brings it: a fresh
/// machine has only what scripts/lib.sh installs (or what Debian marks essential), so
/// `Shell` refuses a program missing here and a test checks each package with dpkg -S.
public enum TestProgram {
    public static let packages: [String: String] = [
        // Packet filter, namespaces and the tables ctdoctor is compared with.
        "ip": "iproute2", "ss": "iproute2", "iptables": "iptables", "ip6tables": "iptables", "iptables-save": "iptables",
        "nft": "nftables", "conntrack": "conntrack", "sysctl": "procps", "ping": "iputils-ping",
        // Privilege, tracing and measuring.
        "setpriv": "util-linux", "unshare": "util-linux", "nsenter": "util-linux", "strace": "strace", "time": "time",
        // Checkers of what ctdoctor writes.
        "python3": "python3", "groff": "groff-base", "jq": "jq", "readelf": "binutils", "xz": "xz-utils", "promtool": "prometheus",
        // The monitoring stack watch feeds.
        "prometheus": "prometheus", "prometheus-node-exporter": "prometheus-node-exporter",
        // Essential packages, present on every Debian system.
        "sh": "dash", "bash": "bash", "env": "coreutils", "cp": "coreutils", "mknod": "coreutils", "timeout": "coreutils",
        "true": "coreutils", "cat": "coreutils", "sleep": "coreutils", "touch": "coreutils", "mkfifo": "coreutils", "chroot": "coreutils", "tar": "tar", "gzip": "gzip",
    ]

    /// The package behind `program` (a name or a path outside the repository); nil when
    /// it is not declared. Programs built from the repository (ctdoctor, the bench,
    /// scripts) need none.
    public static func package(of program: String) -> String? {
        packages[URL(fileURLWithPath: program).lastPathComponent]
    }

    /// Whether `program` is the project's own (ctdoctor, the bench, a script or a copy of
    /// one a test made): an absolute path outside the system's program directories.
    public static func isProjects(_ program: String) -> Bool {
        program.hasPrefix("/") && !["/usr/", "/bin/", "/sbin/"].contains { program.hasPrefix($0) }
    }

    /// Throws `Undeclared` unless `program` is the project's own or declared.
    public static func check(_ program: String) throws {
        guard isProjects(program) || package(of: program) != nil else { throw Undeclared(program: program) }
    }

    public struct Undeclared: Error, CustomStringConvertible {
        public var program: String
        public var description: String {
            "the tests ran \(program), which TestProgram.packages does not name: declare its Debian package (and install it in scripts/lib.sh)"
        }
    }
}

import SystemPackage

/// Reads files under a /proc tree whose root is injectable, so tests and offline replay
/// can point it at a captured copy (iproute2 honours PROC_ROOT the same way).
///
/// Per-namespace files are read through `thread-self/net`: /proc/self/net follows the
/// process's main thread, which stays in the original namespace while a
/// `NetworkNamespace.run` thread has entered another.
public struct ProcFS: Sendable {
    public let root: String

    public init(root: String = "/proc") {
        self.root = root
    }

    /// This process's PID as this procfs numbers it (its `self` link): in another PID
    /// namespace, or a copied tree, it differs from getpid().
    public var selfPID: Int32? { (try? readLink("\(root)/self")).flatMap { Int32($0) } }

    /// The path of a per-namespace file such as "tcp" or "nf_conntrack".
    public func netPath(_ name: String) -> String { "\(root)/thread-self/net/\(name)" }

    /// The path of a sysctl such as "net/netfilter/nf_conntrack_max".
    public func sysctlPath(_ name: String) -> String { "\(root)/sys/\(name)" }

    /// Reads a whole file. Procfs files report size 0, so this reads until EOF.
    /// - Throws: `KernelIOError` naming the path and the errno (ENOENT, EACCES, EISDIR...),
    ///   and for anything but a regular file (a FIFO, a device).
    public func read(_ path: String, limit: Int = 1 << 30) throws -> [UInt8] {
        try readWholeFile(path, limit: limit)
    }

    /// Reads a file of a process's own filesystem (`path` relative to its root, such as
    /// "etc/hostname") as that process sees it: its symlinks resolve inside its root,
    /// never into the node's, and only a regular file is read. For files a tenant
    /// controls.
    public func readInRoot(of pid: Int32, _ path: String, limit: Int) throws -> [UInt8] {
        try readFileInRoot("\(root)/\(pid)/root", path, limit: limit)
    }

    public func readNet(_ name: String) throws -> [UInt8] {
        try read(netPath(name))
    }

    /// A sysctl's value without its trailing newline.
    public func readSysctl(_ name: String) throws -> String {
        let bytes = try read(sysctlPath(name), limit: 1 << 16)
        return String(decoding: bytes, as: UTF8.self).trimmingTrailingWhitespace()
    }

    /// Names in a directory, without "." and "..".
    public func list(_ path: String) throws -> [String] {
        try listDirectory(path)
    }

    /// The target of a symbolic link (for /proc/PID/fd/N: "socket:[inode]").
    public func readLink(_ path: String) throws -> String {
        try readSymbolicLink(path)
    }

    public func exists(_ path: String) -> Bool { fileExists(path) }

    /// The inode `path` resolves to; nil when it cannot be stat'ed.
    public func inode(_ path: String) -> UInt64? { inodeNumber(path) }
}

/// Reads a regular file into memory, for inputs given on the command line; a FIFO, a
/// device or a directory is refused with what it is.
public func readFile(_ path: String, limit: Int = 1 << 30) throws -> [UInt8] {
    try readWholeFile(path, limit: limit)
}

/// Standard input to its end, from descriptor 0 rather than by opening /dev/stdin, which
/// a chroot or a minimal image may lack and which cannot be opened when standard input
/// is a socket (as under some `kubectl exec -i` and ssh sessions).
public func readStandardInput(limit: Int = 1 << 30) throws -> [UInt8] {
    try readToEnd(0, subject: "standard input", limit: limit)
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var text = Substring(self)
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}

/// What is at a path, for inputs given on the command line.
public enum FileKind: Sendable, Equatable {
    case regular
    case directory
    case missing
    /// A device, socket, FIFO…: refused as input (give - for standard input instead).
    case other
}

/// A file's kind and identity (device and inode), nil when it cannot be stat'ed.
public struct FileIdentity: Sendable, Hashable {
    public var kind: FileKind
    public var device: UInt64
    public var inode: UInt64
}

public func fileIdentity(_ path: String) -> FileIdentity? { statIdentity(path) }

/// Whether the file is gone (ENOENT, ESRCH), as opposed to one that cannot be looked at.
public func nothingIsAt(_ path: String) -> Bool { statFindsNothing(path) }

/// The names in a directory, without "." and "..".
public func directoryEntries(_ path: String) throws -> [String] { try listDirectory(path) }

/// Replaces the file at `path` with `bytes` in one rename (see `replaceFileAtomically`):
/// for files that other programs read while ctdoctor rewrites them.
public func writeFileAtomically(_ bytes: [UInt8], to path: String, permissions: FilePermissions = [.ownerReadWrite, .groupRead, .otherRead]) throws {
    try replaceFileAtomically(path, with: bytes, permissions: permissions)
}

/// gzip-compresses `bytes` (zlib).
public func gzipCompress(_ bytes: [UInt8]) throws -> [UInt8] { try Gzip.compress(bytes) }

/// Whether `bytes` start with gzip's magic number.
public func isGzip(_ bytes: [UInt8]) -> Bool { bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B }

/// Decompresses gzip data, refusing output beyond `limit` bytes.
/// - Throws: an error whose description says what is wrong (truncated, not gzip, too big).
public func gzipDecompress(_ bytes: [UInt8], limit: Int = 1 << 30) throws -> [UInt8] { try Gzip.decompress(bytes, limit: limit) }

import CLinux
import Glibc
import SystemPackage

func readWholeFile(_ path: String, limit: Int) throws -> [UInt8] {
    let fd = try openRegularFile(path)
    defer { close(fd) }
    // A regular file says its size: refuse one past the limit before reading a byte, and
    // read the rest into one buffer of its size instead of doubling up to it.
    var status = stat()
    var expected = 0
    if fstat(fd, &status) == 0 {
        guard Int(status.st_size) <= limit else {
            throw KernelIOError("read", subject: "\(path) (larger than \(limit) bytes)", errno: .fileTooLarge)
        }
        expected = Int(status.st_size)
    }
    return try readToEnd(fd, subject: path, limit: limit, expected: expected)
}

/// Flags for every file ctdoctor reads: a FIFO planted where a file is expected must not
/// block the open (O_NONBLOCK), and a terminal must not become the controlling one.
private let readFlags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY

/// Opens `path` to read it, refusing anything but a regular file: a FIFO would hang the
/// read, /dev/zero would never end, a directory fails later with a worse message.
/// Procfs and sysfs files are regular files.
func openRegularFile(_ path: String) throws -> Int32 {
    let fd = try systemCall("open", subject: path) { ctd_openat(AT_FDCWD, path, readFlags) }
    do {
        try requireRegularFile(fd, subject: path)
    } catch {
        close(fd)
        throw error
    }
    return fd
}

/// What kind of file a descriptor is, in words: "a FIFO", "a character device"…
func fileTypeName(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFREG: "a regular file"
    case S_IFDIR: "a directory"
    case S_IFIFO: "a FIFO"
    case S_IFCHR: "a character device"
    case S_IFBLK: "a block device"
    case S_IFSOCK: "a socket"
    case S_IFLNK: "a symbolic link"
    default: "not a regular file"
    }
}

func requireRegularFile(_ fd: Int32, subject path: String) throws {
    var status = stat()
    try systemCall("stat", subject: path) { fstat(fd, &status) }
    guard status.st_mode & S_IFMT == S_IFREG else {
        let errno: Errno = status.st_mode & S_IFMT == S_IFDIR ? .isDirectory : .invalidArgument
        throw KernelIOError("refusing to read", subject: "\(path) (\(fileTypeName(status.st_mode)), not a regular file)", errno: errno)
    }
}

/// Reads `relativePath` inside the directory tree rooted at `root` (a container's root,
/// /proc/PID/root) as that container sees it: absolute symlinks and ".." resolve inside
/// `root`, never into ctdoctor's own filesystem (openat2 RESOLVE_IN_ROOT), magic links
/// (/proc/self/…) are refused, and only a regular file of at most `limit` bytes is read.
///
/// Kernels before 5.6 have no openat2: there each component is opened without following
/// symbolic links, so a tenant's symlink is refused rather than resolved.
func readFileInRoot(_ root: String, _ relativePath: String, limit: Int) throws -> [UInt8] {
    let subject = "\(root)/\(relativePath)"
    // Opening the root itself follows /proc/PID/root, the one magic link meant here.
    let rootFD = try systemCall("open", subject: root) { ctd_openat(AT_FDCWD, root, ctd_o_path | ctd_o_directory | O_CLOEXEC) }
    defer { close(rootFD) }
    let flags = UInt64(UInt32(bitPattern: readFlags))
    var fd = ctd_openat2(rootFD, relativePath, flags, ctd_resolve_in_root | ctd_resolve_no_magiclinks)
    if fd < 0 && lastErrno() == .noFunction {
        fd = try openWithoutFollowing(rootFD, relativePath, subject: subject)
    } else if fd < 0 {
        throw KernelIOError("open", subject: subject, errno: lastErrno())
    }
    defer { close(fd) }
    try requireRegularFile(fd, subject: subject)
    return try readToEnd(fd, subject: subject, limit: limit)
}

/// The walk for kernels without openat2: one component at a time, O_NOFOLLOW each.
private func openWithoutFollowing(_ rootFD: Int32, _ relativePath: String, subject: String) throws -> Int32 {
    let components = relativePath.split(separator: "/").map(String.init)
    guard !components.isEmpty, !components.contains("..") else {
        throw KernelIOError("open", subject: subject, errno: .invalidArgument)
    }
    var directory = dup(rootFD)
    for (index, component) in components.enumerated() {
        let last = index == components.count - 1
        let flags = last ? readFlags | ctd_o_nofollow : ctd_o_path | ctd_o_directory | ctd_o_nofollow | O_CLOEXEC
        let next = ctd_openat(directory, component, flags)
        let failure = lastErrno()
        close(directory)
        guard next >= 0 else { throw KernelIOError("open", subject: subject, errno: failure) }
        directory = next
    }
    return directory
}

/// Reads until EOF into one array, growing it in place so bytes are copied once.
/// - Parameter expected: the size the file says it has (0: unknown); a file that grows
///   meanwhile is still read to its end, up to `limit`.
func readToEnd(_ fd: Int32, subject path: String, limit: Int, expected: Int = 0) throws -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: max(64 * 1024, min(expected + 1, limit)))
    var filled = 0
    while true {
        if filled == buffer.count {
            guard buffer.count < limit else {
                throw KernelIOError("read", subject: "\(path) (larger than \(limit) bytes)", errno: .fileTooLarge)
            }
            buffer.append(contentsOf: repeatElement(0, count: buffer.count))
        }
        let count = try buffer.withUnsafeMutableBytes { (raw) throws in
            try systemCall("read", subject: path) {
                read(fd, raw.baseAddress! + filled, raw.count - filled)
            }
        }
        if count == 0 { break }
        filled += count
    }
    buffer.removeSubrange(filled...)
    return buffer
}

func listDirectory(_ path: String) throws -> [String] {
    guard let directory = opendir(path) else {
        throw KernelIOError("list directory", subject: path, errno: lastErrno())
    }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

func readSymbolicLink(_ path: String) throws -> String {
    var buffer = [UInt8](repeating: 0, count: 256)
    let count = try buffer.withUnsafeMutableBytes { (raw) throws in
        try systemCall("read link", subject: path) {
            readlink(path, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
        }
    }
    return String(decoding: buffer[0..<count], as: UTF8.self)
}

func isExecutable(_ path: String) -> Bool { access(path, X_OK) == 0 }

/// Whether nothing is at `path`: ENOENT, or ESRCH from a /proc entry whose process is
/// exiting. Any other failure (EACCES, ELOOP, ENOMEM) says nothing of the file.
func statFindsNothing(_ path: String) -> Bool {
    var status = stat()
    guard stat(path, &status) != 0 else { return false }
    return errno == ENOENT || errno == ESRCH
}

/// What `path` resolves to and where it lives, for walks that must notice a directory
/// seen before (a symlink loop) or another filesystem (a mount inside the tree).
func statIdentity(_ path: String) -> FileIdentity? {
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    let kind: FileKind = switch status.st_mode & S_IFMT {
    case S_IFREG: .regular
    case S_IFDIR: .directory
    default: .other
    }
    return FileIdentity(kind: kind, device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
}

/// Writes `bytes` to a new file beside `path` and renames it over `path`: a reader (a
/// Prometheus textfile scrape) sees the old file or the new one, never half of one.
/// The target must not be a symbolic link — a cron job running as root must not be
/// steered into overwriting whatever the link points at — and the temporary file is
/// created exclusively without following links.
func replaceFileAtomically(_ path: String, with bytes: [UInt8], permissions: FilePermissions) throws {
    var status = stat()
    if lstat(path, &status) == 0 {
        guard status.st_mode & S_IFMT != S_IFLNK else {
            throw KernelIOError("refusing to write through the symbolic link", subject: path, errno: .tooManySymbolicLinkLevels)
        }
        guard status.st_mode & S_IFMT != S_IFDIR else {
            throw KernelIOError("refusing to replace the directory", subject: path, errno: .isDirectory)
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw KernelIOError("refusing to replace the non-regular file", subject: path, errno: .fileExists)
        }
    }
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    removeOrphanedTemporaries(of: name, in: directory)
    // Random, not just the PID: in containers every run may be PID 1, and a temporary file
    // left by a run killed mid-write must not block the next one (nor another writer).
    let temporary = "\(directory)/.\(name).\(getpid()).\(String(UInt64.random(in: 0...UInt64.max), radix: 36)).tmp"
    let descriptor: FileDescriptor
    do {
        descriptor = try FileDescriptor.open(
            temporary, .writeOnly, options: [.create, .exclusiveCreate, .noFollow, .closeOnExec], permissions: permissions)
    } catch let errno as Errno {
        throw KernelIOError("create", subject: temporary, errno: errno)
    }
    do {
        defer { try? descriptor.close() }
        do {
            _ = try descriptor.writeAll(bytes)
        } catch let errno as Errno {
            throw KernelIOError("write", subject: temporary, errno: errno)
        }
        try systemCall("flush", subject: temporary) { fsync(descriptor.rawValue) }
        try systemCall("rename onto", subject: path) { rename(temporary, path) }
    } catch {
        unlink(temporary)
        throw error
    }
}

/// How old a temporary file beside a target must be before it counts as orphaned: a
/// write takes milliseconds, so one this old belongs to a run killed mid-write (SIGKILL,
/// an OOM kill, a node reboot), which no later run would otherwise remove.
let orphanedTemporaryAge: Int = 600

/// Removes `.NAME.*.tmp` files in `directory` older than `orphanedTemporaryAge`: regular
/// files only, never through a symbolic link.
func removeOrphanedTemporaries(of name: String, in directory: String) {
    guard let entries = try? listDirectory(directory) else { return }
    let prefix = ".\(name)."
    let now = time(nil)
    for entry in entries where entry.hasPrefix(prefix) && entry.hasSuffix(".tmp") {
        let path = "\(directory)/\(entry)"
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG,
            now - status.st_mtim.tv_sec > orphanedTemporaryAge
        else { continue }
        unlink(path)
    }
}

/// The inode a path resolves to (for a namespace file: the namespace's identity).
func inodeNumber(_ path: String) -> UInt64? {
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    return UInt64(status.st_ino)
}

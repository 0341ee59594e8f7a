import CNetfilter
import Glibc
import SystemPackage

func readWholeFile(_ path: String, limit: Int) throws -> [UInt8] {
    let fd = try openReadOnly(path)
    defer { close(fd) }
    return try readToEnd(fd, subject: path, limit: limit)
}

/// Reads until EOF into one array, growing it in place so bytes are copied once.
func readToEnd(_ fd: Int32, subject path: String, limit: Int) throws -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: 64 * 1024)
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

/// open(2) is variadic and so not importable; swift-system's wrapper retries EINTR.
func openReadOnly(_ path: String) throws -> Int32 {
    do {
        return try FileDescriptor.open(path, .readOnly, options: .closeOnExec).rawValue
    } catch let errno as Errno {
        throw KernelIOError("open", subject: path, errno: errno)
    }
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

func statKind(_ path: String) -> FileKind {
    var status = stat()
    guard stat(path, &status) == 0 else { return .missing }
    switch status.st_mode & S_IFMT {
    case S_IFREG: return .regular
    case S_IFDIR: return .directory
    default: return .other
    }
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

/// The inode a path resolves to (for a namespace file: the namespace's identity).
func inodeNumber(_ path: String) -> UInt64? {
    var status = stat()
    guard stat(path, &status) == 0 else { return nil }
    return UInt64(status.st_ino)
}

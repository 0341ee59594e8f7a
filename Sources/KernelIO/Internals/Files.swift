import CNetfilter
import Glibc
import SystemPackage

/// Reads until EOF into one array, growing it in place so bytes are copied once.
func readWholeFile(_ path: String, limit: Int) throws -> [UInt8] {
    let fd = try openReadOnly(path)
    defer { close(fd) }
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

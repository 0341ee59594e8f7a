import Netlink
import SystemPackage

/// A system call that failed, with what ctdoctor was doing and the errno it got.
///
/// `description` is the one-line message users see: the operation, the path or object
/// when there is one, and the C error name to search for.
public struct KernelIOError: SystemCallFailure, Equatable, CustomStringConvertible {
    public var operation: String
    public var subject: String?
    public var errno: Errno

    public init(_ operation: String, subject: String? = nil, errno: Errno) {
        self.operation = operation
        self.subject = subject
        self.errno = errno
    }

    public var description: String {
        let what = subject.map { "\(operation) \($0)" } ?? operation
        return "\(what): \(errno.description) (\(errno.symbol))"
    }
}

import CLinux
import Netlink
import SystemPackage

/// The one door to C for calls that return -1 and set errno: retries EINTR and turns
/// failure into a `KernelIOError` naming the operation (swift-system's
/// `valueOrErrno`/`retryOnInterrupt` pattern).
@discardableResult
func systemCall<Result: FixedWidthInteger>(
    _ operation: @autoclosure () -> String,
    subject: @autoclosure () -> String? = nil,
    _ call: () -> Result
) throws -> Result {
    while true {
        let result = call()
        if result != -1 { return result }
        let code = ctd_errno()
        if code == EINTR { continue }
        throw KernelIOError(operation(), subject: subject(), errno: Errno(rawValue: code))
    }
}

/// The errno of the last failed call on this thread.
func lastErrno() -> Errno { Errno(rawValue: ctd_errno()) }

import Netlink

/// A failure a command reports in one line, naming its cause; `cause` keeps the error it
/// was raised for, so that exporting and exit-status code can still ask its errno.
struct CommandFailure: WrapsCause, CustomStringConvertible {
    var description: String
    var cause: (any Error)?

    init(_ description: String, cause: (any Error)? = nil) {
        self.description = description
        self.cause = cause
    }
}

import KernelIO
import NetCore
import Netlink
import Sockets
import SystemPackage

/// Reads one socket again and destroys it, each by its 4-tuple and cookie (see
/// `SockDiagCodec.socketRequest`), so what is destroyed is the very socket that was
/// verified — never the listener on the same port, nor a newer connection that reuses
/// the tuple.
public struct SocketReaper: Sendable {
    public typealias TransportFactory = @Sendable () throws -> any NetlinkTransport
    let makeTransport: TransportFactory

    public init(transportFactory: @escaping TransportFactory) { makeTransport = transportFactory }

    public init(namespace: NetworkNamespace) {
        self.init(transportFactory: { try namespace.run { try NetlinkSocket(bus: .sockDiag) } })
    }

    public enum Failure: WrapsCause, Sendable, CustomStringConvertible, Equatable {
        /// The socket has no cookie to name it by.
        case noCookie
        /// EPERM: SOCK_DESTROY needs CAP_NET_ADMIN in the socket's network namespace.
        case notPermitted
        /// EOPNOTSUPP: the kernel was built without CONFIG_INET_DIAG_DESTROY.
        case unsupported
        /// Any other error of `operation` (a lookup or SOCK_DESTROY), kept as it came.
        case failed(operation: String, cause: any Error & Sendable)

        public var description: String {
            switch self {
            case .noCookie: "the socket has no sock_diag cookie to name it by"
            case .notPermitted: "SOCK_DESTROY refused (EPERM): it needs CAP_NET_ADMIN in the socket's network namespace"
            case .unsupported: "SOCK_DESTROY unsupported (EOPNOTSUPP): the kernel lacks CONFIG_INET_DIAG_DESTROY"
            case .failed(let operation, let cause): "sock_diag \(operation) failed: \(cause)"
            }
        }

        public var cause: (any Error)? {
            if case .failed(_, let cause) = self { return cause }
            return nil
        }

        public static func == (lhs: Failure, rhs: Failure) -> Bool {
            switch (lhs, rhs) {
            case (.noCookie, .noCookie), (.notPermitted, .notPermitted), (.unsupported, .unsupported): true
            case (.failed(let a, let x), .failed(let b, let y)): a == b && "\(x)" == "\(y)"
            default: false
            }
        }
    }

    /// The socket as the kernel has it now, with tcp_info; nil when it is gone (ENOENT)
    /// or the tuple now belongs to another socket (ESTALE).
    public func current(_ socket: TCPSocket) throws(Failure) -> TCPSocket? {
        var found: TCPSocket?
        let gone = try exchange(socket, destroy: false) { buffer, message throws(NetlinkFramingError) in
            if SockDiagCodec.carriesSocket(message) { found = try SockDiagCodec.decode(buffer, message) }
        }
        return gone ? nil : found
    }

    /// Destroys the socket (the kernel aborts it with ECONNABORTED and sends its peer a
    /// RST). Returns false when it was already gone or replaced.
    @discardableResult
    public func destroy(_ socket: TCPSocket) throws(Failure) -> Bool {
        !(try exchange(socket, destroy: true) { _, _ in })
    }

    /// Sends one request and reads until its ACK or error; true when the kernel said the
    /// socket does not exist (ENOENT) or is another one (ESTALE).
    private func exchange(
        _ socket: TCPSocket, destroy: Bool, _ handle: ([UInt8], NetlinkMessage) throws(NetlinkFramingError) -> Void
    ) throws(Failure) -> Bool {
        let sequence = UInt32.random(in: 1...(UInt32.max / 2))
        guard let request = SockDiagCodec.socketRequest(socket, destroy: destroy, sequence: sequence) else { throw .noCookie }
        do {
            let transport = try makeTransport()
            try transport.send(request)
            var buffer = [UInt8](repeating: 0, count: 16 * 1024)
            while true {
                let count = try transport.receive(into: &buffer)
                var reader = NetlinkMessageReader(buffer, count: count)
                while let message = try reader.next() {
                    guard message.sequence == sequence else { continue }
                    if message.type == NetlinkConstant.error {
                        try NetlinkDump.checkErrorMessage(buffer, message)
                        return false
                    }
                    try handle(buffer, message)
                }
            }
        } catch let error as NetlinkKernelError {
            switch error.errno {
            case .noSuchFileOrDirectory, .staleNFSFileHandle: return true
            case .notPermitted, .permissionDenied: throw .notPermitted
            case .notSupported, .notSupportedOnSocket: throw .unsupported
            default: throw .failed(operation: destroy ? "SOCK_DESTROY" : "lookup", cause: error)
            }
        } catch {
            throw .failed(operation: destroy ? "SOCK_DESTROY" : "lookup", cause: error)
        }
    }
}

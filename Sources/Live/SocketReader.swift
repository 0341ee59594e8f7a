import KernelIO
import NetCore
import Netlink
import Sockets
import Synchronization
import SystemPackage

/// What the running kernel has said about sock_diag's requests, remembered across dumps:
/// one kernel serves every namespace, so an export cycle or a node sweep need not be
/// refused the v1 request again in each of them before asking family by family.
public final class SockDiagKernelMemory: Sendable {
    let refusesBothFamilies = Atomic<Bool>(false)

    /// A memory of its own, for a transport that is not this kernel (a test's script).
    public init() {}

    /// The kernel this process runs on.
    public static let thisKernel = SockDiagKernelMemory()
}

/// Why the sockets could not be listed, with the error that said so.
public enum SocketReadError: WrapsCause, Sendable, CustomStringConvertible {
    case unreadable(cause: any Error, while: String)

    public var cause: (any Error)? {
        switch self {
        case .unreadable(let cause, _): cause
        }
    }

    public var description: String {
        switch self {
        case .unreadable(let cause, let doing): "cannot list TCP sockets: \(doing): \(cause)"
        }
    }
}

/// Lists the TCP sockets of one network namespace.
///
/// Uses sock_diag, which adds tcp_info and filters by state in the kernel; falls back to
/// /proc/net/tcp and tcp6 when the kernel lacks inet_diag, and says so.
public struct SocketReader: Sendable {
    public typealias TransportFactory = @Sendable () throws -> any NetlinkTransport
    /// Reads a per-namespace /proc/net file by name ("tcp", "tcp6").
    public typealias NetFileReader = @Sendable (String) throws -> [UInt8]

    /// Names the devices of the given indexes, in the sockets' namespace.
    public typealias DeviceNamer = @Sendable ([UInt32]) -> [UInt32: String]

    let makeTransport: TransportFactory
    let readNetFile: NetFileReader
    let nameDevices: DeviceNamer
    let kernel: SockDiagKernelMemory

    /// - Parameter kernel: what is remembered of the kernel behind `transportFactory`:
    ///   by default a memory of its own (right for a script); pass `.thisKernel` when
    ///   the factory makes real sock_diag sockets.
    public init(
        transportFactory: @escaping TransportFactory, netFileReader: @escaping NetFileReader,
        deviceNamer: @escaping DeviceNamer = { _ in [:] }, kernel: SockDiagKernelMemory = SockDiagKernelMemory()
    ) {
        self.makeTransport = transportFactory
        self.readNetFile = netFileReader
        self.nameDevices = deviceNamer
        self.kernel = kernel
    }

    public init(namespace: NetworkNamespace, procfs: ProcFS = ProcFS()) {
        self.init(
            transportFactory: { try namespace.run { try NetlinkSocket(bus: .sockDiag) } },
            netFileReader: { name in try namespace.run { try procfs.readNet(name) } },
            deviceNamer: { indexes in
                (try? namespace.run {
                    Dictionary(uniqueKeysWithValues: indexes.compactMap { index in NetworkInterface.name(ofIndex: index).map { (index, $0) } })
                }) ?? [:]
            },
            kernel: .thisKernel)
    }

    /// Every TCP socket in `states`, in the kernel's hash order (IPv4 and IPv6 mixed when
    /// both are dumped in one walk).
    /// - Parameter localPorts: keep only sockets with one of these local ports; with
    ///   sock_diag the kernel does the filtering.
    /// - Parameter families: which address families to dump. Both come in one walk of the
    ///   kernel's established-socket hash (`SockDiagScope.bothFamilies`); one alone costs
    ///   the same walk, with fewer sockets copied.
    public func sockets(
        in states: TCPStateSet = .hashed, withInfo: Bool = true, localPorts: [UInt16] = [],
        localPortRange: ClosedRange<UInt16>? = nil, families: [AddressFamily] = AddressFamily.allCases
    ) throws -> ([TCPSocket], SocketSource) {
        var sockets: [TCPSocket] = []
        let source = try forEachSocket(
            in: states, withInfo: withInfo, localPorts: localPorts, localPortRange: localPortRange, families: families
        ) { sockets.append($0) }
        return (sockets, source)
    }

    /// The same sockets as `sockets(…)`, each handed to `body` as the dump decodes it, so
    /// that a listing of half a million sockets holds one at a time. sock_diag's dump is
    /// received on one thread and decoded (and `body` run) on another.
    public func forEachSocket(
        in states: TCPStateSet = .hashed, withInfo: Bool = true, localPorts: [UInt16] = [],
        localPortRange: ClosedRange<UInt16>? = nil, families: [AddressFamily] = AddressFamily.allCases,
        _ body: (TCPSocket) throws -> Void
    ) throws -> SocketSource {
        // What the kernel's filter selects, checked again here: a kernel that ignored the
        // bytecode cannot widen the answer, and the /proc fallback has no filter.
        let wanted: (TCPSocket) -> Bool = { socket in
            states.admits(socket.state) && families.contains(socket.family)
                && (localPorts.isEmpty || localPorts.contains(socket.local.port)) && (localPortRange?.contains(socket.local.port) ?? true)
        }
        do {
            try sockDiagSockets(
                states: states, withInfo: withInfo, localPorts: localPorts, localPortRange: localPortRange, families: families,
                wanted: wanted, body)
            return .sockDiag
        } catch let error as SockDiagUnavailable {
            // sock_diag fails before its first socket (no socket, no handler for IPv4),
            // so nothing was delivered twice.
            for socket in try procSockets(states: states) where wanted(socket) { try body(socket) }
            return .procFile(reason: "sock_diag unavailable (\(error.error)); read /proc/net/tcp and tcp6 instead")
        }
    }

    /// sock_diag cannot answer here (no socket, no tcp_diag handler): the /proc fallback
    /// is taken, and `cause` says why in its notice.
    struct SockDiagUnavailable: WrapsCause {
        var error: any Error
        var cause: (any Error)? { error }
    }

    func sockDiagSockets(
        states: TCPStateSet, withInfo: Bool, localPorts: [UInt16], localPortRange: ClosedRange<UInt16>?, families: [AddressFamily],
        wanted: (TCPSocket) -> Bool, _ body: (TCPSocket) throws -> Void
    ) throws {
        let transport: any NetlinkTransport
        do {
            transport = try makeTransport()
        } catch let error as KernelIOError {
            throw SockDiagUnavailable(error: error)
        }
        var delivered = 0
        // Whether a dump already answered: an IPv6-less kernel refuses AF_INET6 alone, and
        // an IPv4 dump that matched nothing still proves sock_diag works.
        var answered = false
        // Few sockets are bound to a device; each index is named once, in the namespace.
        var deviceNames: [UInt32: String?] = [:]
        var sequence = UInt32.random(in: 1...(UInt32.max / 2))
        var scopes = SockDiagScope.covering(families)[...]
        if scopes == [.bothFamilies], kernel.refusesBothFamilies.load(ordering: .relaxed) { scopes = [.family(.ipv4), .family(.ipv6)] }
        while let scope = scopes.popFirst() {
            sequence &+= 1
            let request = SockDiagCodec.dumpRequest(
                scope, states: states, withInfo: withInfo, sequence: sequence, localPorts: localPorts, localPortRange: localPortRange)
            do {
                _ = try NetlinkDump.runPipelined(transport: transport, request: request, sequence: sequence) { buffer, message in
                    guard SockDiagCodec.carriesSocket(message) else { return }
                    var socket = try SockDiagCodec.decode(buffer, message)
                    guard wanted(socket) else { return }
                    if let index = socket.boundDevice?.index {
                        if deviceNames[index] == nil { deviceNames[index] = .some(nameDevices([index])[index]) }
                        socket.boundDevice?.name = deviceNames[index] ?? nil
                    }
                    delivered += 1
                    try body(socket)
                }
                answered = true
            } catch let error as NetlinkKernelError
                where scope == .bothFamilies && delivered == 0 && Self.v1Refusals.contains(error.errno) {
                // A kernel without the v1 request (or one that refuses it) is asked
                // family by family, as ss asks, from now on.
                kernel.refusesBothFamilies.store(true, ordering: .relaxed)
                scopes = [.family(.ipv4), .family(.ipv6)]
            } catch let error as NetlinkKernelError where Self.refusals.contains(error.errno) {
                // ENOENT: no tcp_diag handler (module missing). An IPv6-less kernel also
                // answers this for AF_INET6 only; keep what IPv4 gave.
                if scope == .family(.ipv6) && answered { continue }
                guard delivered == 0 else { throw SocketReadError.unreadable(cause: error, while: "sock_diag dump failed") }
                throw SockDiagUnavailable(error: error)
            } catch let error as NetlinkKernelError {
                throw SocketReadError.unreadable(cause: error, while: "sock_diag dump failed")
            } catch let error as NetlinkFramingError {
                throw SocketReadError.unreadable(cause: error, while: "sock_diag dump")
            }
        }
    }

    /// What a kernel answers for a request it has no handler for.
    static let refusals: Set<Errno> = [.noSuchFileOrDirectory, .notSupported]
    /// What a kernel may answer the v1 request with where it lacks it or rejects its body.
    static let v1Refusals: Set<Errno> = refusals.union([.invalidArgument])

    /// The /proc/net/tcp{,6} listing alone, without trying sock_diag first.
    public func procSockets(states: TCPStateSet) throws -> [TCPSocket] {
        var sockets: [TCPSocket] = []
        for (name, family) in [("tcp", AddressFamily.ipv4), ("tcp6", .ipv6)] {
            let bytes: [UInt8]
            do {
                bytes = try readNetFile(name)
            } catch let error as KernelIOError where name == "tcp6" && error.errno == .noSuchFileOrDirectory {
                continue  // IPv6 disabled in this kernel
            } catch {
                throw SocketReadError.unreadable(cause: error, while: "reading /proc/net/\(name)")
            }
            try ProcNetTCPParser.forEachSocket(bytes, family: family, source: "/proc/net/\(name)") { socket in
                if states.admits(socket.state) { sockets.append(socket) }
            }
        }
        return sockets
    }
}

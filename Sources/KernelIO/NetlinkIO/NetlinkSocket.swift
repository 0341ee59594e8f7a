import Netlink
import SystemPackage

/// The netlink buses ctdoctor talks to (include/uapi/linux/netlink.h).
public enum NetlinkBus: Int32, Sendable {
    /// NETLINK_ROUTE: rtnetlink, the namespace's interface addresses.
    case route = 0
    /// NETLINK_SOCK_DIAG: socket listings with tcp_info.
    case sockDiag = 4
    /// NETLINK_NETFILTER: ctnetlink, the conntrack table.
    case netfilter = 12
}

/// A bound netlink socket (libmnl underneath). Its failures are `KernelIOError`s, the one
/// errno-carrying error of every system call ctdoctor makes.
///
/// A netlink socket stays in the network namespace it was created in, whichever thread
/// uses it later, so open it inside `NetworkNamespace.run` and use it anywhere. One
/// thread at a time: a dump hands it to its receiving thread while the caller waits.
public final class NetlinkSocket: NetlinkTransport, @unchecked Sendable {
    let handle: MNLHandle
    public let bus: NetlinkBus
    public var portID: UInt32 { handle.portID }

    /// Opens and binds a socket on `bus` in the calling thread's network namespace.
    /// - Parameter receiveBufferBytes: SO_RCVBUF to ask for; nil keeps the default.
    public init(bus: NetlinkBus, receiveBufferBytes: Int? = nil) throws {
        self.bus = bus
        self.handle = try MNLHandle(bus: bus.rawValue)
        if let receiveBufferBytes { try handle.setReceiveBuffer(bytes: receiveBufferBytes) }
    }

    /// The receive buffer size the kernel granted (it reports twice what was asked).
    public var receiveBufferBytes: Int { handle.receiveBufferBytes() }

    public func send(_ message: [UInt8]) throws {
        try handle.send(message)
    }

    public func receive(into buffer: inout [UInt8]) throws -> Int {
        try handle.receive(into: &buffer)
    }

    public func receiveMany(into buffer: inout [UInt8], slotSize: Int) throws -> [Int] {
        try handle.receiveMany(into: &buffer, slotSize: slotSize)
    }

    /// Subscribes to a multicast group of the bus (ctnetlink's NEW, UPDATE, DESTROY
    /// events): the socket then receives what the kernel announces, unasked.
    public func join(group: UInt32) throws {
        try handle.join(group: group)
    }

    /// Has the kernel run `program` on each datagram before queueing it: what it refuses
    /// never reaches this socket (nor fills its buffer). A program longer than cBPF's
    /// 4,096 instructions is refused by the kernel (EINVAL), like a malformed one.
    public func attach(filter program: SocketFilterProgram) throws {
        try handle.attachFilter(program.instructions)
    }

    /// Waits up to `milliseconds` for a datagram; false on timeout. Lets request/reply
    /// exchanges (a GET) fail cleanly instead of blocking forever on a silent kernel.
    public func waitReadable(milliseconds: Int32) throws -> Bool {
        try handle.waitReadable(milliseconds: milliseconds)
    }

    /// Waits up to `milliseconds` for any of `sockets` to have a datagram (or an overrun
    /// to report); the indices of those that do, empty on timeout. One thread watches
    /// every namespace's event socket this way.
    public static func waitAnyReadable(_ sockets: [NetlinkSocket], milliseconds: Int32) throws -> [Int] {
        try pollAnyReadable(sockets.map(\.handle.fd), milliseconds: milliseconds)
    }
}

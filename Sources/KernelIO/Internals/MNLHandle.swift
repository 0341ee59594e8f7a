import CLinux
import Netlink
import SystemPackage

/// Owns one `struct mnl_socket *` and closes it on deinit.
final class MNLHandle: @unchecked Sendable {
    private let socket: OpaquePointer
    let portID: UInt32

    init(bus: Int32) throws {
        guard let socket = mnl_socket_open2(bus, Int32(SOCK_CLOEXEC.rawValue)) else {
            throw KernelIOError("open netlink socket (bus \(bus))", errno: lastErrno())
        }
        guard mnl_socket_bind(socket, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
            let errno = lastErrno()
            mnl_socket_close(socket)
            throw KernelIOError("bind netlink socket (bus \(bus))", errno: errno)
        }
        self.socket = socket
        self.portID = mnl_socket_get_portid(socket)
    }

    deinit { mnl_socket_close(socket) }

    var fd: Int32 { mnl_socket_get_fd(socket) }

    func setReceiveBuffer(bytes: Int) throws {
        var value = Int32(clamping: bytes)
        let size = socklen_t(MemoryLayout<Int32>.size)
        // SO_RCVBUFFORCE passes net.core.rmem_max when we hold CAP_NET_ADMIN; without it
        // fall back to SO_RCVBUF, which the kernel silently caps.
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &value, size) == 0 { return }
        try systemCall("set SO_RCVBUF on netlink socket") { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, size) }
    }

    func receiveBufferBytes() -> Int {
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, &size) == 0 else { return 0 }
        return Int(value)
    }

    func send(_ message: [UInt8]) throws {
        try message.withUnsafeBytes { (raw) throws in
            _ = try systemCall("send netlink request") { mnl_socket_sendto(socket, raw.baseAddress, raw.count) }
        }
    }

    func receive(into buffer: inout [UInt8]) throws -> Int {
        try buffer.withUnsafeMutableBytes { (raw) throws in
            try systemCall("receive netlink reply") { mnl_socket_recvfrom(socket, raw.baseAddress, raw.count) }
        }
    }

    /// recvmmsg with MSG_WAITFORONE: blocks for the first datagram only. A datagram
    /// larger than its slot is an error, not a silently cut reply.
    func receiveMany(into buffer: inout [UInt8], slotSize: Int) throws -> [Int] {
        let slots = buffer.count / slotSize
        precondition(slots > 0, "buffer smaller than one slot")
        var vectors = [iovec](repeating: iovec(), count: slots)
        var headers = [ctd_mmsghdr](repeating: ctd_mmsghdr(), count: slots)
        let received = try buffer.withUnsafeMutableBytes { raw in
            try vectors.withUnsafeMutableBufferPointer { vectors in
                for index in 0..<slots {
                    vectors[index] = iovec(iov_base: raw.baseAddress! + index * slotSize, iov_len: slotSize)
                    headers[index].msg_hdr.msg_iov = vectors.baseAddress! + index
                    headers[index].msg_hdr.msg_iovlen = 1
                }
                return try systemCall("receive netlink replies") {
                    recvmmsg(fd, &headers, UInt32(slots), ctd_msg_waitforone, nil)
                }
            }
        }
        return try headers.prefix(Int(received)).map { header in
            if header.msg_hdr.msg_flags & Int32(MSG_TRUNC) != 0 {
                throw KernelIOError("receive netlink replies: a reply longer than \(slotSize) bytes", errno: .messageTooLong)
            }
            return Int(header.msg_len)
        }
    }

    /// Attaches a classic BPF program (SO_ATTACH_FILTER): the kernel runs it on each
    /// datagram before queueing it. Replaces a filter attached before.
    func attachFilter(_ instructions: [SocketFilterProgram.Instruction]) throws {
        var filters = instructions.map { sock_filter(code: $0.code, jt: $0.jumpIfTrue, jf: $0.jumpIfFalse, k: $0.constant) }
        try filters.withUnsafeMutableBufferPointer { filters in
            var program = sock_fprog(len: UInt16(filters.count), filter: filters.baseAddress)
            try systemCall("attach a socket filter to the netlink socket") {
                setsockopt(fd, SOL_SOCKET, ctd_so_attach_filter, &program, socklen_t(MemoryLayout<sock_fprog>.size))
            }
        }
    }

    /// Joins a multicast group (NETLINK_ADD_MEMBERSHIP): ctnetlink's event groups.
    func join(group: UInt32) throws {
        var value = group
        try systemCall("join netlink group \(group)") {
            setsockopt(fd, 270 /* SOL_NETLINK */, 1 /* NETLINK_ADD_MEMBERSHIP */, &value, socklen_t(MemoryLayout<UInt32>.size))
        }
    }

    func waitReadable(milliseconds: Int32) throws -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return try systemCall("poll netlink socket") { poll(&descriptor, 1, milliseconds) } > 0
    }
}

import CLinux
import Glibc
import NetCore
import SystemPackage

func closeDescriptor(_ fd: Int32) { _ = close(fd) }

func shutdownSocket(_ fd: Int32, write: Bool) -> Int32 {
    shutdown(fd, write ? Int32(SHUT_WR) : Int32(SHUT_RD))
}

func shutdownSocketBoth(_ fd: Int32) -> Int32 {
    shutdown(fd, Int32(SHUT_RDWR))
}

/// Calls `body` with a sockaddr_in/sockaddr_in6 for `endpoint`.
private func withSocketAddress<R>(
    _ endpoint: Endpoint,
    _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R
) throws -> R {
    switch endpoint.address {
    case .v4(let value):
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = endpoint.port.bigEndian
        address.sin_addr.s_addr = value.bigEndian
        return try withUnsafePointer(to: &address) { (pointer) throws in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (raw) throws in
                try body(raw, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    case .v6:
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = endpoint.port.bigEndian
        let bytes = endpoint.address.bytes
        withUnsafeMutableBytes(of: &address.sin6_addr) { raw in
            for index in 0..<16 { raw[index] = bytes[index] }
        }
        return try withUnsafePointer(to: &address) { (pointer) throws in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (raw) throws in
                try body(raw, socklen_t(MemoryLayout<sockaddr_in6>.size))
            }
        }
    }
}

/// Reads a sockaddr_storage back into an endpoint.
private func endpoint(from storage: sockaddr_storage) -> Endpoint? {
    var storage = storage
    switch Int32(storage.ss_family) {
    case AF_INET:
        return withUnsafeBytes(of: &storage) { raw in
            let address = raw.load(as: sockaddr_in.self)
            return Endpoint(.v4(UInt32(bigEndian: address.sin_addr.s_addr)), UInt16(bigEndian: address.sin_port))
        }
    case AF_INET6:
        return withUnsafeBytes(of: &storage) { raw in
            let address = raw.load(as: sockaddr_in6.self)
            let bytes = withUnsafeBytes(of: address.sin6_addr) { Array($0) }
            return Endpoint(IPAddress(networkBytes: bytes)!, UInt16(bigEndian: address.sin6_port))
        }
    default:
        return nil
    }
}

private func family(of endpoint: Endpoint) -> Int32 {
    endpoint.address.family == .ipv4 ? AF_INET : AF_INET6
}

func makeListener(_ endpoint: Endpoint, backlog: Int32, device: String? = nil, v6Only: Bool? = nil) throws -> Int32 {
    let fd = try systemCall("socket") { socket(family(of: endpoint), ctd_sock_stream_cloexec, 0) }
    do {
        var one: Int32 = 1
        try systemCall("set SO_REUSEADDR") {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        if let device {
            var name = Array(device.utf8CString)
            try systemCall("set SO_BINDTODEVICE", subject: device) {
                setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, &name, socklen_t(name.count))
            }
        }
        if let v6Only {
            var flag: Int32 = v6Only ? 1 : 0
            try systemCall("set IPV6_V6ONLY") {
                setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &flag, socklen_t(MemoryLayout<Int32>.size))
            }
        }
        _ = try withSocketAddress(endpoint) { (address, length) throws in
            try systemCall("bind", subject: endpoint.description) { bind(fd, address, length) }
        }
        try systemCall("listen", subject: endpoint.description) { listen(fd, backlog) }
        return fd
    } catch {
        close(fd)
        throw error
    }
}

/// Binds `fd` to `source`. With port 0 and `portByConnect`, IP_BIND_ADDRESS_NO_PORT
/// leaves the port to connect(): the kernel then picks it as for an unbound socket
/// (__inet_hash_connect: a hashed offset per destination, ports of the range's low-end
/// parity first), not as bind() would (the other parity first).
private func bindSource(_ fd: Int32, _ source: Endpoint, portByConnect: Bool) throws {
    var one: Int32 = 1
    try systemCall("set SO_REUSEADDR") {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    if portByConnect && source.port == 0 {
        try systemCall("set IP_BIND_ADDRESS_NO_PORT") {
            setsockopt(fd, Int32(IPPROTO_IP), IP_BIND_ADDRESS_NO_PORT, &one, socklen_t(MemoryLayout<Int32>.size))
        }
    }
    _ = try withSocketAddress(source) { (address, length) throws in
        try systemCall("bind", subject: source.description) { bind(fd, address, length) }
    }
}

/// How a non-blocking connect stood when the probe stopped waiting.
enum ProbeState {
    case connected, refused, pending
}

/// Starts a non-blocking connect from `source` (port picked as connect() picks it),
/// waits up to `waitMilliseconds` for the handshake, and closes the socket. A closed
/// SYN_SENT socket sends nothing, so the probe leaves no connection behind.
func probeConnection(_ endpoint: Endpoint, source: Endpoint, waitMilliseconds: Int32) throws -> (port: UInt16, state: ProbeState) {
    let fd = try systemCall("socket") { socket(family(of: endpoint), ctd_sock_stream_cloexec | ctd_sock_nonblock, 0) }
    defer { close(fd) }
    try bindSource(fd, source, portByConnect: true)
    _ = try withSocketAddress(endpoint) { (address, length) throws in
        if connect(fd, address, length) != 0, lastErrno() != .nowInProgress {
            throw KernelIOError("connect", subject: endpoint.description, errno: lastErrno())
        }
    }
    let port = try socketName(fd, peer: false).port
    var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    let ready = poll(&poller, 1, waitMilliseconds)
    guard ready > 0 else { return (port, .pending) }
    var error: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    try systemCall("get SO_ERROR") { getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) }
    return (port, error == 0 ? .connected : .refused)
}

func makeConnection(_ endpoint: Endpoint, source: Endpoint?, timeoutMilliseconds: Int? = nil, portByConnect: Bool = false) throws -> Int32 {
    let fd = try systemCall("socket") { socket(family(of: endpoint), ctd_sock_stream_cloexec, 0) }
    do {
        if let timeoutMilliseconds {
            var limit = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
            try systemCall("set SO_SNDTIMEO") {
                setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
            }
        }
        if let source { try bindSource(fd, source, portByConnect: portByConnect) }
        _ = try withSocketAddress(endpoint) { (address, length) throws in
            // A blocking connect cut short by SO_SNDTIMEO reports EINPROGRESS.
            if connect(fd, address, length) != 0 {
                let errno = lastErrno()
                if errno == .interrupted || errno == .nowInProgress {
                    throw KernelIOError("connect", subject: endpoint.description, errno: .timedOut)
                }
                throw KernelIOError("connect", subject: endpoint.description, errno: errno)
            }
        }
        return fd
    } catch {
        close(fd)
        throw error
    }
}

/// SO_RCVTIMEO and SO_SNDTIMEO: a blocking read or write gives up (EAGAIN) after this long.
func setIOTimeouts(_ fd: Int32, milliseconds: Int) throws {
    var limit = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
    for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
        try systemCall("set socket timeout") { setsockopt(fd, SOL_SOCKET, option, &limit, socklen_t(MemoryLayout<timeval>.size)) }
    }
}

func acceptConnection(_ fd: Int32) throws -> Int32 {
    try systemCall("accept") { accept4(fd, nil, nil, Int32(SOCK_CLOEXEC.rawValue)) }
}

/// Writes all of `bytes`; past `deadline` (checked between partial writes, each bounded by
/// the socket's SO_SNDTIMEO) gives up with ETIMEDOUT: a peer that reads a byte at a time
/// cannot hold the writer.
func sendAll(_ fd: Int32, _ bytes: [UInt8], deadline: ContinuousClock.Instant? = nil) throws {
    var offset = 0
    while offset < bytes.count {
        if let deadline, ContinuousClock.now >= deadline { throw KernelIOError("send", errno: .timedOut) }
        let sent = try bytes.withUnsafeBytes { (raw) throws in
            try systemCall("send") { send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL)) }
        }
        offset += sent
    }
}

func receiveSome(_ fd: Int32, maximum: Int) throws -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: maximum)
    let count = try buffer.withUnsafeMutableBytes { (raw) throws in
        try systemCall("recv") { recv(fd, raw.baseAddress, raw.count, 0) }
    }
    buffer.removeSubrange(count...)
    return buffer
}

func setLingerZero(_ fd: Int32) throws {
    var value = linger(l_onoff: 1, l_linger: 0)
    try systemCall("set SO_LINGER") { setsockopt(fd, SOL_SOCKET, SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size)) }
}

func pollReadable(_ fd: Int32, milliseconds: Int32) throws -> Bool {
    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return try systemCall("poll") { poll(&descriptor, 1, milliseconds) } > 0
}

/// Which of `descriptors` have something to read, or an error to report (POLLERR: a
/// netlink socket's overrun), within `milliseconds`; their indices.
func pollAnyReadable(_ descriptors: [Int32], milliseconds: Int32) throws -> [Int] {
    var polled = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    let ready = try systemCall("poll") { poll(&polled, nfds_t(polled.count), milliseconds) }
    guard ready > 0 else { return [] }
    return polled.indices.filter { polled[$0].revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 }
}

func socketName(_ fd: Int32, peer: Bool) throws -> Endpoint {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    _ = try withUnsafeMutablePointer(to: &storage) { (pointer) throws in
        try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { (raw) throws in
            if peer {
                try systemCall("getpeername") { getpeername(fd, raw, &length) }
            } else {
                try systemCall("getsockname") { getsockname(fd, raw, &length) }
            }
        }
    }
    guard let endpoint = endpoint(from: storage) else {
        throw KernelIOError(peer ? "getpeername" : "getsockname", errno: .addressFamilyNotSupported)
    }
    return endpoint
}

func originalDestinationOf(_ fd: Int32) throws -> Endpoint {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let local = try socketName(fd, peer: false)
    // SO_ORIGINAL_DST at SOL_IP for IPv4; IP6T_SO_ORIGINAL_DST (same number) at SOL_IPV6.
    let level = local.address.family == .ipv4 ? Int32(IPPROTO_IP) : Int32(IPPROTO_IPV6)
    _ = try withUnsafeMutablePointer(to: &storage) { (pointer) throws in
        try systemCall("getsockopt(SO_ORIGINAL_DST)") { getsockopt(fd, level, ctd_so_original_dst, pointer, &length) }
    }
    guard let endpoint = endpoint(from: storage) else {
        throw KernelIOError("getsockopt(SO_ORIGINAL_DST)", errno: .addressFamilyNotSupported)
    }
    return endpoint
}

func inodeOf(_ fd: Int32) throws -> UInt64 {
    var status = stat()
    try systemCall("fstat") { fstat(fd, &status) }
    return UInt64(status.st_ino)
}

func raiseNoFileLimit(_ wanted: UInt64) -> UInt64 {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    let target = min(wanted, UInt64(limit.rlim_max))
    if UInt64(limit.rlim_cur) < target {
        limit.rlim_cur = rlim_t(target)
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
    return UInt64(limit.rlim_cur)
}

/// if_indextoname(3) in the calling thread's network namespace; nil for an index no
/// device has (it went away, or belongs to another namespace).
func interfaceNameOf(index: UInt32) -> String? {
    var buffer = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
    guard if_indextoname(index, &buffer) != nil else { return nil }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A socket that sends datagrams: UDP (`SOCK_DGRAM`) or raw IPv4 packets of one protocol
/// whose header the kernel writes (`SOCK_RAW`), for labs that make conntrack see traffic.
func makePacketSocket(raw protocolNumber: Int32?, source: Endpoint?) throws -> Int32 {
    let fd = protocolNumber.map { socket(AF_INET, Int32(SOCK_RAW.rawValue), $0) } ?? socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { throw KernelIOError("socket", subject: protocolNumber == nil ? "udp" : "raw", errno: Errno(rawValue: Glibc.errno)) }
    if let source {
        do {
            try bindSource(fd, source, portByConnect: false)
        } catch {
            close(fd)
            throw error
        }
    }
    return fd
}

/// Sends one datagram; the errno comes back as a value, since a dropped packet (EPERM
/// from a netfilter drop) is what a lab counts, not a failure.
func sendPacket(_ fd: Int32, _ bytes: [UInt8], to endpoint: Endpoint) throws -> Errno? {
    try withSocketAddress(endpoint) { address, length in
        let sent = bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, address, length) }
        return sent < 0 ? Errno(rawValue: Glibc.errno) : nil
    }
}

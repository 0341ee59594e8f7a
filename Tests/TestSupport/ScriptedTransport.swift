import KernelIO
import Netlink
import Synchronization
import SystemPackage

/// A netlink peer that answers from a script, the way mdlayher/netlink's nltest does:
/// each `send` starts the next exchange, whose replies `receive` then returns in order.
public final class ScriptedTransport: NetlinkTransport, Sendable {
    public enum Reply: Sendable {
        /// Delivered with every message's sequence set to the current request's.
        case datagram([UInt8])
        /// Delivered as written: a leftover reply to some earlier request.
        case staleDatagram([UInt8])
        case failure(Errno)
    }

    private struct State {
        var exchanges: [[Reply]]
        var pending: [Reply] = []
        var requests: [[UInt8]] = []
    }

    private let state: Mutex<State>
    public var portID: UInt32 { 0 }

    /// - Parameter exchanges: for each request, the replies to give.
    public init(_ exchanges: [[Reply]]) {
        state = Mutex(State(exchanges: exchanges))
    }

    /// Every request sent so far.
    public var requests: [[UInt8]] { state.withLock { $0.requests } }

    public func send(_ message: [UInt8]) throws {
        state.withLock { state in
            state.requests.append(message)
            state.pending = state.exchanges.isEmpty ? [] : state.exchanges.removeFirst()
        }
    }

    public func receive(into buffer: inout [UInt8]) throws -> Int {
        let (reply, sequence): (Reply?, UInt32) = state.withLock { state in
            let sequence = state.requests.last.map { $0.count >= 12 ? $0.uint32LE(at: 8) : 0 } ?? 0
            return (state.pending.isEmpty ? nil : state.pending.removeFirst(), sequence)
        }
        switch reply {
        case .datagram(var bytes)?:
            Self.stamp(&bytes, sequence: sequence)
            return Self.copy(bytes, into: &buffer)
        case .staleDatagram(let bytes)?:
            return Self.copy(bytes, into: &buffer)
        case .failure(let errno)?:
            throw KernelIOError("receive netlink reply", errno: errno)
        case nil:
            // A real socket would block forever; a script that runs dry is a test bug.
            throw KernelIOError("scripted transport ran out of replies", errno: .wouldBlock)
        }
    }

    private static func copy(_ bytes: [UInt8], into buffer: inout [UInt8]) -> Int {
        let count = min(bytes.count, buffer.count)
        buffer.replaceSubrange(0..<count, with: bytes[0..<count])
        return count
    }

    /// Writes `sequence` into the header of every message in a datagram.
    static func stamp(_ bytes: inout [UInt8], sequence: UInt32) {
        var offset = 0
        while offset + 16 <= bytes.count {
            let length = Int(bytes.uint32LE(at: offset))
            for index in 0..<4 { bytes[offset + 8 + index] = UInt8(truncatingIfNeeded: sequence >> (8 * UInt32(index))) }
            guard length >= 16 else { return }
            offset += netlinkAligned(length)
        }
    }

    /// The sequence number of the last request, which replies must echo.
    public var lastSequence: UInt32 {
        state.withLock { state in
            guard let last = state.requests.last, last.count >= 12 else { return 0 }
            return last.uint32LE(at: 8)
        }
    }
}

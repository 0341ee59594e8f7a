import KernelIO
import Sockets

extension ProcFS {
    /// The TCP counters of the calling thread's namespace by their nstat names
    /// (/proc/net/snmp's Tcp and /proc/net/netstat's TcpExt, which share no name): what a
    /// collision moves, read by the watch and the collision labs.
    public func tcpCounters() throws -> [String: UInt64] {
        var counters = NetstatParser.counters(try readNet("netstat"))
        counters.merge(NetstatParser.counters(try readNet("snmp"))) { first, _ in first }
        return counters
    }
}

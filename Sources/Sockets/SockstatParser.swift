/// Reads /proc/net/sockstat and sockstat6 (`TCP: inuse 5 orphan 0 tw 0 alloc 7 mem 0`,
/// `TCP6: inuse 2`). Pure.
///
/// `inuse` is the namespace's own count of TCP sockets in the hashes (listeners and
/// connections, TIME_WAIT aside; IPv4 in sockstat, IPv6 in sockstat6), where a
/// sock_diag dump costs a walk of the whole node's hash: the count says, before any walk,
/// how many sockets one unfiltered dump would hand back.
public enum SockstatParser {
    /// The `inuse` of the `TCP:` or `TCP6:` line; nil when the file has neither, or its
    /// count is not a number.
    public static func tcpInUse(_ bytes: [UInt8]) -> Int? {
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let group = fields.first, group == "TCP:" || group == "TCP6:" else { continue }
            guard let at = fields.firstIndex(of: "inuse"), at + 1 < fields.count, let count = Int(fields[at + 1]), count >= 0 else {
                return nil
            }
            return count
        }
        return nil
    }
}

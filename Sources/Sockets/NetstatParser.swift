/// Parses /proc/net/snmp and /proc/net/netstat into nstat's names. Pure.
///
/// Both files pair lines: a header line `Tcp: RtoAlgorithm RtoMin … ActiveOpens …`
/// followed by a value line `Tcp: 1 200 …`. nstat names a counter by its group prefix
/// and field: "TcpActiveOpens", "TcpExtTCPChallengeACK".
public enum NetstatParser {
    public static func counters(_ bytes: [UInt8]) -> [String: UInt64] {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        var counters: [String: UInt64] = [:]
        var index = 0
        while index + 1 < lines.count {
            let names = lines[index].split(separator: " ")
            let values = lines[index + 1].split(separator: " ")
            guard let group = names.first, group.hasSuffix(":"), values.first == group, names.count == values.count else {
                index += 1
                continue
            }
            let prefix = group.dropLast()
            for (name, value) in zip(names.dropFirst(), values.dropFirst()) {
                // Counters are unsigned; a few gauges (Tcp MaxConn) print -1.
                if let number = UInt64(value) { counters["\(prefix)\(name)"] = number }
            }
            index += 2
        }
        return counters
    }
}

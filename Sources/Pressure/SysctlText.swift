import NetCore

/// The conntrack sysctls of a namespace copied as text: `sysctl -a | grep conntrack`
/// (`name = value`), `sysctl -n`-less `grep -r . /proc/sys/net/netfilter` (`path:value`).
/// Pure: bytes in, values out; lines about other sysctls are ignored.
public struct SysctlText: Sendable, Equatable {
    public var timeouts: [TimeoutSetting: Int] = [:]
    public var maximum: Int?
    public var buckets: Int?
    public var count: Int?

    public static func parse(_ bytes: [UInt8], source: String) throws(ParseError) -> SysctlText {
        var result = SysctlText()
        var recognised = 0
        var lines = LineSplitter(bytes)
        while let range = lines.next() {
            let text = String(decoding: bytes[range], as: UTF8.self).trimmingWhitespace
            guard !text.isEmpty, !text.hasPrefix("#") else { continue }
            let separator = text.firstIndex(of: "=") ?? text.firstIndex(of: ":")
            guard let separator else { continue }
            let name = String(text[..<separator]).trimmingWhitespace.replacing("/", with: ".")
            let value = String(text[text.index(after: separator)...]).trimmingWhitespace
            guard let key = name.split(separator: ".").last.map(String.init), key.hasPrefix("nf_conntrack_") else { continue }
            let setting = String(key.dropFirst("nf_conntrack_".count))
            guard let number = Int(value), number >= 0 else {
                if TimeoutSetting(rawValue: setting) != nil || ["max", "buckets", "count"].contains(setting) {
                    throw ParseError(source: source, line: lines.lineNumber, field: name, reason: "\(ParseError.quote(value.utf8)) is not a non-negative integer")
                }
                continue
            }
            switch setting {
            case "max": result.maximum = number
            case "buckets": result.buckets = number
            case "count": result.count = number
            default:
                guard let timeout = TimeoutSetting(rawValue: setting) else { continue }
                result.timeouts[timeout] = number
            }
            recognised += 1
        }
        guard recognised > 0 else {
            throw ParseError(source: source, line: 0, field: "file", reason: "no nf_conntrack sysctl in it: give `sysctl -a | grep nf_conntrack` from the namespace")
        }
        return result
    }
}

extension String {
    var trimmingWhitespace: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}

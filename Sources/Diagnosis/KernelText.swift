/// Pure parsers for the small texts diagnosis reads: sysctls, kernel releases, Go
/// durations, rule listings.
public enum KernelText {
    /// A kernel release's version numbers: "6.1.0-18-amd64" → (6, 1, 0); nil when it
    /// does not start with "major.minor".
    public static func version(ofRelease release: String) -> (major: Int, minor: Int, patch: Int)? {
        let numeric = release.prefix { $0.isNumber || $0 == "." }
        let parts = numeric.split(separator: ".").compactMap { Int($0) }
        guard parts.count >= 2 else { return nil }
        return (parts[0], parts[1], parts.count > 2 ? parts[2] : 0)
    }

    /// net.ipv4.ip_local_port_range: "32768\t60999".
    public static func portRange(_ text: String) -> ClosedRange<UInt16>? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { UInt16($0) }
        guard fields.count == 2, fields[0] <= fields[1] else { return nil }
        return fields[0]...fields[1]
    }

    /// net.ipv4.ip_local_reserved_ports: "8080,9000-9010" (empty: none).
    public static func reservedPorts(_ text: String) -> Set<UInt16>? {
        var ports = Set<UInt16>()
        for item in text.split(whereSeparator: { $0 == "," || $0 == "\n" || $0 == " " }) {
            let bounds = item.split(separator: "-").map { UInt16($0) }
            switch bounds.count {
            case 1:
                guard let port = bounds[0] else { return nil }
                ports.insert(port)
            case 2:
                guard let low = bounds[0], let high = bounds[1], low <= high else { return nil }
                ports.formUnion(low...high)
            default:
                return nil
            }
        }
        return ports
    }

    /// A Go duration as Istio reads ISTIO_META_IDLE_TIMEOUT: "1h", "90s", "1h30m",
    /// "500ms", "0s" (disabled). Seconds, or nil if malformed.
    public static func goDurationSeconds(_ text: String) -> Double? {
        var rest = Substring(text.trimmed(of: " \n\t\""))
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return 0 }
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            // Longest unit first: "ms" before "m" and "s".
            guard let unit = units.sorted(by: { $0.0.count > $1.0.count }).first(where: { rest.hasPrefix($0.0) }) else {
                return nil
            }
            total += value * unit.1
            rest = rest.dropFirst(unit.0.count)
        }
        return total
    }

    /// Looks through `iptables-save` or `nft list ruleset` output for a rule that drops
    /// packets conntrack judged INVALID: directly, or by jumping to Istio's ISTIO_DROP
    /// chain (INVALID_DROP / DROP_INVALID since Istio 1.13).
    public static func invalidDropRule(in listing: String) -> String? {
        for raw in listing.split(separator: "\n") {
            let line = raw.trimmed(of: " \t")
            let lower = line.lowercased()
            if lower.hasPrefix("#") { continue }
            let iptables = (lower.contains("--ctstate invalid") || lower.contains("--state invalid"))
                && (lower.contains("-j drop") || lower.contains("-j istio_drop"))
            let nft = lower.contains("ct state invalid") && lower.contains("drop")
            if iptables || nft { return String(line) }
        }
        return nil
    }
}

extension StringProtocol {
    func trimmed(of set: String) -> String {
        var text = Substring(self)
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}

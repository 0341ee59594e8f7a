/// Pure parsers for the small texts diagnosis reads: sysctls, kernel releases, rule
/// listings (durations: `DurationText`).
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

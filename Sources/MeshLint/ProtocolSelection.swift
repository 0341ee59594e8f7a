/// How Istio (and Alibaba ASM) decide a Service port's protocol, in order: appProtocol,
/// then the port name's prefix before the first '-', then a few ports it always treats
/// as TCP; anything else is sniffed — which waits for the client's first bytes.
public enum IstioSelection: Sendable, Equatable {
    /// The protocol was declared; `how` says where ("appProtocol: tcp", "name tcp-smtp").
    case declared(protocolName: String, how: String)
    /// Unnamed or unrecognised, but on a port Istio treats as TCP (25, 53, 3306, 27017).
    case wellKnownTCP(port: Int)
    case sniffed

    public static let recognised: Set<String> = [
        "http", "http2", "https", "grpc", "grpc-web", "http_proxy", "tcp", "tls", "mongo", "mysql", "redis", "udp",
    ]
    static let appProtocolAliases: [String: String] = [
        "kubernetes.io/h2c": "http2", "kubernetes.io/ws": "http", "kubernetes.io/wss": "https",
    ]
    public static let tcpPorts: Set<Int> = [25, 53, 3306, 27017]

    /// An appProtocol value as Istio reads it: a Kubernetes alias, grpc-web, or the
    /// recognised name before the first '-'.
    static func recognisedProtocol(_ value: String) -> String? {
        let lower = value.lowercased()
        if let alias = appProtocolAliases[lower] { return alias }
        if lower == "grpc-web" || lower.hasPrefix("grpc-web-") { return "grpc-web" }
        let prefix = String(lower.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        return recognised.contains(prefix) ? prefix : nil
    }

    /// Declared protocols under which Envoy proxies the bytes without waiting for the
    /// client: a server-first protocol works behind them.
    public static let passThrough: Set<String> = ["tcp", "mongo", "mysql", "redis", "udp"]

    /// As Istio's ConvertProtocol (pkg/config/kube/conversion.go): a set appProtocol
    /// decides alone, even unrecognised (Linkerd's `linkerd.io/opaque` included), and the
    /// name is not looked at; either way the text before the first '-' is the protocol.
    /// The always-TCP ports apply only when the result would otherwise be unsupported.
    public static func select(name: String?, appProtocol: String?, port: Int) -> IstioSelection {
        if let appProtocol, !appProtocol.isEmpty {
            if let known = recognisedProtocol(appProtocol) {
                return .declared(protocolName: known, how: "appProtocol: \(appProtocol)")
            }
            return tcpPorts.contains(port) ? .wellKnownTCP(port: port) : .sniffed
        }
        if let name, !name.isEmpty {
            let lower = name.lowercased()
            if lower == "grpc-web" || lower.hasPrefix("grpc-web-") {
                return .declared(protocolName: "grpc-web", how: "name \(name)")
            }
            let prefix = String(lower.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            if recognised.contains(prefix) { return .declared(protocolName: prefix, how: "name \(name)") }
        }
        if tcpPorts.contains(port) { return .wellKnownTCP(port: port) }
        return .sniffed
    }
}

/// A set of Linkerd opaque ports: "25,587,3306" with ranges such as "4000-4100".
public struct OpaquePorts: Sendable, Equatable, CustomStringConvertible {
    public var ranges: [ClosedRange<Int>]

    /// Linkerd's default, which an opaque-ports annotation replaces (it does not add to it).
    public static let defaults = OpaquePorts(ranges: [25, 587, 3306, 4444, 5432, 6379, 9300, 11211].map { $0...$0 })
    public static let annotation = "config.linkerd.io/opaque-ports"
    public static let skipOutbound = "config.linkerd.io/skip-outbound-ports"

    public init(ranges: [ClosedRange<Int>]) { self.ranges = ranges }

    /// nil when an entry is neither a port nor a range.
    public init?(parsing text: String) {
        var ranges: [ClosedRange<Int>] = []
        for item in text.split(separator: ",") {
            let trimmed = item.filter { !$0.isWhitespace }
            let bounds = trimmed.split(separator: "-").map { Int($0) }
            switch bounds.count {
            case 1:
                guard let port = bounds[0], (1...65535).contains(port) else { return nil }
                ranges.append(port...port)
            case 2:
                guard let low = bounds[0], let high = bounds[1], 1 <= low, low <= high, high <= 65535 else { return nil }
                ranges.append(low...high)
            default:
                return nil
            }
        }
        self.ranges = ranges
    }

    public func contains(_ port: Int) -> Bool { ranges.contains { $0.contains(port) } }

    public var description: String {
        ranges.map { $0.count == 1 ? String($0.lowerBound) : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
    }
}

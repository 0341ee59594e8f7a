/// Who sends the first bytes on a connection. A proxy that waits for the client's bytes
/// to detect the protocol deadlocks when the server speaks first.
public enum FirstSpeaker: String, Sendable, Hashable {
    /// The server greets before the client sends anything (SMTP, MySQL, NATS, FTP...).
    case server
    /// The client sends first (HTTP, TLS ClientHello, PostgreSQL StartupMessage...).
    case client
}

/// What ctdoctor knows about one application protocol.
public struct ApplicationProtocol: Sendable, Hashable, CustomStringConvertible {
    public var name: String
    public var firstSpeaker: FirstSpeaker
    /// Clients that open pooled connections and stay silent (Memcache): they wait out
    /// Linkerd's 10 s detection although the protocol is client-first.
    public var silentClients: Bool

    public init(_ name: String, _ firstSpeaker: FirstSpeaker, silentClients: Bool = false) {
        self.name = name
        self.firstSpeaker = firstSpeaker
        self.silentClients = silentClients
    }

    public var description: String { name }
    public var isServerFirst: Bool { firstSpeaker == .server }
}

/// How a protocol was recognised, for findings to cite.
public enum ProtocolEvidence: Sendable, Hashable, CustomStringConvertible {
    case port(UInt16)
    case name(String)
    case image(String)
    case given(UInt16)

    public var description: String {
        switch self {
        case .port(let port): "port \(port)"
        case .name(let name): "the name \"\(name)\""
        case .image(let image): "the image \(image)"
        case .given(let port): "--server-first \(port)"
        }
    }
}

/// Which protocols speak first, by port, by name and by container image.
///
/// Server-first: SMTP (25, 587, 2525), MySQL and MariaDB (3306; ProxySQL 6032/6033),
/// NATS (4222, and cluster routes on 6222), FTP (21), POP3 (110), IMAP (143), VNC/RFB
/// (5900), Telnet (23). Client-first, although often listed beside them: HTTP, TLS (so
/// SMTPS 465, IMAPS 993, POP3S 995), PostgreSQL, Redis, MongoDB, Memcache, Kafka,
/// Cassandra, DNS over TCP. See shared/notes/field-facts.md.
public struct ProtocolCatalog: Sendable {
    public static let smtp = ApplicationProtocol("SMTP", .server)
    public static let mysql = ApplicationProtocol("MySQL", .server)
    public static let nats = ApplicationProtocol("NATS", .server)
    public static let ftp = ApplicationProtocol("FTP", .server)
    public static let pop3 = ApplicationProtocol("POP3", .server)
    public static let imap = ApplicationProtocol("IMAP", .server)
    public static let vnc = ApplicationProtocol("VNC", .server)
    public static let telnet = ApplicationProtocol("Telnet", .server)
    public static let http = ApplicationProtocol("HTTP", .client)
    public static let tls = ApplicationProtocol("TLS", .client)
    public static let postgres = ApplicationProtocol("PostgreSQL", .client)
    public static let redis = ApplicationProtocol("Redis", .client)
    public static let mongo = ApplicationProtocol("MongoDB", .client)
    public static let memcache = ApplicationProtocol("Memcache", .client, silentClients: true)
    public static let kafka = ApplicationProtocol("Kafka", .client)
    public static let cassandra = ApplicationProtocol("Cassandra", .client)
    public static let dns = ApplicationProtocol("DNS", .client)

    public static let builtInPorts: [UInt16: ApplicationProtocol] = [
        25: smtp, 587: smtp, 2525: smtp, 3306: mysql, 6032: mysql, 6033: mysql, 4222: nats, 6222: nats,
        21: ftp, 110: pop3, 143: imap, 5900: vnc, 23: telnet,
        80: http, 8080: http, 443: tls, 465: tls, 993: tls, 995: tls, 5432: postgres, 6379: redis,
        27017: mongo, 11211: memcache, 9092: kafka, 9042: cassandra, 53: dns,
    ]

    /// Words in port and container names; the longest that occurs wins ("mariadb" over "db").
    public static let nameKeywords: [(String, ApplicationProtocol)] = [
        ("smtp", smtp), ("mysql", mysql), ("mariadb", mysql), ("proxysql", mysql), ("nats", nats), ("ftp", ftp),
        ("pop3", pop3), ("imap", imap), ("vnc", vnc), ("telnet", telnet), ("postgres", postgres), ("redis", redis),
        ("mongo", mongo), ("memcache", memcache), ("kafka", kafka), ("cassandra", cassandra),
    ]

    /// Container images and the ports they serve their protocol on.
    public static let images: [(String, ApplicationProtocol, [UInt16])] = [
        ("mysql", mysql, [3306]), ("mariadb", mysql, [3306]), ("percona", mysql, [3306]),
        ("proxysql", mysql, [6032, 6033]), ("postfix", smtp, [25, 587]), ("exim", smtp, [25, 587]),
        ("mailhog", smtp, [1025]), ("mailpit", smtp, [1025]), ("nats", nats, [4222, 6222]),
        ("vsftpd", ftp, [21]), ("pure-ftpd", ftp, [21]), ("dovecot", imap, [143, 110]),
    ]

    /// Ports given with --server-first PORT[/NAME].
    public var additions: [UInt16: ApplicationProtocol]

    public init(additions: [UInt16: ApplicationProtocol] = [:]) {
        self.additions = additions
    }

    /// Reads one --server-first value: "5000" or "5000/myproto".
    public static func parseAddition(_ text: String) -> (UInt16, ApplicationProtocol)? {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let port = UInt16(first), port > 0 else { return nil }
        let name = parts.count > 1 ? String(parts[1]) : "port \(port)"
        return (port, ApplicationProtocol(name, .server))
    }

    public func byPort(_ port: UInt16) -> (ApplicationProtocol, ProtocolEvidence)? {
        if let added = additions[port] { return (added, .given(port)) }
        return Self.builtInPorts[port].map { ($0, .port(port)) }
    }

    public func byName(_ name: String) -> (ApplicationProtocol, ProtocolEvidence)? {
        let lower = name.lowercased()
        let match = Self.nameKeywords.filter { lower.contains($0.0) }.max { $0.0.count < $1.0.count }
        return match.map { ($0.1, .name(name)) }
    }

    /// The protocol of an image ("docker.io/library/mysql:8.0", "bitnami/mariadb@sha256:…").
    public func byImage(_ image: String) -> (ApplicationProtocol, [UInt16], ProtocolEvidence)? {
        let withoutDigest = image.split(separator: "@").first.map(String.init) ?? image
        let lastComponent = withoutDigest.split(separator: "/").last.map(String.init) ?? withoutDigest
        let repository = lastComponent.split(separator: ":").first.map(String.init) ?? lastComponent
        guard let match = Self.images.first(where: { repository == $0.0 || repository.hasPrefix($0.0 + "-") }) else { return nil }
        return (match.1, match.2, .image(image))
    }
}

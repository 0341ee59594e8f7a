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
/// Galera group communication (4567), NATS clients (4222), FTP (21), POP3 (110), IMAP
/// (143), VNC/RFB (5900), Telnet (23). Client-first, although often listed beside them:
/// HTTP, TLS and every implicit-TLS port (SMTPS 465, IMAPS 993, POP3S 995, LDAPS 636,
/// FTPS 990, AMQPS 5671), MySQL's X protocol (33060), PostgreSQL, Redis, MongoDB,
/// Memcache, Kafka, Cassandra, DNS over TCP. NATS cluster routes (6222) are neither: both
/// ends send INFO at once, so the accepting side's sniffing gets bytes and goes on.
/// Directions from each server's source (nats-server's route and client handshakes,
/// mysqld's greeting and mysqlx's client-first capability exchange, Galera's gcomm
/// handshake) and the RFCs (5321, 3501, 1939, 8314).
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
    /// Implicit TLS: the client's ClientHello comes first, whatever protocol runs inside.
    public static let smtps = ApplicationProtocol("SMTPS (implicit TLS)", .client)
    public static let imaps = ApplicationProtocol("IMAPS (implicit TLS)", .client)
    public static let pop3s = ApplicationProtocol("POP3S (implicit TLS)", .client)
    public static let ldaps = ApplicationProtocol("LDAPS (implicit TLS)", .client)
    public static let ftps = ApplicationProtocol("FTPS (implicit TLS)", .client)
    public static let amqps = ApplicationProtocol("AMQPS (implicit TLS)", .client)
    /// MySQL's X protocol: the client starts (TLS is negotiated inside it, not first).
    public static let mysqlx = ApplicationProtocol("MySQL X Protocol", .client)
    /// Galera's group communication: the joining node's peer greets first.
    public static let galera = ApplicationProtocol("Galera replication", .server)

    public static let builtInPorts: [UInt16: ApplicationProtocol] = [
        25: smtp, 587: smtp, 2525: smtp, 3306: mysql, 6032: mysql, 6033: mysql, 4222: nats,
        21: ftp, 110: pop3, 143: imap, 5900: vnc, 23: telnet,
        80: http, 8080: http, 443: tls, 465: smtps, 993: imaps, 995: pop3s, 636: ldaps, 990: ftps, 5671: amqps,
        33060: mysqlx, 4567: galera, 5432: postgres, 6379: redis,
        27017: mongo, 11211: memcache, 9092: kafka, 9042: cassandra, 53: dns,
    ]

    /// Words in port and container names, matched as whole tokens (split at '-', '_',
    /// '.'), never as substrings: "imap" is not in "imaps", whose client speaks first.
    public static let nameKeywords: [String: ApplicationProtocol] = [
        "smtp": smtp, "submission": smtp, "mysql": mysql, "mariadb": mysql, "proxysql": mysql, "nats": nats, "ftp": ftp,
        "pop3": pop3, "imap": imap, "vnc": vnc, "rfb": vnc, "telnet": telnet, "postgres": postgres, "postgresql": postgres,
        "redis": redis, "mongo": mongo, "mongodb": mongo, "memcache": memcache, "memcached": memcache, "kafka": kafka,
        "cassandra": cassandra, "smtps": smtps, "submissions": smtps, "imaps": imaps, "pop3s": pop3s, "ldaps": ldaps,
        "ftps": ftps, "amqps": amqps, "mysqlx": mysqlx, "galera": galera,
    ]

    /// A server image: the ports it serves its server-first protocol on by default, and
    /// the flags and environment variables that move the listening port (read from the
    /// container's command, args and env).
    public struct ServerImage: Sendable {
        public var repository: String
        public var application: ApplicationProtocol
        public var ports: [UInt16]
        /// "--port" matches `--port=3307` and `--port 3307`; "-P" also `-P3307`.
        public var portFlags: [String] = []
        public var portVariables: [String] = []
    }

    /// Container images and the ports they serve their protocol on. mysqld reads
    /// --port/-P and, when neither is given, MYSQL_TCP_PORT (MySQL reference manual,
    /// "Environment Variables"); nats-server -p/--port (its client port; 6222, the
    /// cluster port, is answered by both sides at once, so it does not stall).
    public static let images: [ServerImage] = [
        ServerImage(repository: "mysql", application: mysql, ports: [3306], portFlags: ["--port", "-P"], portVariables: ["MYSQL_TCP_PORT"]),
        ServerImage(repository: "mariadb", application: mysql, ports: [3306], portFlags: ["--port", "-P"], portVariables: ["MYSQL_TCP_PORT"]),
        ServerImage(repository: "percona", application: mysql, ports: [3306], portFlags: ["--port", "-P"], portVariables: ["MYSQL_TCP_PORT"]),
        ServerImage(repository: "proxysql", application: mysql, ports: [6032, 6033]),
        ServerImage(repository: "postfix", application: smtp, ports: [25, 587]),
        ServerImage(repository: "exim", application: smtp, ports: [25, 587]),
        ServerImage(repository: "mailhog", application: smtp, ports: [1025]),
        ServerImage(repository: "mailpit", application: smtp, ports: [1025], portFlags: ["--smtp"]),
        ServerImage(repository: "nats", application: nats, ports: [4222], portFlags: ["--port", "-p"]),
        ServerImage(repository: "vsftpd", application: ftp, ports: [21]),
        ServerImage(repository: "pure-ftpd", application: ftp, ports: [21]),
        ServerImage(repository: "dovecot", application: imap, ports: [143, 110]),
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
        let tokens = name.lowercased().split { $0 == "-" || $0 == "_" || $0 == "." || $0 == " " }.map(String.init)
        // The longest keyword among the tokens ("mariadb" over "db").
        let match = tokens.compactMap { token in Self.nameKeywords[token].map { (token, $0) } }.max { $0.0.count < $1.0.count }
        return match.map { ($0.1, .name(name)) }
    }

    /// The protocol of an image ("docker.io/library/mysql:8.0", "bitnami/mariadb@sha256:…")
    /// and the ports it serves it on: the defaults, unless the container's command and
    /// args (`--port=3307`, `-P 3307`, also inside `sh -c "…"`) or its env move them.
    public func byImage(
        _ image: String, arguments: [String] = [], environment: [String: String] = [:]
    ) -> (ApplicationProtocol, [UInt16], ProtocolEvidence)? {
        let withoutDigest = image.split(separator: "@").first.map(String.init) ?? image
        let lastComponent = withoutDigest.split(separator: "/").last.map(String.init) ?? withoutDigest
        let repository = lastComponent.split(separator: ":").first.map(String.init) ?? lastComponent
        guard let match = Self.images.first(where: { repository == $0.repository || repository.hasPrefix($0.repository + "-") }) else {
            return nil
        }
        if let (port, how) = Self.configuredPort(match, arguments: arguments, environment: environment) {
            return (match.application, [port], .image("\(image) with \(how)"))
        }
        return (match.application, match.ports, .image(image))
    }

    /// The port a server's flags or environment set, with how it was set.
    static func configuredPort(_ server: ServerImage, arguments: [String], environment: [String: String]) -> (UInt16, String)? {
        // `sh -c "mysqld --port=3307"` is one argument: split every one at blanks.
        let words = arguments.flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init) }
        for (index, word) in words.enumerated() {
            for flag in server.portFlags {
                var value: Substring?
                if word == flag, index + 1 < words.count {
                    value = Substring(words[index + 1])
                } else if word.hasPrefix(flag + "=") {
                    value = word.dropFirst(flag.count + 1)
                } else if flag.count == 2, word.hasPrefix(flag), word.count > 2 {
                    value = word.dropFirst(2)  // -P3307
                }
                if let value, let port = UInt16(value.filter { $0 != "\"" && $0 != "'" }), port > 0 {
                    return (port, "\(flag) \(port)")
                }
            }
        }
        for variable in server.portVariables {
            if let text = environment[variable], let port = UInt16(text), port > 0 { return (port, "\(variable)=\(port)") }
        }
        return nil
    }
}

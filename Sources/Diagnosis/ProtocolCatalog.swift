/// Who sends the first bytes on a connection. A proxy that waits for the client's bytes
/// to detect the protocol deadlocks when the server speaks first.
public enum FirstSpeaker: String, Sendable, Hashable {
    /// The server greets before the client sends anything (SMTP, MySQL, NATS, FTP...).
    case server
    /// The client sends first (HTTP, TLS ClientHello, PostgreSQL StartupMessage...).
    case client
    /// Both ends send at once, neither waiting (SSH's identification strings, NATS
    /// routes' INFO, rsync's @RSYNCD): a proxy waiting for the client's bytes gets them.
    case both
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

/// Which protocols speak first, by port, by name and by container image, each direction
/// checked against the server's own source or its RFC (cited beside each entry).
///
/// Server-first: SMTP (25, 587, 2525; RFC 5321 §3.1, postfix smtpd_proto's 220), LMTP
/// (24; Dovecot's smtp-server connection sends 220), MySQL and MariaDB (3306; ProxySQL
/// 6032/6033), Galera group communication (4567; gcomm gmcast: the accepting side sends
/// the handshake) and IST (4568; galera ist.cpp: the joiner sends the handshake), NATS
/// clients (4222), leafnodes (7422) and gateways (7522) (nats-server sends INFO on
/// accept; leafnode.go, gateway.go), FTP (21), POP3 (110), IMAP (143), ManageSieve (4190;
/// pigeonhole managesieve-login sends its capabilities and OK), VNC/RFB (5900), Telnet
/// (23).
///
/// Client-first, although often listed beside them: HTTP, TLS and every implicit-TLS port
/// (SMTPS 465, IMAPS 993, POP3S 995, LDAPS 636, FTPS 990, AMQPS 5671), MySQL's X protocol
/// (33060), PostgreSQL, Redis (also its cluster bus 16379 and Sentinel 26379), MongoDB,
/// Memcache, Kafka, Cassandra (9042, and 7000 inter-node: HandshakeProtocol's Initiate),
/// DNS over TCP, AMQP (5672: the protocol header), RabbitMQ's Erlang distribution (25672:
/// dist_util's send_name by the connecting node), epmd (4369) and streams (5552),
/// ZooKeeper (2181 ConnectRequest; 2888 Learner.registerWithLeader; 3888
/// QuorumCnxManager.startConnection), Elasticsearch transport (9300:
/// TransportHandshaker, the connecting node first).
///
/// Both at once: SSH (22; RFC 4253 §4.2, OpenSSH's kex_exchange_identification writes
/// before it reads), NATS cluster routes (6222; route.go: CONNECT and INFO without
/// waiting), Galera SST over rsync (4444; rsync's exchange_protocols greets from both
/// sides; mariabackup's socat stream is client-first).
public struct ProtocolCatalog: Sendable {
    public static let smtp = ApplicationProtocol("SMTP", .server)
    public static let lmtp = ApplicationProtocol("LMTP", .server)
    public static let mysql = ApplicationProtocol("MySQL", .server)
    public static let nats = ApplicationProtocol("NATS", .server)
    public static let natsLeafnode = ApplicationProtocol("NATS leafnode", .server)
    public static let natsGateway = ApplicationProtocol("NATS gateway", .server)
    public static let natsRoute = ApplicationProtocol("NATS cluster route", .both)
    public static let ftp = ApplicationProtocol("FTP", .server)
    public static let pop3 = ApplicationProtocol("POP3", .server)
    public static let imap = ApplicationProtocol("IMAP", .server)
    public static let manageSieve = ApplicationProtocol("ManageSieve", .server)
    public static let vnc = ApplicationProtocol("VNC", .server)
    public static let telnet = ApplicationProtocol("Telnet", .server)
    public static let ssh = ApplicationProtocol("SSH", .both)
    public static let http = ApplicationProtocol("HTTP", .client)
    public static let tls = ApplicationProtocol("TLS", .client)
    public static let postgres = ApplicationProtocol("PostgreSQL", .client)
    public static let redis = ApplicationProtocol("Redis", .client)
    public static let redisClusterBus = ApplicationProtocol("Redis cluster bus", .client)
    public static let mongo = ApplicationProtocol("MongoDB", .client)
    public static let memcache = ApplicationProtocol("Memcache", .client, silentClients: true)
    public static let kafka = ApplicationProtocol("Kafka", .client)
    public static let cassandra = ApplicationProtocol("Cassandra", .client)
    public static let cassandraInternode = ApplicationProtocol("Cassandra inter-node", .client)
    public static let dns = ApplicationProtocol("DNS", .client)
    public static let amqp = ApplicationProtocol("AMQP", .client)
    public static let erlangDistribution = ApplicationProtocol("Erlang distribution", .client)
    public static let epmd = ApplicationProtocol("epmd", .client)
    public static let rabbitStream = ApplicationProtocol("RabbitMQ stream", .client)
    public static let zookeeper = ApplicationProtocol("ZooKeeper", .client)
    public static let zookeeperQuorum = ApplicationProtocol("ZooKeeper quorum", .client)
    public static let zookeeperElection = ApplicationProtocol("ZooKeeper leader election", .client)
    public static let elasticsearchTransport = ApplicationProtocol("Elasticsearch transport", .client)
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
    public static let galeraIST = ApplicationProtocol("Galera incremental state transfer", .server)
    public static let galeraSST = ApplicationProtocol("Galera state snapshot transfer", .both)

    public static let builtInPorts: [UInt16: ApplicationProtocol] = [
        25: smtp, 587: smtp, 2525: smtp, 24: lmtp, 3306: mysql, 6032: mysql, 6033: mysql, 4222: nats,
        7422: natsLeafnode, 7522: natsGateway, 6222: natsRoute, 8222: http,
        21: ftp, 110: pop3, 143: imap, 4190: manageSieve, 5900: vnc, 23: telnet, 22: ssh,
        80: http, 8080: http, 443: tls, 465: smtps, 993: imaps, 995: pop3s, 636: ldaps, 990: ftps, 5671: amqps,
        33060: mysqlx, 4567: galera, 4568: galeraIST, 4444: galeraSST, 5432: postgres, 6379: redis, 16379: redisClusterBus,
        26379: redis, 27017: mongo, 11211: memcache, 9092: kafka, 9042: cassandra, 53: dns,
        5672: amqp, 25672: erlangDistribution, 4369: epmd, 5552: rabbitStream, 15672: http,
        2181: zookeeper, 2888: zookeeperQuorum, 3888: zookeeperElection, 9200: http, 9300: elasticsearchTransport,
    ]

    /// Words in port and container names, matched as whole tokens (split at '-', '_',
    /// '.'), never as substrings: "imap" is not in "imaps", whose client speaks first.
    public static let nameKeywords: [String: ApplicationProtocol] = [
        "smtp": smtp, "submission": smtp, "lmtp": lmtp, "mysql": mysql, "mariadb": mysql, "proxysql": mysql, "nats": nats,
        "ftp": ftp, "pop3": pop3, "imap": imap, "sieve": manageSieve, "managesieve": manageSieve, "vnc": vnc, "rfb": vnc,
        "telnet": telnet, "ssh": ssh, "postgres": postgres, "postgresql": postgres,
        "redis": redis, "mongo": mongo, "mongodb": mongo, "memcache": memcache, "memcached": memcache, "kafka": kafka,
        "cassandra": cassandra, "smtps": smtps, "submissions": smtps, "imaps": imaps, "pop3s": pop3s, "ldaps": ldaps,
        "ftps": ftps, "amqps": amqps, "amqp": amqp, "epmd": epmd, "mysqlx": mysqlx, "galera": galera,
    ]

    /// One port a server image serves: the protocol spoken there, and what moves it —
    /// flags in the container's command and args, environment variables, a setting in the
    /// server's own config file.
    public struct ImagePort: Sendable {
        public var port: UInt16
        public var application: ApplicationProtocol
        /// "--port" matches `--port=3307` and `--port 3307`; "-P" also `-P3307`; a value
        /// such as `0.0.0.0:1025` or `nats://0.0.0.0:6333` gives its last number.
        public var portFlags: [String] = []
        public var portVariables: [String] = []
        public var configSetting: ServerConfig.Setting?
    }

    /// A server image and every port it serves, each with its own direction.
    public struct ServerImage: Sendable {
        public var repository: String
        public var ports: [ImagePort]
        /// The dialect of the config files it reads (from ConfigMaps mounted into it).
        public var configDialect: ServerConfig.Dialect?
    }

    static func mysqlPorts(extra: [ImagePort] = []) -> [ImagePort] {
        // mysqld reads --port/-P, [mysqld] port= in its option files, else MYSQL_TCP_PORT
        // (MySQL reference manual, "Environment Variables"); mysqlx --mysqlx-port.
        [
            ImagePort(port: 3306, application: mysql, portFlags: ["--port", "-P"], portVariables: ["MYSQL_TCP_PORT"], configSetting: .mysqlPort),
            ImagePort(port: 33060, application: mysqlx, portFlags: ["--mysqlx-port", "--mysqlx_port"], configSetting: .mysqlxPort),
        ] + extra
    }

    /// Container images and the ports they serve.
    public static let images: [ServerImage] = [
        ServerImage(repository: "mysql", ports: mysqlPorts(), configDialect: .mysqlOptionFile),
        ServerImage(repository: "percona", ports: mysqlPorts(), configDialect: .mysqlOptionFile),
        ServerImage(repository: "mariadb", ports: mysqlPorts(extra: [
            ImagePort(port: 4567, application: galera), ImagePort(port: 4568, application: galeraIST),
            ImagePort(port: 4444, application: galeraSST),
        ]), configDialect: .mysqlOptionFile),
        ServerImage(repository: "proxysql", ports: [ImagePort(port: 6032, application: mysql), ImagePort(port: 6033, application: mysql)]),
        ServerImage(repository: "postfix", ports: [
            ImagePort(port: 25, application: smtp), ImagePort(port: 587, application: smtp), ImagePort(port: 465, application: smtps),
        ], configDialect: .postfixMaster),
        ServerImage(repository: "exim", ports: [
            ImagePort(port: 25, application: smtp), ImagePort(port: 587, application: smtp), ImagePort(port: 465, application: smtps),
        ]),
        ServerImage(repository: "mailhog", ports: [ImagePort(port: 1025, application: smtp), ImagePort(port: 8025, application: http)]),
        ServerImage(repository: "mailpit", ports: [
            ImagePort(port: 1025, application: smtp, portFlags: ["--smtp"]), ImagePort(port: 8025, application: http, portFlags: ["--listen"]),
        ]),
        // nats-server -p/--port (clients), --cluster URL (routes), -m/--http_port
        // (monitoring); leafnodes and gateways only from its config (opts.go).
        ServerImage(repository: "nats", ports: [
            // Go's flag package takes one dash as well as two (`-cluster nats://…`).
            ImagePort(port: 4222, application: nats, portFlags: ["--port", "-port", "-p"], configSetting: .natsClient),
            ImagePort(port: 6222, application: natsRoute, portFlags: ["--cluster", "-cluster", "--cluster_listen", "-cluster_listen"], configSetting: .natsCluster),
            ImagePort(port: 8222, application: http, portFlags: ["--http_port", "-http_port", "-m"], configSetting: .natsMonitor),
            ImagePort(port: 7422, application: natsLeafnode, configSetting: .natsLeafnodes),
            ImagePort(port: 7522, application: natsGateway, configSetting: .natsGateway),
        ], configDialect: .natsServer),
        ServerImage(repository: "vsftpd", ports: [ImagePort(port: 21, application: ftp)]),
        ServerImage(repository: "pure-ftpd", ports: [ImagePort(port: 21, application: ftp)]),
        ServerImage(repository: "dovecot", ports: [
            ImagePort(port: 143, application: imap), ImagePort(port: 110, application: pop3), ImagePort(port: 993, application: imaps),
            ImagePort(port: 995, application: pop3s), ImagePort(port: 4190, application: manageSieve), ImagePort(port: 24, application: lmtp),
            ImagePort(port: 587, application: smtp),
        ]),
        // RABBITMQ_NODE_PORT and RABBITMQ_DIST_PORT move AMQP and distribution (RabbitMQ's
        // "Configuration: Environment Variables").
        ServerImage(repository: "rabbitmq", ports: [
            ImagePort(port: 5672, application: amqp, portVariables: ["RABBITMQ_NODE_PORT"]), ImagePort(port: 5671, application: amqps),
            ImagePort(port: 25672, application: erlangDistribution, portVariables: ["RABBITMQ_DIST_PORT"]),
            ImagePort(port: 4369, application: epmd), ImagePort(port: 15672, application: http), ImagePort(port: 5552, application: rabbitStream),
        ]),
        ServerImage(repository: "zookeeper", ports: [
            ImagePort(port: 2181, application: zookeeper), ImagePort(port: 2888, application: zookeeperQuorum),
            ImagePort(port: 3888, application: zookeeperElection), ImagePort(port: 8080, application: http),
        ]),
        ServerImage(repository: "elasticsearch", ports: [
            ImagePort(port: 9200, application: http), ImagePort(port: 9300, application: elasticsearchTransport),
        ]),
        // 7000 is Cassandra's only in its own image: too many servers use that port.
        ServerImage(repository: "cassandra", ports: [
            ImagePort(port: 9042, application: cassandra), ImagePort(port: 7000, application: cassandraInternode),
        ]),
        ServerImage(repository: "redis", ports: [
            ImagePort(port: 6379, application: redis, portFlags: ["--port"]), ImagePort(port: 16379, application: redisClusterBus),
            ImagePort(port: 26379, application: redis),
        ]),
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

    /// Repository names that are the same server under another name (`percona-server`,
    /// `mariadb-galera`, `redis-cluster`): any other suffix is another program
    /// (`percona-server-mongodb`, `nats-surveyor`, `redis-exporter`).
    static let derivativeSuffixes = ["-server", "-cluster", "-galera", "-xtradb-cluster", "-sentinel", "-streaming"]

    /// What an image serves on each of its ports, as the container runs it.
    public struct ImageMatch: Sendable {
        public var repository: String
        /// Each port the container serves on, after flags, config and environment moved it.
        public var ports: [UInt16: (application: ApplicationProtocol, evidence: ProtocolEvidence)]
        /// Config lines the dialect could not read, for a notice.
        public var unreadConfig: [String] = []
    }

    /// The protocols of an image ("docker.io/library/mysql:8.0", "bitnami/mariadb@sha256:…")
    /// by port: the defaults, unless the container's command and args (`--port=3307`,
    /// `-P 3307`, also inside `sh -c "…"`), its config files or its env move them. Config
    /// files may also declare ports the image's defaults lack (a postfix master.cf
    /// service on 2525).
    public func byImage(
        _ image: String, arguments: [String] = [], environment: [String: String] = [:], configFiles: [ServerConfig.File] = []
    ) -> ImageMatch? {
        let withoutDigest = image.split(separator: "@").first.map(String.init) ?? image
        let lastComponent = withoutDigest.split(separator: "/").last.map(String.init) ?? withoutDigest
        let repository = lastComponent.split(separator: ":").first.map(String.init) ?? lastComponent
        guard let server = Self.images.first(where: { image in
            repository == image.repository || Self.derivativeSuffixes.contains { repository == image.repository + $0 }
        }) else {
            return nil
        }
        let config = server.configDialect.map { ServerConfig.read($0, files: configFiles) } ?? ServerConfig.Reading()
        var match = ImageMatch(repository: server.repository, ports: [:])
        for imagePort in server.ports {
            var port = imagePort.port
            var how: String?
            // The command line first: it overrides the server's config, which overrides
            // the environment's default (mysqld's order).
            if let (flagged, flag) = Self.configuredPort(imagePort, arguments: arguments) {
                (port, how) = (flagged, flag)
            } else if let setting = imagePort.configSetting, let (configured, source) = config.settings[setting] {
                (port, how) = (configured, source)
            } else if let (variable, value) = imagePort.portVariables.lazy.compactMap({ name in
                environment[name].flatMap(UInt16.init).flatMap { $0 > 0 ? (name, $0) : nil }
            }).first {
                (port, how) = (value, "\(variable)=\(value)")
            }
            match.ports[port] = (imagePort.application, .image(how.map { "\(image) with \($0)" } ?? image))
        }
        for service in config.services {
            match.ports[service.port] = (service.application, .image("\(image) with \(service.source)"))
        }
        return match
    }

    /// The port a server's flags set, with the flag as given.
    static func configuredPort(_ imagePort: ImagePort, arguments: [String]) -> (UInt16, String)? {
        // `sh -c "mysqld --port=3307"` is one argument: split every one at blanks.
        let words = arguments.flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init) }
        // The last one given wins, as mysqld's and nats-server's option parsing has it.
        for index in words.indices.reversed() {
            let word = words[index]
            for flag in imagePort.portFlags {
                var value: Substring?
                if word == flag, index + 1 < words.count {
                    value = Substring(words[index + 1])
                } else if word.hasPrefix(flag + "=") {
                    value = word.dropFirst(flag.count + 1)
                } else if flag.count == 2, word.hasPrefix(flag), word.count > 2 {
                    value = word.dropFirst(2)  // -P3307
                }
                guard let value else { continue }
                // `0.0.0.0:1025`, `nats://0.0.0.0:6333`, `[::]:1025`: the number after the last colon.
                let unquoted = value.filter { $0 != "\"" && $0 != "'" }
                let digits = unquoted.split(separator: ":").last.map(String.init) ?? unquoted
                if let port = UInt16(digits), port > 0 { return (port, "\(flag) \(port)") }
            }
        }
        return nil
    }
}

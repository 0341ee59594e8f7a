/// The listening ports a server's own config file sets, read from the files a manifest
/// mounts into its container (ConfigMaps). Pure: text in, ports out.
///
/// Each dialect reads only what moves a port, and stays silent on the rest:
/// - MySQL/MariaDB option files (`*.cnf`): `port` and `mysqlx-port` in the sections the
///   server reads — `[mysqld]`, `[server]`, `[mariadb]`, `[mariadbd]`, `[galera]`,
///   `[client-server]` and their `-X.Y` variants (MariaDB's "Configuring MariaDB with
///   Option Files"); `-` and `_` are one in option names.
/// - nats-server (`*.conf`): top-level `port` or `listen: host:port` for clients,
///   `http_port`/`monitor_port`/`http` for monitoring, and `port`/`listen` inside
///   `cluster`, `leafnodes` (or `leaf`) and `gateway` blocks (nats-server's opts.go parses
///   each block on its own; keys are case-insensitive).
/// - postfix `master.cf`: every `inet` service running smtpd (or postscreen) is an SMTP
///   listener on its `[host:]port` (master(5)); `-o smtpd_tls_wrappermode=yes` on its
///   continuation lines makes it implicit TLS. A service named twice: the last wins.
public enum ServerConfig {
    /// One file as the container sees it.
    public struct File: Sendable, Hashable {
        public var path: String
        public var text: String

        public init(path: String, text: String) {
            self.path = path
            self.text = text
        }

        var name: Substring { path.split(separator: "/").last ?? Substring(path) }
    }

    public enum Dialect: Sendable {
        case mysqlOptionFile, natsServer, postfixMaster

        func reads(_ file: File) -> Bool {
            switch self {
            case .mysqlOptionFile: file.name.hasSuffix(".cnf")
            case .natsServer: file.name.hasSuffix(".conf")
            case .postfixMaster: file.name == "master.cf"
            }
        }
    }

    /// A config setting that moves one of an image's ports.
    public enum Setting: Sendable, Hashable {
        case mysqlPort, mysqlxPort
        case natsClient, natsCluster, natsMonitor, natsLeafnodes, natsGateway
    }

    /// A listener the config declares beyond the image's own ports.
    public struct Service: Sendable {
        public var port: UInt16
        public var application: ApplicationProtocol
        public var source: String
    }

    public struct Reading: Sendable {
        /// Each setting found, with where ("port 3307 in my.cnf").
        public var settings: [Setting: (port: UInt16, source: String)] = [:]
        public var services: [Service] = []
    }

    public static func read(_ dialect: Dialect, files: [File]) -> Reading {
        var reading = Reading()
        for file in files where dialect.reads(file) {
            switch dialect {
            case .mysqlOptionFile: readOptionFile(file, into: &reading)
            case .natsServer: readNATS(file, into: &reading)
            case .postfixMaster: readMasterCF(file, into: &reading)
            }
        }
        return reading
    }

    /// The number in `3307`, `"0.0.0.0:4333"`, `nats://h:6222`, `[::]:25`; nil otherwise.
    static func portNumber(_ text: Substring) -> UInt16? {
        // Quotes, and the `,` or `;` nats.conf and JSON end a setting with.
        let value = text.trimmingBlanks.filter { $0 != "\"" && $0 != "'" && $0 != "," && $0 != ";" }
        let last = value.split(separator: ":").last.map(String.init) ?? value
        guard let port = UInt16(last), port > 0 else { return nil }
        return port
    }

    // MARK: MySQL option files

    static let serverSections: Set<String> = ["mysqld", "server", "mariadb", "mariadbd", "galera", "client-server"]

    static func readOptionFile(_ file: File, into reading: inout Reading) {
        var inServerSection = false
        for rawLine in file.text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingBlanks
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") || line.hasPrefix("!") { continue }
            if line.hasPrefix("["), let close = line.firstIndex(of: "]") {
                let section = line[line.index(after: line.startIndex)..<close].lowercased().map { $0 == "_" ? "-" : $0 }.reduce(into: "") { $0.append($1) }
                // [mysqld-8.0], [mariadb-10.6]: a version's own section.
                let base = section.split(separator: "-").first.map(String.init) ?? section
                inServerSection = serverSections.contains(section) || (section != base && serverSections.contains(base) && section.dropFirst(base.count + 1).first?.isNumber == true)
                continue
            }
            guard inServerSection, let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals].trimmingBlanks.lowercased().map { $0 == "_" ? "-" : $0 })
            var value = line[line.index(after: equals)...]
            if let comment = value.firstIndex(of: "#") { value = value[..<comment] }
            guard let port = portNumber(value) else { continue }
            switch key {
            case "port": reading.settings[.mysqlPort] = (port, "port = \(port) in \(file.name)")
            case "mysqlx-port": reading.settings[.mysqlxPort] = (port, "mysqlx-port = \(port) in \(file.name)")
            default: continue
            }
        }
    }

    // MARK: nats-server

    static func readNATS(_ file: File, into reading: inout Reading) {
        var blocks: [String] = []
        // Comments go first, then every brace gets a line of its own, so that
        // `leafnodes: { port: 7433 }` reads as a block like the multi-line form.
        let uncommented = file.text.split(whereSeparator: \.isNewline).map { uncommentedNATS($0.trimmingBlanks) }
            .joined(separator: "\n")
        var statements: [Substring] = []
        for line in uncommented.split(whereSeparator: \.isNewline) {
            var rest = line[...]
            while let brace = rest.firstIndex(where: { $0 == "{" || $0 == "}" }) {
                statements.append(rest[..<rest.index(after: brace)])
                rest = rest[rest.index(after: brace)...]
            }
            statements.append(rest)
        }
        for statement in statements {
            var line = statement.trimmingBlanks
            // `port: 7433 }`: the setting belongs to the block the brace then closes.
            let closesBlock = line.hasSuffix("}")
            if closesBlock { line = line.dropLast().trimmingBlanks }
            defer { if closesBlock && !blocks.isEmpty { blocks.removeLast() } }
            if line.isEmpty { continue }
            // `cluster {`, `cluster: {`, `leafnodes = {`
            if line.hasSuffix("{") {
                let name = line.dropLast().trimmingBlanks.filter { $0 != ":" && $0 != "=" && $0 != "\"" }.trimmingBlanks.lowercased()
                // The outer braces of a JSON-style file (the NATS Helm chart writes one)
                // are the top level itself.
                if name.isEmpty && blocks.isEmpty { continue }
                blocks.append(name)
                continue
            }

            guard let separator = line.firstIndex(where: { $0 == ":" || $0 == "=" || $0 == " " }) else { continue }
            let key = line[..<separator].filter { $0 != "\"" }.lowercased()
            let value = line[line.index(after: separator)...].drop { $0 == ":" || $0 == "=" || $0 == " " }
            guard let port = portNumber(value) else { continue }
            let setting: Setting?
            switch (blocks.last, key) {
            case (nil, "port"), (nil, "listen"): setting = .natsClient
            case (nil, "http_port"), (nil, "monitor_port"), (nil, "http"): setting = .natsMonitor
            case ("cluster", "port"), ("cluster", "listen"): setting = .natsCluster
            case ("leafnodes", "port"), ("leafnodes", "listen"), ("leaf", "port"), ("leaf", "listen"): setting = .natsLeafnodes
            case ("gateway", "port"), ("gateway", "listen"): setting = .natsGateway
            default: setting = nil  // websocket, mqtt, authorization…
            }
            if let setting { reading.settings[setting] = (port, "\(key) \(port)\(blocks.last.map { " in its \($0) block" } ?? "") in \(file.name)") }
        }
    }

    /// A nats.conf line without its comment: `#` or `//` outside quotes
    /// (`token: "a#b"` and `url: "nats://h:7422"` keep theirs).
    static func uncommentedNATS(_ line: Substring) -> Substring {
        var quote: Character?
        var previous: Character?
        for index in line.indices {
            let character = line[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#" || (character == "/" && previous == "/") {
                let end = character == "#" ? index : line.index(before: index)
                return line[..<end]
            }
            previous = character
        }
        return line
    }

    // MARK: postfix master.cf

    /// master.cf service names that stand for ports (/etc/services).
    static let serviceNames: [String: UInt16] = ["smtp": 25, "submission": 587, "submissions": 465, "smtps": 465]

    /// smtpd_tls_wrappermode set on a master.cf line (`=yes`, `= no`, `-o { … }`): the
    /// last setting on the line; nil when the line sets none.
    static func wrapperMode(_ line: Substring) -> Bool? {
        let compact = String(line.filter { $0 != " " && $0 != "\t" && $0 != "{" && $0 != "}" }).lowercased()
        guard let found = compact.ranges(of: "smtpd_tls_wrappermode=").last else { return nil }
        return compact[found.upperBound...].hasPrefix("yes")
    }

    static func readMasterCF(_ file: File, into reading: inout Reading) {
        struct Listener {
            var port: UInt16
            var line: Substring
            var wrapper = false
        }
        var listeners: [UInt16: Listener] = [:]
        var current: UInt16?
        for rawLine in file.text.split(whereSeparator: \.isNewline) {
            if rawLine.trimmingBlanks.hasPrefix("#") || rawLine.trimmingBlanks.isEmpty { continue }
            if rawLine.first == " " || rawLine.first == "\t" {
                // A continuation: `-o smtpd_tls_wrappermode=yes` belongs to the service above.
                if let current, let wrapper = wrapperMode(rawLine) { listeners[current]?.wrapper = wrapper }
                continue
            }
            current = nil
            let fields = rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 8, fields[1] == "inet", fields[7] == "smtpd" || fields[7] == "postscreen" else { continue }
            let service = fields[0].split(separator: ":").last.map(String.init) ?? String(fields[0])
            guard let port = UInt16(service) ?? serviceNames[service], port > 0 else { continue }
            // `-o` may also follow the command on the service's own line.
            listeners[port] = Listener(port: port, line: rawLine.trimmingBlanks, wrapper: wrapperMode(rawLine) ?? false)
            current = port
        }
        for listener in listeners.values.sorted(by: { $0.port < $1.port }) {
            reading.services.append(Service(
                port: listener.port, application: listener.wrapper ? ProtocolCatalog.smtps : ProtocolCatalog.smtp,
                source: "the \(listener.wrapper ? "implicit-TLS " : "")smtpd service on \(listener.port) in \(file.name)"))
        }
    }
}

extension StringProtocol {
    /// Without leading and trailing blanks (spaces, tabs, carriage returns).
    var trimmingBlanks: SubSequence {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) }) else { return self[endIndex...] }
        return self[first...last]
    }
}

import Diagnosis
import Formats
import Foundation
import JSON
import MeshLint
import Rendering
import Testing

/// The manifest corpus in Fixtures/manifests: every rule right and wrong.
@Suite("lint")
struct LintTests {
    func lint(_ names: [String], options: LintOptions = LintOptions()) throws -> LintReport {
        var objects: [ManifestObject] = []
        for name in names {
            objects += try ManifestParser.parse(try Fixture.text("manifests/\(name)"), file: name)
        }
        return Linter.lint(objects, files: names, options: options)
    }

    /// The 1-based line of the `occurrence`th line containing `marker`.
    func line(_ name: String, _ marker: String, occurrence: Int = 1) throws -> Int {
        let lines = try Fixture.text("manifests/\(name)").split(separator: "\n", omittingEmptySubsequences: false)
        let matches = lines.indices.filter { lines[$0].contains(marker) }
        return try #require(matches.dropFirst(occurrence - 1).first) + 1
    }

    /// The line of the apiVersion key that opens the object holding `marker`.
    func objectLine(_ name: String, _ marker: String, occurrence: Int = 1) throws -> Int {
        let lines = try Fixture.text("manifests/\(name)").split(separator: "\n", omittingEmptySubsequences: false)
        let markerLine = try line(name, marker, occurrence: occurrence)
        return try #require(lines[0..<markerLine].lastIndex { $0.hasPrefix("apiVersion") }) + 1
    }

    func found(_ report: LintReport) -> [String] {
        report.findings.map { "\($0.rule.id)@\($0.line)" }
    }

    @Test func flagsTheSniffedMySQLPortOnly() throws {
        let report = try lint(["istio-mysql.yaml"])
        #expect(found(report) == ["CTD101@\(try line("istio-mysql.yaml", "- name: db  "))"])
        let finding = try #require(report.findings.first)
        #expect(finding.object == "Service/db/mysql" && finding.port == 3307 && finding.workloads == ["Deployment/db/mysql"])
        #expect(finding.message.contains("from the image docker.io/library/mysql:8.0"))
        #expect(finding.fix.contains("tcp-db"))
        #expect(report.notices.isEmpty, "the namespace says the mesh")
    }

    @Test func flagsHTTPDeclaredOnSMTPAndTheUnknownNameButNotSMTPS() throws {
        let report = try lint(["istio-smtp.yaml"])
        #expect(found(report) == [
            "CTD102@\(try line("istio-smtp.yaml", "http-mail"))", "CTD101@\(try line("istio-smtp.yaml", "name: smtp "))",
        ])
        #expect(report.findings.first?.message.contains("declared http") == true)
    }

    @Test func leavesClientFirstProtocolsAlone() throws {
        let report = try lint(["client-first.yaml"])
        #expect(report.findings.isEmpty, "PostgreSQL, Redis, MongoDB, Memcache, HTTP, Kafka, TLS speak first from the client")
        #expect(report.notices.count == 1, "Istio's rules were assumed")
    }

    @Test func checksServiceEntryProtocols() throws {
        let report = try lint(["serviceentry.yaml"])
        #expect(found(report) == [
            "CTD103@\(try line("serviceentry.yaml", "number: 25"))", "CTD103@\(try line("serviceentry.yaml", "number: 4222"))",
        ])
    }

    @Test func informsAboutPermissiveAndOneSidedMTLS() throws {
        let report = try lint(["peerauthentication.yaml"])
        #expect(found(report) == [
            "CTD104@\(try objectLine("peerauthentication.yaml", "kind: PeerAuthentication"))",
            "CTD105@\(try line("peerauthentication.yaml", "3306:"))",
        ])
        #expect(report.findings.allSatisfy { $0.severity == .info })
        #expect(report.findings[1].message.contains("DestinationRule/messaging/legacy-db"))
    }

    @Test func appliesLinkerdsOpaquePortRules() throws {
        let report = try lint(["linkerd.yaml"])
        let file = "linkerd.yaml"
        #expect(found(report) == [
            "CTD201@\(try line(file, "port: 4222              # WRONG"))",
            "CTD202@\(try line(file, "CTD202"))",
            "CTD205@\(try objectLine(file, "name: catalog-db"))",
            "CTD203@\(try line(file, "CTD203"))",
            "CTD204@\(try line(file, "name: memcache"))",
            "CTD206@\(try objectLine(file, "name: broken"))",
        ])
        let severities = report.findings.map(\.severity)
        #expect(severities == [.warning, .warning, .info, .warning, .info, .warning])
        #expect(report.findings.first { $0.rule.id == "CTD203" }?.message.contains("replaces that list") == true)
    }

    @Test func readsHelmOutputJSONListsAndAnchors() throws {
        let helm = try lint(["helm-rendered.yaml"])
        #expect(found(helm) == ["CTD101@\(try line("helm-rendered.yaml", "- port: 2525"))"])
        #expect(helm.objectCount == 3, "the empty trailing document is skipped")
        let list = try lint(["list.json"])
        #expect(list.findings.map(\.rule.id) == ["CTD101"] && list.objectCount == 3)
        #expect(list.findings.first?.workloads == ["Pod/ftp/ftp"])
        let anchors = try lint(["anchors.yaml"])
        #expect(Set(anchors.findings.map(\.rule.id)) == ["CTD101", "CTD106"])
        #expect(anchors.findings.first { $0.rule.id == "CTD101" }?.workloads == ["DaemonSet/edge/relay"], "the selector matched labels written through an alias")
    }

    /// Merge keys bring in what they name, and a mapping's own keys override them: the
    /// pod's labels come partly from a merge, the second port overrides the first's name.
    @Test func readsWhatMergeKeysBringIn() throws {
        let report = try lint(["merge-keys.yaml"])
        #expect(found(report) == ["CTD101@\(try line("merge-keys.yaml", "- &plain-smtp"))"], "the port item begins at its anchor")
        #expect(report.findings.first?.workloads == ["Deployment/mail/relay"], "the selector matched labels merged in")
    }

    /// Linkerd's close-wait-timeout as the injector reads it (Go durations, whole seconds,
    /// a root linkerd-init), and Istio pods whose own sysctl is shorter than Envoy's idle
    /// timeout.
    @Test func judgesTheCloseWaitTimeoutAgainstTheProxy() throws {
        let file = "close-wait.yaml"
        let report = try lint([file])
        let byObject = Dictionary(grouping: report.findings, by: \.object).mapValues { $0.map { "\($0.rule.id) \($0.severity.name)" }.sorted() }
        #expect(byObject["Deployment/payments/ledger"] == ["CTD207 warning"])
        #expect(byObject["Deployment/payments/sweeper"] == ["CTD207 warning"])
        #expect(byObject["Deployment/payments/billing"] == ["CTD208 info", "CTD209 info"])
        #expect(byObject["Pod/payments/audit"] == ["CTD208 warning", "CTD209 info"], "rendered without --timeout-close-wait-secs")
        #expect(byObject["Deployment/shop/cart"] == ["CTD209 warning"])
        #expect(byObject["Deployment/shop/checkout"] == nil, "7200 s outlives Envoy's 1 h")
        let invalid = try #require(report.findings.first { $0.object == "Deployment/payments/ledger" })
        #expect(invalid.line == (try line(file, "close-wait-timeout: \"3600\"")))
        #expect(invalid.message.contains("not a Go duration"))
        let cart = try #require(report.findings.first { $0.object == "Deployment/shop/cart" })
        #expect(cart.line == (try line(file, "value: \"120\"")) - 1, "the sysctl's list item")
        #expect(cart.message.contains("1800 s (ISTIO_META_IDLE_TIMEOUT=30m"), "\(cart.message)")
        #expect(cart.message.contains("up to 1680 s"))
    }

    /// A sysctl value no kernel takes is not compared (it once overflowed the subtraction).
    @Test func anAbsurdCloseWaitSysctlIsNotJudged() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: {name: odd, annotations: {sidecar.istio.io/inject: "true"}}
            spec:
              securityContext:
                sysctls: [{name: net.netfilter.nf_conntrack_tcp_timeout_close_wait, value: "-9223372036854775808"}]
              containers: [{name: app, image: nginx:1.27}]
            """
        let report = Linter.lint(try ManifestParser.parse(yaml, file: "odd.yaml"), files: ["odd.yaml"])
        #expect(!report.findings.contains { $0.rule == .closeWaitShorterThanIdle })
    }

    @Test func namesWorkloadPortsNoServiceDeclares() throws {
        let report = try lint(["workload-kinds.yaml"])
        #expect(found(report) == [
            "CTD106@\(try line("workload-kinds.yaml", "name: smtp"))",
            "CTD106@\(try line("workload-kinds.yaml", "containerPort: 21"))",
        ])
        #expect(report.findings.map(\.object) == ["CronJob/jobs/nightly-mail", "Job/jobs/import"], "the unmeshed Deployment is skipped")
    }

    @Test func meshAndCustomProtocolsCanBeGiven() throws {
        let asLinkerd = try lint(["client-first.yaml"], options: LintOptions(mesh: .linkerd))
        #expect(asLinkerd.findings.isEmpty && asLinkerd.notices.isEmpty)
        let custom = ProtocolCatalog(additions: [9092: ApplicationProtocol("legacy-broker", .server)])
        let report = try lint(["client-first.yaml"], options: LintOptions(catalog: custom))
        #expect(report.findings.map(\.rule.id) == ["CTD101"] && report.findings[0].message.contains("--server-first 9092"))
    }

    @Test(arguments: [
        ("bad-indentation.yaml", 5, "did not find expected key"),
        ("not-an-object.yaml", 5, "must be a mapping"),
    ])
    func badInputIsAOneLineErrorWithItsLine(name: String, line: Int, message: String) throws {
        let text = try Fixture.text("manifests/\(name)")
        do {
            _ = try ManifestParser.parse(text, file: name)
            Issue.record("accepted \(name)")
        } catch {
            #expect(error.line == line && error.description.contains(message), "\(error)")
            #expect(error.description.hasPrefix("\(name):\(line):") && !error.description.contains("\n"))
        }
    }

    @Test func anAliasBombIsRefusedNotExpanded() throws {
        // Seven levels of ten aliases: a million Services from a few hundred bytes.
        var yaml = "kind: List\nitems:\n  - &l0 {kind: Service, metadata: {name: x}}\n"
        for level in 1...6 {
            yaml += "  - &l\(level) {kind: List, items: [" + Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ") + "]}\n"
        }
        let start = ContinuousClock.now
        #expect(throws: ManifestError.self) { _ = try ManifestParser.parse(yaml, file: "bomb.yaml") }
        #expect(ContinuousClock.now - start < .seconds(10))
    }

    @Test func jsonAndSARIFCarryEveryFinding() throws {
        let report = try lint(["istio-smtp.yaml", "linkerd.yaml"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(LintDocument.json(report, failOn: .warning).text.utf8)) as? [String: Any])
        #expect(json["schema"] as? String == "ctdoctor.lint.v1" && json["worst_severity"] as? String == "error")
        let findings = try #require(json["findings"] as? [[String: Any]])
        #expect(findings.count == report.findings.count)
        #expect(Set(findings.first?.keys.map { $0 } ?? []) == ["rule", "name", "severity", "file", "line", "object", "port", "workloads", "message", "fix"])

        let sarif = try #require(try JSONSerialization.jsonObject(with: Data(LintDocument.sarif(report, version: "test").text.utf8)) as? [String: Any])
        #expect(sarif["version"] as? String == "2.1.0")
        let run = try #require((sarif["runs"] as? [[String: Any]])?.first)
        let rules = try #require(((run["tool"] as? [String: Any])?["driver"] as? [String: Any])?["rules"] as? [[String: Any]])
        #expect(rules.count == LintRule.all.count)
        let results = try #require(run["results"] as? [[String: Any]])
        #expect(results.count == report.findings.count)
        for (result, finding) in zip(results, report.findings) {
            #expect(result["ruleId"] as? String == finding.rule.id)
            #expect(rules[result["ruleIndex"] as! Int]["id"] as? String == finding.rule.id)
            #expect(["error", "warning", "note"].contains(result["level"] as? String ?? ""))
            let location = (((result["locations"] as? [[String: Any]])?.first?["physicalLocation"] as? [String: Any]))
            #expect((location?["region"] as? [String: Any])?["startLine"] as? Int == finding.line)
            #expect((location?["artifactLocation"] as? [String: Any])?["uri"] as? String == finding.file)
        }
    }

    @Test func humanOutputReadsLikeACompiler() throws {
        let report = try lint(["istio-smtp.yaml"])
        let text = LintRendering.human(report, color: false)
        let lines = text.split(separator: "\n")
        #expect(lines.first?.hasPrefix("istio-smtp.yaml:\(try line("istio-smtp.yaml", "http-mail")): error CTD102 istio-server-first-declared-wrong: ") == true)
        #expect(lines.last == "2 errors in 2 objects from 1 file")
    }

    @Test func istioProtocolSelectionFollowsIstiosOrder() {
        #expect(IstioSelection.select(name: "http-db", appProtocol: "tcp", port: 3306) == .declared(protocolName: "tcp", how: "appProtocol: tcp"))
        #expect(IstioSelection.select(name: "tcp", appProtocol: nil, port: 25) == .declared(protocolName: "tcp", how: "name tcp"))
        #expect(IstioSelection.select(name: "grpc-web-ui", appProtocol: nil, port: 80) == .declared(protocolName: "grpc-web", how: "name grpc-web-ui"))
        #expect(IstioSelection.select(name: "smtp", appProtocol: nil, port: 25) == .wellKnownTCP(port: 25))
        #expect(IstioSelection.select(name: "smtp", appProtocol: "smtp", port: 2525) == .sniffed)
        #expect(IstioSelection.select(name: nil, appProtocol: "kubernetes.io/h2c", port: 80) == .declared(protocolName: "http2", how: "appProtocol: kubernetes.io/h2c"))
    }

    /// Istio's ConvertProtocol: a set appProtocol decides alone — recognised or not — and
    /// the name is then never read; the always-TCP ports apply only to what would be
    /// unsupported.
    @Test(arguments: [
        ("tcp-smtp", "smtp", 2525, IstioSelection.sniffed),
        ("tcp-db", "linkerd.io/opaque", 4222, .sniffed),
        ("tcp-db", "linkerd.io/opaque", 3306, .wellKnownTCP(port: 3306)),
        ("http-x", "TCP", 8080, .declared(protocolName: "tcp", how: "appProtocol: TCP")),
        ("db", "tcp-legacy", 4222, .declared(protocolName: "tcp", how: "appProtocol: tcp-legacy")),
        ("http-x", nil, 3306, .declared(protocolName: "http", how: "name http-x")),
        ("ui", "grpc-web", 80, .declared(protocolName: "grpc-web", how: "appProtocol: grpc-web")),
    ] as [(String?, String?, Int, IstioSelection)])
    func appProtocolAloneDecidesWhenSet(name: String?, appProtocol: String?, port: Int, expected: IstioSelection) {
        #expect(IstioSelection.select(name: name, appProtocol: appProtocol, port: port) == expected)
    }

    /// Whole tokens, never substrings: "imaps" is implicit TLS (client-first), not IMAP.
    @Test(arguments: [
        ("imaps", "IMAPS (implicit TLS)", false), ("imap", "IMAP", true), ("smtps", "SMTPS (implicit TLS)", false),
        ("submissions", "SMTPS (implicit TLS)", false), ("submission", "SMTP", true), ("mysql-primary", "MySQL", true),
        ("tcp-pop3s", "POP3S (implicit TLS)", false), ("mysqlx", "MySQL X Protocol", false), ("galera", "Galera replication", true),
    ])
    func namesMatchWholeProtocolTokens(name: String, protocolName: String, serverFirst: Bool) throws {
        let (application, _) = try #require(ProtocolCatalog().byName(name))
        #expect(application.name == protocolName && application.isServerFirst == serverFirst)
    }

    @Test(arguments: ["my-sqlite", "imapsync-web", "notsmtp", "ldap-proxy"])
    func substringsAreNotProtocols(name: String) {
        #expect(ProtocolCatalog().byName(name) == nil, "\(name)")
    }

    /// The port a server listens on, from its command, args or env.
    @Test(arguments: [
        (["mysqld", "--port=3307"], [:], [3307] as [UInt16]),
        (["--port", "3307"], [:], [3307]),
        (["-P3308"], [:], [3308]),
        (["sh", "-c", "exec docker-entrypoint.sh mysqld --port 3309 --bind-address=0.0.0.0"], [:], [3309]),
        ([], ["MYSQL_TCP_PORT": "3310"], [3310]),
        (["--port=3311"], ["MYSQL_TCP_PORT": "3310"], [3311]),
        (["--character-set-server=utf8mb4"], [:], [3306]),
    ] as [([String], [String: String], [UInt16])])
    func aServersPortComesFromItsArgumentsAndEnvironment(arguments: [String], environment: [String: String], ports: [UInt16]) throws {
        let match = try #require(ProtocolCatalog().byImage("mysql:8.0", arguments: arguments, environment: environment))
        #expect(match.ports.filter { $0.value.application == ProtocolCatalog.mysql }.keys.sorted() == ports)
    }

    @Test func natsClientsStallButItsRoutesDoNot() throws {
        let catalog = ProtocolCatalog()
        #expect(catalog.byPort(4222)?.0.isServerFirst == true)
        #expect(catalog.byPort(6222)?.0.firstSpeaker == .both, "both ends of a route send INFO at once")
        let match = try #require(catalog.byImage("nats:2.10", arguments: ["-p", "4333", "--cluster", "nats://0.0.0.0:6333", "-m", "8223"]))
        #expect(match.ports[4333]?.application == ProtocolCatalog.nats && match.ports[4222] == nil)
        #expect(match.ports[6333]?.application == ProtocolCatalog.natsRoute && match.ports[8223]?.application == ProtocolCatalog.http)
        #expect(match.ports[7422]?.application.isServerFirst == true, "leafnode servers send INFO first")
    }

    /// MySQL on 3307 behind a port named "db" reached by targetPort name: only the
    /// container's args say what it serves.
    @Test func aServerFirstServerOnAPortItsArgsSetIsFound() throws {
        let yaml = """
            apiVersion: v1
            kind: Service
            metadata: {name: orders-db, namespace: shop}
            spec:
              selector: {app: orders-db}
              ports: [{name: db, port: 3307, targetPort: db}]
            ---
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: orders-db, namespace: shop}
            spec:
              template:
                metadata: {labels: {app: orders-db}, annotations: {sidecar.istio.io/inject: "true"}}
                spec:
                  containers:
                    - name: mysql
                      image: mysql:8.0
                      args: ["--port=3307"]
                      ports: [{name: db, containerPort: 3307}]
            """
        let report = Linter.lint(try ManifestParser.parse(yaml, file: "db.yaml"), files: ["db.yaml"])
        let finding = try #require(report.findings.first { $0.rule == .istioSniffed }, "\(report.findings.map(\.message))")
        #expect(finding.message.contains("mysql:8.0 with --port 3307"))
        #expect(!finding.fix.contains("start TLS") && finding.fix.contains("only after the server's greeting"), "\(finding.fix)")
    }

    /// Each port of a multi-port server has its own direction (the catalog cites the
    /// server's source for each).
    @Test(arguments: [
        ("mysql:8.0", 3306, FirstSpeaker.server), ("mysql:8.0", 33060, .client),
        ("mariadb:11", 4567, .server), ("mariadb:11", 4568, .server), ("mariadb:11", 4444, .both),
        ("nats:2.10", 4222, .server), ("nats:2.10", 6222, .both), ("nats:2.10", 8222, .client), ("nats:2.10", 7522, .server),
        ("dovecot/dovecot:2.3", 143, .server), ("dovecot/dovecot:2.3", 993, .client), ("dovecot/dovecot:2.3", 4190, .server),
        ("dovecot/dovecot:2.3", 24, .server), ("rabbitmq:3-management", 5672, .client), ("rabbitmq:3-management", 25672, .client),
        ("rabbitmq:3-management", 4369, .client), ("zookeeper:3.9", 2888, .client), ("zookeeper:3.9", 3888, .client),
        ("elasticsearch:8.13.0", 9300, .client), ("postfix:3", 465, .client), ("redis:7", 16379, .client),
    ] as [(String, Int, FirstSpeaker)])
    func everyPortOfAMultiPortServerHasItsOwnDirection(image: String, port: Int, speaker: FirstSpeaker) throws {
        let match = try #require(ProtocolCatalog().byImage(image))
        #expect(match.ports[UInt16(port)]?.application.firstSpeaker == speaker)
    }

    @Test func imagesOfOtherProgramsUnderAServersNameAreNotThatServer() throws {
        let catalog = ProtocolCatalog()
        #expect(catalog.byImage("percona/percona-server-mongodb:7.0", arguments: ["--port=27017"]) == nil)
        #expect(catalog.byImage("natsio/nats-surveyor:0.5", arguments: ["-p", "7777"]) == nil)
        #expect(catalog.byImage("percona/percona-server:8.0")?.ports[3306]?.application == ProtocolCatalog.mysql)
        #expect(catalog.byImage("bitnami/mariadb-galera:11")?.ports[4567]?.application == ProtocolCatalog.galera)
    }

    @Test func theLastPortFlagWinsAndGoStyleSingleDashFlagsCount() throws {
        let catalog = ProtocolCatalog()
        let mysql = try #require(catalog.byImage("mysql:8", arguments: ["sh", "-c", "mysqladmin -P 3306 ping; exec mysqld --port=3307"]))
        #expect(mysql.ports[3307]?.application == ProtocolCatalog.mysql && mysql.ports[3306] == nil)
        let nats = try #require(catalog.byImage("nats:2.10", arguments: ["-port", "4333", "-cluster", "nats://0.0.0.0:5222"]))
        #expect(nats.ports[4333]?.application == ProtocolCatalog.nats && nats.ports[5222]?.application == ProtocolCatalog.natsRoute)
    }

    @Test func rabbitMQsPortsMoveWithItsEnvironment() throws {
        let match = try #require(ProtocolCatalog().byImage("rabbitmq:3", environment: ["RABBITMQ_NODE_PORT": "5673", "RABBITMQ_DIST_PORT": "25673"]))
        #expect(match.ports[5673]?.application == ProtocolCatalog.amqp && match.ports[25673]?.application == ProtocolCatalog.erlangDistribution)
        #expect(match.ports[5672] == nil)
    }

    /// Ports set in a ConfigMap the pod mounts: found there, each judged by its own
    /// direction (NATS routes and implicit TLS are not flagged).
    @Test func portsFromMountedServerConfigsAreJudgedByTheirDirection() throws {
        let file = "configmap-ports.yaml"
        let report = Linter.lint(try ManifestParser.parse(try Fixture.text("manifests/\(file)"), file: file), files: [file])
        let sniffed = report.findings.filter { $0.rule == .istioSniffed }
        let flagged = Set(sniffed.compactMap(\.port))
        #expect(flagged == [3307, 4333, 2525], "\(report.findings.map(\.message))")
        #expect(sniffed.first { $0.port == 3307 }?.message.contains("port = 3307 in custom.cnf") == true)
        #expect(sniffed.first { $0.port == 4333 }?.message.contains("port 4333 in nats.conf") == true)
        #expect(sniffed.first { $0.port == 2525 }?.message.contains("smtpd service on 2525 in master.cf") == true)
    }

    @Test func opaquePortSetsReadRanges() throws {
        let ports = try #require(OpaquePorts(parsing: "25, 4000-4100,11211"))
        #expect(ports.contains(25) && ports.contains(4050) && !ports.contains(4101) && ports.description == "25,4000-4100,11211")
        #expect(OpaquePorts(parsing: "25,smtp") == nil && OpaquePorts(parsing: "4100-4000") == nil && OpaquePorts(parsing: "70000") == nil)
        #expect(OpaquePorts.defaults.contains(3306) && !OpaquePorts.defaults.contains(4222))
    }

    @Test func theCatalogKnowsWhoSpeaksFirst() {
        let catalog = ProtocolCatalog()
        for port: UInt16 in [25, 587, 3306, 4222, 21, 110, 143, 5900, 23] { #expect(catalog.byPort(port)?.0.isServerFirst == true, "\(port)") }
        for port: UInt16 in [5432, 6379, 27017, 11211, 443, 465, 993, 995, 636, 990, 5671, 33060, 80, 53] { #expect(catalog.byPort(port)?.0.isServerFirst == false, "\(port)") }
        #expect(catalog.byImage("registry.io/bitnami/mariadb:11.4@sha256:abc")?.ports[3306]?.application.name == "MySQL")
        #expect(catalog.byImage("postgres:16") == nil)
        #expect(catalog.byName("mariadb-primary")?.0.name == "MySQL")
        #expect(ProtocolCatalog.parseAddition("7000/legacy")?.1.name == "legacy" && ProtocolCatalog.parseAddition("x") == nil)
    }
}

@Suite("Server config files")
struct ServerConfigTests {
    func reading(_ dialect: ServerConfig.Dialect, _ name: String, _ text: String) -> ServerConfig.Reading {
        ServerConfig.read(dialect, files: [ServerConfig.File(path: "/etc/x/\(name)", text: text)])
    }

    @Test func optionFilesCountOnlyTheServersSections() {
        let text = """
            [client]
            port = 4000
            [mysqld-8.0]
            port=3307   # moved
            mysqlx_port = 33070
            ; comment
            !includedir /etc/mysql/conf.d/
            """
        let found = reading(.mysqlOptionFile, "my.cnf", text)
        #expect(found.settings[.mysqlPort]?.port == 3307 && found.settings[.mysqlxPort]?.port == 33070)
        #expect(found.settings[.mysqlPort]?.source == "port = 3307 in my.cnf")
        #expect(reading(.mysqlOptionFile, "my.cnf", "[client]\nport=4000\n").settings.isEmpty)
        #expect(reading(.mysqlOptionFile, "my.cnf", "[client-server]\nport=4001\n").settings[.mysqlPort]?.port == 4001)
        #expect(reading(.mysqlOptionFile, "notes.txt", "[mysqld]\nport=1\n").settings.isEmpty, "only *.cnf files")
    }

    @Test func natsBlocksKeepTheirOwnPorts() {
        let text = """
            # client port
            listen: 0.0.0.0:4333
            http: "0.0.0.0:8223"
            cluster {
              name: c1
              listen: 0.0.0.0:6333
              routes: ["nats://n1:6333"]
            }
            leafnodes: { port: 7433 }
            websocket { port: 8080 }
            gateway = {
              port = 7533
            }
            """
        let found = reading(.natsServer, "nats.conf", text)
        #expect(found.settings[.natsClient]?.port == 4333 && found.settings[.natsMonitor]?.port == 8223)
        #expect(found.settings[.natsCluster]?.port == 6333 && found.settings[.natsLeafnodes]?.port == 7433)
        #expect(found.settings[.natsGateway]?.port == 7533)
        #expect(found.settings.count == 5, "the websocket block's port is not the client's")
    }

    /// The NATS Helm chart writes nats.conf as JSON; hand-written ones end settings with
    /// `,` and keep `#` inside quoted values.
    @Test func natsConfigInJSONAndWithQuotedHashes() {
        let json = """
            {
              "cluster": {
                "name": "nats",
                "port": 6333
              },
              "http_port": 8223,
              "port": 4333
            }
            """
        let found = reading(.natsServer, "nats.conf", json)
        #expect(found.settings[.natsClient]?.port == 4333 && found.settings[.natsCluster]?.port == 6333)
        #expect(found.settings[.natsMonitor]?.port == 8223)
        let handwritten = """
            authorization { token: "s3#cret" }
            leafnodes { remotes: [ { url: "nats-leaf://hub:7422" } ] }
            listen: 0.0.0.0:4444,   # clients
            """
        let other = reading(.natsServer, "nats.conf", handwritten)
        #expect(other.settings[.natsClient]?.port == 4444, "the braces after a quoted # still close their blocks")
        #expect(other.settings[.natsLeafnodes] == nil)
    }

    @Test func wrapperModeOnTheServiceLineAndTheLastSettingWins() {
        let text = """
            smtps     inet  n       -       y       -       -       smtpd -o smtpd_tls_wrappermode=yes
            2465      inet  n       -       y       -       -       smtpd
              -o smtpd_tls_wrappermode=yes
              -o smtpd_tls_wrappermode=no
            """
        let services = reading(.postfixMaster, "master.cf", text).services
        #expect(services.first { $0.port == 465 }?.application == ProtocolCatalog.smtps)
        #expect(services.first { $0.port == 2465 }?.application == ProtocolCatalog.smtp)
    }

    @Test func masterCFDeclaresSMTPListenersAndImplicitTLS() {
        let text = """
            smtp      inet  n       -       y       -       -       smtpd
            2525      inet  n       -       y       -       -       smtpd
            #submission inet n       -       y       -       -       smtpd
            127.0.0.1:10025 inet n  -       n       -       -       smtpd
            smtps     inet  n       -       y       -       -       smtpd
              -o smtpd_tls_wrappermode=yes
            pickup    unix  n       -       y       60      1       pickup
            """
        let services = reading(.postfixMaster, "master.cf", text).services
        #expect(services.map(\.port) == [25, 465, 2525, 10025])
        #expect(services.first { $0.port == 465 }?.application == ProtocolCatalog.smtps)
        #expect(services.first { $0.port == 2525 }?.application == ProtocolCatalog.smtp)
    }
}

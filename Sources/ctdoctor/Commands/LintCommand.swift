import ArgumentParser
import Diagnosis
import Formats
import JSON
import KernelIO
import MeshLint
import Rendering

struct LintCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Find server-first protocols (MySQL, SMTP, NATS, FTP…) that a sidecar's protocol detection stalls, in Kubernetes manifests.",
        discussion: """
            Reads YAML or JSON manifests (multi-document, kind: List, anchors and << merge keys, Helm output), matches \
            workloads to Services by selector, and applies Istio/ASM or Linkerd's rules for \
            choosing a port's protocol: a server-first protocol on a port the sidecar sniffs is a \
            deadlock (error) under Istio and a 10 s delay per connection (warning) under Linkerd. \
            Client-first protocols (HTTP, TLS, PostgreSQL, Redis, MongoDB) are left alone. The mesh \
            is read from injection annotations and labels (--mesh to force one).

            Rules CTD101-CTD106 (Istio, ServiceEntry, PeerAuthentication), CTD201-CTD208 \
            (Linkerd) and CTD209 (the close_wait timeout against the proxy's idle timeout) are \
            listed with `ctdoctor lint --list-rules`. Exit status as diagnose; JSON \
            schema ctdoctor.lint.v1, or SARIF 2.1.0 with --format sarif.

            Examples:
              ctdoctor lint k8s/
              helm template my-release ./chart | ctdoctor lint -
              ctdoctor lint --server-first 7000/legacy --format sarif manifests/ > lint.sarif
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json, sarif
    }

    @Argument(help: ArgumentHelp("Manifest files or directories (searched for .yaml, .yml, .json); - reads standard input.", valueName: "path"))
    var paths: [String] = []

    @Option(help: "Output: compiler-style lines, JSON, or SARIF 2.1.0.")
    var format: Format = .table

    @Option(help: ArgumentHelp("Which mesh's rules: auto (from injection annotations and labels; Istio where none says), istio, linkerd.", valueName: "mesh"))
    var mesh: MeshChoice = .auto

    @Option(name: .customLong("server-first"), help: ArgumentHelp("Also treat this port as serving a server-first protocol, optionally named; repeat for several.", valueName: "port[/name]"))
    var serverFirst: [ServerFirstPort] = []

    @Option(name: .customLong("fail-on"), help: ArgumentHelp("Exit 1 when a finding is at least this severe: info, warning, error or never.", valueName: "severity"))
    var failOn: FailThreshold = .warning

    @Flag(name: .customLong("list-rules"), help: "List the rules and exit.")
    var listRules = false

    func options() -> LintOptions {
        LintOptions(mesh: mesh, catalog: ProtocolCatalog(additions: ServerFirstPort.additions(serverFirst)))
    }

    func validate() throws {
        if paths.isEmpty && !listRules { throw ValidationError("give manifest files or directories to lint, or - for standard input") }
    }

    func run() throws {
        if listRules {
            var table = TextTable([.init("Rule"), .init("Name"), .init("Severity"), .init("About")])
            for rule in LintRule.all { table.append([rule.id, rule.name, rule.severity.name, rule.summary]) }
            Console.writeOut(table.render())
            return
        }
        var objects: [ManifestObject] = []
        var files: [String] = []
        var walkNotices: [String] = []
        for path in paths {
            for file in try Self.manifestFiles(path, notices: &walkNotices) {
                files.append(file)
                let bytes = try file == "-" ? readStandardInput(limit: 64 << 20) : readFile(file, limit: 64 << 20)
                guard let text = String(validating: bytes, as: UTF8.self) else {
                    throw CommandFailure("\(file): not UTF-8 text")
                }
                objects += try ManifestParser.parse(text, file: file == "-" ? "<stdin>" : file)
            }
        }
        let report = Linter.lint(objects, files: files, options: options())
        let failOn = failOn.severity
        (walkNotices + report.notices).forEach { log.notice("\($0)") }
        switch format {
        case .table: Console.writeOut(LintRendering.human(report, color: Console.colorful))
        case .json: Console.writeOut(LintDocument.json(report, failOn: failOn).text + "\n")
        case .sarif: Console.writeOut(LintDocument.sarif(report, version: CTDoctor.version).text + "\n")
        }
        if let failOn, report.findings.contains(where: { $0.severity >= failOn }) {
            throw ExitCode(ExitStatus.findings)
        }
    }

    /// A file as given, or a directory's manifests (recursively, in name order). The walk
    /// stays on the filesystem of the directory given and enters each directory once, so
    /// a symlink loop or a mount of / inside the tree cannot make it endless.
    static func manifestFiles(_ path: String, notices: inout [String]) throws -> [String] {
        if path == "-" { return ["-"] }
        guard let identity = fileIdentity(path) else { throw CommandFailure("\(path): no such file or directory") }
        guard identity.kind == .directory else { return [path] }
        var visited: Set<FileIdentity> = [identity]
        return try walk(path, device: identity.device, visited: &visited, notices: &notices)
    }

    private static func walk(_ path: String, device: UInt64, visited: inout Set<FileIdentity>, notices: inout [String]) throws -> [String] {
        var found: [String] = []
        for name in try directoryEntries(path).sorted() where !name.hasPrefix(".") {
            let child = path.hasSuffix("/") ? path + name : "\(path)/\(name)"
            guard let identity = fileIdentity(child) else { continue }
            if identity.kind == .directory {
                if identity.device != device {
                    notices.append("\(child): another filesystem, not entered")
                } else if visited.insert(identity).inserted {
                    found += try walk(child, device: device, visited: &visited, notices: &notices)
                } else {
                    notices.append("\(child): a directory already walked (a symbolic link loop?), not entered again")
                }
            } else if [".yaml", ".yml", ".json"].contains(where: { name.hasSuffix($0) }) {
                found.append(child)
            }
        }
        return found
    }
}

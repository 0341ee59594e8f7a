import ArgumentParser
import Foundation
import KernelIO

/// `lint` as manifests grow: a cluster dump of Services and the Deployments they select
/// (half each, spread over 50 namespaces, every second one server-first), linted as a
/// whole process. The work must grow with the objects, not with their square.
struct LintBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint", abstract: "Time ctdoctor lint on generated manifests of growing size (no root needed).")

    @Option(help: "Object counts to generate and lint.") var objects: [Int] = [10_000, 100_000]
    @Option(help: "Rounds per size; medians are reported.") var repeats = 3
    @Option(help: "The ctdoctor binary to measure; default: next to this one.") var ctdoctor: String?

    func run() throws {
        let binary = ctdoctor ?? (CommandLine.arguments[0] as NSString).deletingLastPathComponent + "/ctdoctor"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-lint-bench-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        print(Self.report(try Self.rows(objects, binary: binary, directory: directory, repeats: repeats)))
    }

    struct Row {
        var objects: Int
        var bytes: Int
        var wall: Double
        var rssKiB: Int
    }

    static func rows(_ counts: [Int], binary: String, directory: URL, repeats: Int) throws -> [Row] {
        try counts.map { count in
            let file = directory.appendingPathComponent("cluster-\(count).yaml").path
            let text = manifests(objects: count)
            try Data(text.utf8).write(to: URL(fileURLWithPath: file))
            let peakFile = directory.appendingPathComponent("peak").path
            var walls: [Double] = []
            var peaks: [Double] = []
            for _ in 0..<repeats {
                let run = try runMeasured(["/usr/bin/time", "-f", "%M", "-o", peakFile, binary, "lint", "--fail-on", "never", file])
                guard run.exitStatus == 0 else { throw ValidationError("ctdoctor lint exited \(run.exitStatus) on \(file)") }
                walls.append(run.wallSeconds)
                peaks.append(Double(try String(contentsOfFile: peakFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan)
            }
            return Row(objects: count, bytes: text.utf8.count, wall: median(walls), rssKiB: Int(median(peaks)))
        }
    }

    static func report(_ rows: [Row]) -> String {
        var text = "## lint as manifests grow (Services and the Deployments they select, half server-first)\n"
        text += "| objects | input | ctdoctor lint | per 1,000 objects | peak RSS |\n|---|---|---|---|---|\n"
        for row in rows {
            text += String(
                format: "| %d | %.1f MB | %.0f ms | %.1f ms | %.1f MiB |\n", row.objects, Double(row.bytes) / 1e6, row.wall * 1000,
                row.wall * 1000 / Double(row.objects) * 1000, Double(row.rssKiB) / 1024)
        }
        text += "Target: linear in objects (per-1,000 cost flat), 100k objects in seconds.\n"
        return text
    }

    static func manifests(objects: Int) -> String {
        var text = ""
        for index in 0..<objects / 2 {
            let namespace = "team\(index % 50)"
            let (image, port) = index % 2 == 0 ? ("mysql:8.0", 3306) : ("nginx:1.25", 8080)
            text += """
                ---
                apiVersion: v1
                kind: Service
                metadata: {name: svc\(index), namespace: \(namespace)}
                spec:
                  selector: {app: app\(index), tier: backend}
                  ports: [{name: port-\(port), port: \(port), targetPort: \(port)}]
                ---
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: app\(index), namespace: \(namespace)}
                spec:
                  template:
                    metadata: {labels: {app: app\(index), tier: backend}, annotations: {sidecar.istio.io/inject: "true"}}
                    spec:
                      containers: [{name: main, image: "\(image)", ports: [{containerPort: \(port)}]}]

                """
        }
        return text
    }
}

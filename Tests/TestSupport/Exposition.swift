import Foundation

/// Prometheus text exposition as prometheus_client's parser reads it (through
/// Tests/Tools/parse-exposition.py and Debian's python3-prometheus-client).
public struct ParsedExposition {
    public struct Family {
        public var name: String
        public var type: String
        public var help: String
        public var samples: [(labels: [String: String], value: Double)]
    }

    public var families: [String: Family]

    static let tool = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tools/parse-exposition.py").path

    /// Parses `bytes`; throws with the parser's own message when it refuses them.
    public init(_ bytes: [UInt8]) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-exposition-\(UUID().uuidString).prom")
        try Data(bytes).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        try self.init(file: file.path)
    }

    /// Parses `file` with prometheus_client, after Prometheus' own `promtool check
    /// metrics` (Debian's prometheus) has accepted it: lint problems fail too.
    public init(file: String) throws {
        let checked = try Shell.run(["sh", "-c", "promtool check metrics < \"$0\"", file])
        guard checked.status == 0 else {
            throw CommandFailed(command: ["promtool", "check", "metrics", file], result: checked)
        }
        let result = try Shell.run(["/usr/bin/python3", Self.tool, file])
        guard result.status == 0 else {
            throw CommandFailed(command: ["parse-exposition.py", file], result: result)
        }
        let decoded = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [[String: Any]] ?? []
        var families: [String: Family] = [:]
        for family in decoded {
            let name = family["name"] as? String ?? ""
            let samples = (family["samples"] as? [[String: Any]] ?? []).map { sample in
                (labels: sample["labels"] as? [String: String] ?? [:], value: (sample["value"] as? NSNumber)?.doubleValue ?? .nan)
            }
            families[name] = Family(
                name: name, type: family["type"] as? String ?? "", help: family["help"] as? String ?? "", samples: samples)
        }
        self.families = families
    }

    /// The value of the one sample of `name` whose labels include `labels`.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = families[name]?.samples.filter { sample in labels.allSatisfy { sample.labels[$0.key] == $0.value } } ?? []
        return matching.count == 1 ? matching[0].value : nil
    }
}

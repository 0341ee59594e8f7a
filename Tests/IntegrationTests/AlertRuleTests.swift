import Foundation
import TestSupport
import Testing
import Yams

/// examples/prometheus: the alerting rules load in Prometheus' own tool, fire as their
/// unit tests say, name only metrics ctdoctor exports, and the PrometheusRule carries the
/// same groups as the plain file.
@Suite("alerting rules")
struct AlertRuleTests {
    static let directory = ExampleTests.root.appendingPathComponent("examples/prometheus")

    @Test func promtoolChecksAndUnitTestsTheRules() throws {
        let rules = Self.directory.appendingPathComponent("ctdoctor-rules.yaml").path
        let checked = try Shell.run(["promtool", "check", "rules", rules])
        #expect(checked.status == 0 && checked.standardOutput.contains("SUCCESS"), "\(checked.standardOutput)\(checked.standardError)")
        // promtool resolves rule_files against the directory it runs in.
        let tested = try Shell.run(["sh", "-c", "cd \"$0\" && promtool test rules ctdoctor-rules.test.yaml", Self.directory.path])
        #expect(tested.status == 0, "\(tested.standardOutput)\(tested.standardError)")
    }

    @Test func thePrometheusRuleHoldsTheSameGroupsAndOnlyExportedMetrics() throws {
        let plain = try String(contentsOf: Self.directory.appendingPathComponent("ctdoctor-rules.yaml"), encoding: .utf8)
        let operator_ = try String(contentsOf: Self.directory.appendingPathComponent("ctdoctor-prometheusrule.yaml"), encoding: .utf8)
        let groups = try #require((try Yams.load(yaml: plain) as? [String: Any])?["groups"] as? [[String: Any]])
        let resource = try #require(try Yams.load(yaml: operator_) as? [String: Any])
        #expect(resource["kind"] as? String == "PrometheusRule")
        let embedded = try #require((resource["spec"] as? [String: Any])?["groups"] as? [[String: Any]])
        #expect(NSArray(array: groups).isEqual(to: embedded), "the PrometheusRule's groups are the plain file's")
        let readme = try String(contentsOf: ExampleTests.root.appendingPathComponent("README.md"), encoding: .utf8)
        let expressions = groups.flatMap { ($0["rules"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(expressions.count == 5)
        for expression in expressions {
            for match in expression.matches(of: /ctdoctor_[a-z_]+/) {
                #expect(readme.contains("| `\(match.output)` |"), "\(match.output) is not a metric README documents")
            }
        }
    }
}

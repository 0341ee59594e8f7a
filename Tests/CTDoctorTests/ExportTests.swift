import Conntrack
import Diagnosis
import Export
import Foundation
import NetCore
import TestSupport
import Testing

@Suite("Prometheus exposition")
struct ExportTests {
    /// A pod with one leak (on a port connect() tries first: even offset from 32768),
    /// one at-risk flow and a stalled SMTP connection.
    func troubledPod() -> DiagnosisReport {
        var pod = Pod()
        pod.halfClosed(appPort: 40000, state: nil)
        pod.halfClosed(appPort: 40002, secondsLeft: 20)
        pod.accepted(appPort: 40003, service: Endpoint(IPAddress("10.96.0.25")!, 25), age: 9000)
        pod.kernel.conntrackCounters = ConntrackCounterValues([(.insertFailed, 12), (.drop, 14), (.earlyDrop, 0)])
        var options = DiagnosisOptions()
        options.connectRate = 10
        return pod.diagnose(options)
    }

    func run(_ results: [NamespaceResult]) -> ExportRun {
        ExportRun(startedAt: 1_795_400_000.25, durationSeconds: 0.042, results: results)
    }

    @Test func aScraperReadsEveryFactOfTheDiagnosis() throws {
        let report = troubledPod()
        let parsed = try ParsedExposition(MetricsExposition.render(run([.diagnosed(NamespaceIdentity(netns: "pid 4242", pod: "shop/cart-7d9"), report)])))
        let pod = ["netns": "pid 4242", "pod": "shop/cart-7d9"]
        #expect(parsed.value("ctdoctor_run_success") == 1)
        #expect(parsed.value("ctdoctor_last_run_timestamp_seconds") == 1_795_400_000.25)
        #expect(parsed.value("ctdoctor_run_duration_seconds") == 0.042)
        #expect(parsed.value("ctdoctor_namespace_diagnosed", pod) == 1)
        #expect(parsed.value("ctdoctor_sidecar_info", pod.merging(["mesh": "istio"]) { $1 }) == 1)
        #expect(parsed.value("ctdoctor_half_closed_sockets", pod.merging(["class": "leaked"]) { $1 }) == 1)
        #expect(parsed.value("ctdoctor_half_closed_sockets", pod.merging(["class": "at_risk"]) { $1 }) == 1)
        #expect(parsed.value("ctdoctor_half_closed_sockets", pod.merging(["class": "healthy"]) { $1 }) == 0)
        #expect(parsed.value("ctdoctor_poisoned_ports", pod.merging(["pass": "first"]) { $1 }) == 1)
        #expect(parsed.value("ctdoctor_poisoned_ports", pod.merging(["pass": "second"]) { $1 }) == 0)
        let probability = try #require(parsed.value("ctdoctor_collision_probability", pod))
        #expect(probability > 0 && probability <= 1)
        #expect(parsed.value("ctdoctor_stalled_connections", pod.merging(["protocol": "SMTP", "server_first": "true"]) { $1 }) == 1)
        #expect(parsed.value("ctdoctor_findings", pod.merging(["severity": "error"]) { $1 })
            == Double(report.findings.filter { $0.severity == .error }.count))
        #expect(parsed.value("ctdoctor_close_wait_timeout_seconds", pod) == 60)
        #expect(parsed.value("ctdoctor_proxy_idle_timeout_seconds", pod) == 3600)
        #expect(parsed.value("ctdoctor_kernel_risk", pod.merging(["risk": "close_wait_shorter_than_idle_timeout"]) { $1 }) == 1)
        #expect(parsed.value("ctdoctor_kernel_risk", pod.merging(["risk": "collision_fails"]) { $1 }) == 0)
        #expect(parsed.value("ctdoctor_conntrack_statistics", pod.merging(["counter": "insert_failed"]) { $1 }) == 12)
        #expect(parsed.value("ctdoctor_conntrack_statistics", pod.merging(["counter": "early_drop"]) { $1 }) == 0)
        #expect(parsed.value("ctdoctor_conntrack_statistics", pod.merging(["counter": "found"]) { $1 }) == nil, "not read: absent")
    }

    @Test func everyFamilyIsADocumentedGaugeOrCounterWithBoundedLabels() throws {
        let parsed = try ParsedExposition(MetricsExposition.render(run([.diagnosed(NamespaceIdentity(netns: "a"), troubledPod())])))
        let documented = Dictionary(uniqueKeysWithValues: MetricsExposition.all.map { ($0.name, $0) })
        #expect(!parsed.families.isEmpty)
        for family in parsed.families.values {
            // A scraper names a counter's family without its samples' _total.
            let metric = try #require(documented[family.name] ?? documented[family.name + "_total"], "\(family.name) is not in MetricsExposition.all")
            #expect(family.type == (metric.isCounter ? "counter" : "gauge") && family.help == metric.help, "\(family.name)")
            for sample in family.samples {
                let allowed = Set(metric.labels + (["ctdoctor_run_success", "ctdoctor_last_run_timestamp_seconds", "ctdoctor_run_duration_seconds"].contains(family.name) ? [] : ["netns", "pod"]))
                #expect(Set(sample.labels.keys) == allowed, "\(family.name): \(sample.labels)")
                #expect(!sample.labels.keys.contains { $0.contains("port") || $0.contains("address") })
            }
        }
    }

    /// Families sorted by name, samples sorted within each, every family with HELP:
    /// the same run renders the same bytes, whatever order the registry kept.
    @Test func theFileIsInAStableOrderWithHelpForEveryMetric() throws {
        let results: [NamespaceResult] = [
            .diagnosed(NamespaceIdentity(netns: "b"), troubledPod()), .diagnosed(NamespaceIdentity(netns: "a"), troubledPod()),
            .failed(NamespaceIdentity(netns: "c"), "gone", reason: .namespaceGone),
        ]
        let first = MetricsExposition.render(run(results))
        for _ in 0..<5 { #expect(MetricsExposition.render(run(results)) == first) }
        let lines = String(decoding: first, as: UTF8.self).split(separator: "\n")
        let names = lines.filter { $0.hasPrefix("# HELP ") }.map { String($0.dropFirst(7).prefix { $0 != " " }) }
        #expect(names == names.sorted() && !names.isEmpty)
        let sampled = Set(lines.filter { !$0.hasPrefix("#") }.map { String($0.prefix { $0 != "{" && $0 != " " }) })
        #expect(sampled.isSubset(of: Set(names)), "every metric has HELP: \(sampled.subtracting(names))")
        let parsed = try ParsedExposition(first)
        #expect(parsed.families.values.allSatisfy { !$0.help.isEmpty })
    }

    @Test func aFailedNamespaceSaysSoAndNothingElse() throws {
        let parsed = try ParsedExposition(MetricsExposition.render(run([
            .failed(NamespaceIdentity(netns: "gone"), "no network namespace named gone", reason: .namespaceGone),
            .diagnosed(NamespaceIdentity(netns: "ok"), troubledPod()),
        ])))
        #expect(parsed.value("ctdoctor_run_success") == 0)
        #expect(parsed.value("ctdoctor_namespace_diagnosed", ["netns": "gone"]) == 0)
        #expect(parsed.value("ctdoctor_namespace_diagnosed", ["netns": "ok"]) == 1)
        #expect(parsed.value("ctdoctor_namespace_failure_info", ["netns": "gone", "reason": "namespace_gone"]) == 1)
        #expect(parsed.families["ctdoctor_namespace_failure_info"]?.samples.count == 1, "only the failed namespace has one")
        #expect(parsed.families["ctdoctor_half_closed_sockets"]?.samples.allSatisfy { $0.labels["netns"] == "ok" } == true)
    }

    @Test func labelValuesSurviveEscaping() throws {
        let awkward = #"team "a"\b"# + "\nnext"
        let parsed = try ParsedExposition(MetricsExposition.render(run([.diagnosed(NamespaceIdentity(netns: "n", pod: awkward), troubledPod())])))
        #expect(parsed.value("ctdoctor_namespace_diagnosed", ["pod": awkward]) == 1)
    }

    @Test func withoutAConnectRateTheProbabilityIsAbsentNotZero() throws {
        var pod = Pod()
        pod.halfClosed(appPort: 40001, state: nil)
        let parsed = try ParsedExposition(MetricsExposition.render(run([.diagnosed(NamespaceIdentity(netns: "n"), pod.diagnose())])))
        #expect(parsed.families["ctdoctor_collision_probability"] == nil)
        #expect(parsed.value("ctdoctor_live_collisions", ["netns": "n"]) == 0)
    }

    @Test func theREADMEDocumentsEveryMetric() throws {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        for metric in MetricsExposition.all + WatchMetrics.all {
            #expect(readme.contains("| `\(metric.name)` |"), "README's metrics table lacks \(metric.name)")
        }
    }
}

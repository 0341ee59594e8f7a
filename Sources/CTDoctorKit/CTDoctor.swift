@_exported import Conntrack
@_exported import Diagnosis
import Export
import Formats
@_exported import KernelIO
import Live
@_exported import NetCore
import Rendering
@_exported import Sockets

/// ctdoctor as a library: read a network namespace's tables, diagnose them, and render or
/// export the report — what `ctdoctor diagnose` and `ctdoctor export` do, for Swift
/// programs (an operator, a node agent, a test harness).
///
/// The values it returns (``DiagnosisReport``, `ConntrackEntry`, `TCPSocket`) come from
/// the modules this one re-exports; the readers behind it need CAP_NET_ADMIN in the
/// namespace for conntrack and sock_diag, as the command does (see README, "Privileges").
public enum CTDoctor {
    /// A network namespace by what a user would type: a name from `ip netns list`, a
    /// path to a namespace file, or a PID; nil for the caller's own.
    /// - Throws: `NamespaceError` naming what was looked for when nothing is there.
    public static func namespace(_ spec: String?) throws -> NetworkNamespace {
        guard let spec else { return .current }
        return try NetworkNamespace.resolve(spec)
    }

    /// Diagnoses a live namespace: its capture sockets, their conntrack entries, the
    /// kernel's settings and counters, the proxy process; at the cost of the suspects,
    /// not of the tables.
    public static func diagnose(_ namespace: NetworkNamespace = .current, options: DiagnosisOptions = DiagnosisOptions()) throws -> DiagnosisReport {
        try LiveCollector.collectAndDiagnose(namespace, options: options)
    }

    /// Every conntrack entry of a namespace, streamed to `body` as the dump arrives
    /// (memory stays flat); entries outside `filter` are skipped.
    public static func forEachConntrackEntry(
        in namespace: NetworkNamespace = .current, matching filter: ConntrackFilter = .all, _ body: (ConntrackEntry) throws -> Void
    ) throws {
        try ConntrackReader(namespace: namespace).forEachEntry(matching: filter, body)
    }

    /// The TCP sockets of a namespace in `states`, through sock_diag (with tcp_info) or,
    /// without it, /proc/net/tcp{,6}. The default leaves out sockets that are only bound,
    /// which cost a walk of the node's whole bind hash (`TCPStateSet.hashed`).
    public static func sockets(in namespace: NetworkNamespace = .current, states: TCPStateSet = .hashed) throws -> [TCPSocket] {
        try SocketReader(namespace: namespace).sockets(in: states).0
    }

    /// How a report is written.
    public enum Format: Sendable {
        /// The aligned text people read (`ctdoctor diagnose`), with ANSI colour or without.
        case text(color: Bool)
        /// The `ctdoctor.diagnosis.v1` JSON document.
        case json
    }

    /// A report as `ctdoctor diagnose` prints it. `failOn` is recorded in the JSON, as the
    /// command's `--fail-on` is.
    public static func render(_ report: DiagnosisReport, as format: Format, failOn: Severity? = .warning) -> String {
        switch format {
        case .text(let color): DiagnosisRendering.human(report, color: color)
        case .json: DiagnosisDocument.json(report, failOn: failOn).text + "\n"
        }
    }

    /// Reports in the Prometheus text exposition format `ctdoctor export` writes for
    /// node_exporter's textfile collector, labelled by `netns` (and `pod` when given).
    public static func prometheusExposition(
        _ reports: [(netns: String, pod: String?, report: DiagnosisReport)], startedAt: Double, durationSeconds: Double
    ) -> String {
        let run = ExportRun(
            startedAt: startedAt, durationSeconds: durationSeconds,
            results: reports.map { .diagnosed(NamespaceIdentity(netns: $0.netns, pod: $0.pod), $0.report) })
        return String(decoding: MetricsExposition.render(run), as: UTF8.self)
    }
}

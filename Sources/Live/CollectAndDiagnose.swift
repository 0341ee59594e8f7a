import Diagnosis
import KernelIO

extension LiveCollector {
    /// Collects what a diagnosis under `options` needs: the sidecar's capture ports (every
    /// known profile's when none is given) and the connections silent past its stall
    /// threshold.
    public func collect(for options: DiagnosisOptions) throws -> DiagnosisInput {
        try collect(profile: options.sidecar, stallAfterSeconds: options.stallAfterSeconds)
    }

    /// A live namespace's diagnosis, as `ctdoctor diagnose --netns` gives it: the one
    /// place the collector and the diagnosis are wired together (diagnose, the node
    /// sweep, reap, export and the lab all come through here).
    public static func collectAndDiagnose(
        _ namespace: NetworkNamespace, processesInside: [Int32]? = nil, options: DiagnosisOptions,
        trace: (@Sendable (String, Duration) -> Void)? = nil
    ) throws -> DiagnosisReport {
        var collector = LiveCollector(namespace: namespace, trace: trace)
        collector.processesInside = processesInside
        return Diagnosis.diagnose(try collector.collect(for: options), options: options)
    }
}

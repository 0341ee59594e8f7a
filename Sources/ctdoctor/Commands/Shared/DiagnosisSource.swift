import ArgumentParser
import Diagnosis

/// Where diagnose, leaks and collisions take their facts from: one live namespace
/// (--netns), a snapshot or copied tables (--from, --conntrack-file, --sockets-file), or
/// the node's namespaces (--all-netns, --pod); the three commands share it whole, so
/// they accept and refuse the same combinations.
struct DiagnosisSource: ParsableArguments {
    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var inputs: InputOptions
    @OptionGroup var sweep: SweepOptions

    func validate() throws {
        try inputs.validate(with: namespace)
        try sweep.validate(with: namespace, inputs: inputs)
    }

    /// Collects, diagnoses and renders the `sections` a command speaks for; exits 1 when
    /// findings reach --fail-on.
    func diagnose(output: OutputOptions, arguments: DiagnosisArguments, sections: ReportParts) throws {
        try runDiagnosis(namespace: namespace, inputs: inputs, sweep: sweep, output: output, arguments: arguments, sections: sections)
    }
}

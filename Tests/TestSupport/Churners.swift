import Foundation

/// `ctdoctor-bench churn` processes loading a namespace with conntrack (and socket)
/// changes, one per lane, until stopped: the load the load tests name.
public final class Churners {
    let processes: [(process: Process, output: Pipe)]

    /// Starts `lanes` churners, each aiming at `rate` changes a second for at most `seconds`.
    public init(namespace: String, lanes: Int = 2, rate: Int, seconds: Int) throws {
        processes = try (0..<lanes).map { lane in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Binary.bench)
            process.arguments = ["churn", "--netns", namespace, "--seconds", String(seconds), "--lane", String(lane), "--rate", String(rate)]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            return (process, output)
        }
    }

    deinit { processes.forEach { if $0.process.isRunning { kill($0.process.processIdentifier, SIGKILL) } } }

    /// Whether every churner is still loading.
    public var allRunning: Bool { processes.allSatisfy { $0.process.isRunning } }

    /// Stops them (SIGTERM: each still prints its rate); the changes a second they reached
    /// together, and the report of any that did not exit 0.
    public func stop() -> (rate: Int, failures: [String]) {
        var rate = 0
        var failures: [String] = []
        for (process, output) in processes {
            process.terminate()
            process.waitUntilExit()
            let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            if process.terminationStatus != 0 { failures.append(report) }
            let fields = report.split(separator: " ")
            rate += fields.firstIndex(of: "rate").flatMap { Int(fields[$0 + 1]) } ?? 0
        }
        return (rate, failures)
    }
}

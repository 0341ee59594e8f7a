import CTDoctorKit
import Glibc

// Usage: leak-report [NETNS]   (a name from `ip netns list`, a path, or a PID)
let arguments = CommandLine.arguments.dropFirst()
do {
    let namespace = try CTDoctor.namespace(arguments.first)
    let report = try CTDoctor.diagnose(namespace)
    let leaked = report.leaks.filter { $0.classification == .leaked }
    print("\(namespace): \(leaked.count) leaked sidecar sockets")
    for leak in leaked {
        print("  \(leak.socket.local) <-> \(leak.socket.remote)")
    }
    for finding in report.findings where finding.severity >= .warning {
        print("\(finding.severity): \(finding.summary)")
    }
    print(CTDoctor.render(report, as: .json), terminator: "")
} catch {
    print("leak-report: \(error)")
    exit(2)
}

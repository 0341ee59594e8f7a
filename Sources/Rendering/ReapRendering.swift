import Diagnosis
import NetCore

/// `leaks --reap` output as a table, with what a dry run would do.
public enum ReapRendering {
    public static func human(_ outcomes: [ReapOutcome], dryRun: Bool, minimumIdleSeconds: UInt64) -> String {
        guard !outcomes.isEmpty else {
            return "No leaked sidecar socket to reap (only sockets classified leaked, idle at least \(minimumIdleSeconds) s, qualify).\n"
        }
        var table = TextTable([.init("Result"), .init("Proxy socket"), .init("Peer"), .init("Inode", .right), .init("Why")])
        for outcome in outcomes {
            let socket = outcome.decision.leak.socket
            table.append([outcome.result.rawValue, "\(socket.local)", "\(socket.remote)", String(socket.inode), outcome.detail])
        }
        var out = table.render()
        if dryRun, outcomes.contains(where: { $0.result == .wouldDestroy }) {
            out += "\nDry run: nothing was destroyed. Add --yes to destroy the sockets marked would-destroy.\n"
        }
        return out
    }
}

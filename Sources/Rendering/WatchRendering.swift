import Diagnosis
import NetCore

/// `ctdoctor watch` for people: one line per event, as it happens.
public enum WatchRendering {
    /// The event's kind in a column, the flow, where the app meant to go, how long, and
    /// why; tenant-controlled text made safe for a terminal.
    public static func line(_ event: WatchEvent, namespace: String? = nil) -> String {
        var text = event.kind.rawValue + String(repeating: " ", count: max(0, 20 - event.kind.rawValue.count))
        if let namespace { text += " [\(namespace.terminalSafe)]" }
        if let proxy = event.proxy, let app = event.app { text += " \(proxy) <-> \(app)" }
        if let destination = event.originalDestination { text += " (to \(destination))" }
        if let lifetime = event.lifetimeSeconds ?? event.afterSeconds { text += " after \(humanDuration(milliseconds: UInt64(saturating: lifetime * 1000)))" }
        if let steps = event.counterSteps {
            text += " [challenge ACKs +\(steps["TcpExtTCPChallengeACK"] ?? 0), SYN retransmits +\(steps["TcpExtTCPSynRetrans"] ?? 0)]"
        }
        return text + ": " + event.detail.terminalSafe + "\n"
    }
}

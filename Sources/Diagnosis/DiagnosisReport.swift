import Conntrack
import NetCore
import Sockets

/// What diagnosis concluded about one namespace.
public struct DiagnosisReport: Sendable {
    public var namespace: String
    /// One line, the answer first.
    public var verdict: String
    /// Most severe first.
    public var findings: [Finding]
    /// nil when no sidecar was found or given.
    public var sidecar: SidecarDetection?
    public var idleTimeout: (seconds: Double, source: String)
    public var leaks: [LeakRecord]
    /// Connections the sidecar holds silent past --stall-after, by original port.
    public var stalls: [StallGroup]
    public var stallAfterSeconds: Double
    public var collisions: CollisionPrediction
    public var kernel: KernelAudit
    /// Orphaned FIN_WAIT2 capture sockets (reaped by tcp_fin_timeout, not leaks).
    public var orphans: Int
    public var notices: [String]
    public var input: DiagnosisInput

    /// The worst severity found, nil when nothing was.
    public var worstSeverity: Severity? { findings.map(\.severity).max() }

    public func findings(atLeast severity: Severity) -> [Finding] { findings.filter { $0.severity >= severity } }
}

/// Diagnoses one namespace from its input. Pure: the same input gives the same report.
public enum Diagnosis {
    /// Envoy's TcpProxy idle_timeout default, which Istio keeps unless told otherwise.
    public static let defaultIdleTimeoutSeconds = 3600.0

    public static func diagnose(_ input: DiagnosisInput, options: DiagnosisOptions = DiagnosisOptions()) -> DiagnosisReport {
        var notices = input.notices
        var sidecar: SidecarDetection? = options.sidecar.map {
            SidecarDetection(profile: $0, evidence: "given with --sidecar", process: sidecarOwner(input, $0), wasGiven: true)
        } ?? SidecarDetection.detect(listeners: input.sockets.filter { $0.state == .listen }, owners: input.owners)
            ?? inferredFromCopy(input)
        // A proxy that holds this namespace's listeners from its own namespace is a
        // node proxy (ambient's ztunnel), not a sidecar: said, as ambient expects it.
        if let foreign = input.sidecarProcess?.foreignNamespace {
            sidecar?.proxyNamespace = foreign
            if sidecar?.wasGiven == false {
                sidecar?.evidence += ", from another network namespace (\(foreign))"
                if sidecar?.profile.mesh == .ambient { sidecar?.evidence += ": ambient's node proxy" }
            }
        }

        let idleTimeout = resolveIdleTimeout(options: options, input: input, sidecar: sidecar, notices: &notices)
        let kernel = KernelAudit.audit(facts: input.kernel, rules: input.rules, idleTimeoutSeconds: idleTimeout.seconds)

        var leaks: [LeakRecord] = []
        var stalls: [StallGroup] = []
        var orphans = 0
        if let sidecar {
            stalls = StallAnalysis.analyse(
                sockets: input.sockets, conntrack: input.conntrack, profile: sidecar.profile, catalog: options.catalog,
                thresholdMilliseconds: UInt64(saturating: options.stallAfterSeconds * 1000))
            leaks = LeakAnalysis.analyse(
                sockets: input.sockets, conntrack: input.conntrack, owners: input.owners, profile: sidecar.profile,
                sidecarProcess: sidecar.process, idleTimeoutMilliseconds: UInt64(saturating: idleTimeout.seconds * 1000),
                conntrackReadable: input.conntrackReadable, closeWaitSeconds: input.kernel.closeWaitTimeout)
            orphans = LeakAnalysis.orphans(in: input.sockets, profile: sidecar.profile)
            let foreign = LeakAnalysis.foreign(in: input.sockets, profile: sidecar.profile)
            if !foreign.isEmpty {
                let shown = foreign.prefix(3).map { "\($0.local) <-> \($0.remote) uid \($0.uid)" }.joined(separator: ", ")
                notices.append("\(plural(foreign.count, "FIN_WAIT2 socket")) on capture ports \(foreign.count == 1 ? "is" : "are") not the proxy's (another local address or owner uid than its listener: a process bound the port to connect out), so not judged: \(shown)\(foreign.count > 3 ? ", …" : "")")
            }
        }
        let rate = options.connectRate.map { ConnectRate(perSecond: $0, source: "given with --connect-rate") }
            ?? CollisionPrediction.estimateRate(counters: input.counters, sidecar: input.sidecarProcess)
        let collisions = CollisionPrediction.predict(leaks: leaks, kernel: input.kernel, connectRate: rate, counters: input.counters)

        let inboundClashes = sidecar.map {
            InboundClashAnalysis.clashes(
                in: input.conntrack, profile: $0.profile, synSentTimeout: input.kernel.synSentTimeout,
                excluding: Set(leaks.compactMap(\.collidingEntry)))
        } ?? []
        let findings = Findings.make(
            sidecar: sidecar, leaks: leaks, collisions: collisions, kernel: kernel, idleTimeout: idleTimeout,
            socketSource: input.socketSource, inboundClashes: inboundClashes,
            idleTunnels: sidecar.map { HBONEAnalysis.longIdle(in: input.sockets, profile: $0.profile) } ?? [],
            inboundExposure: sidecar.map {
                InboundClashAnalysis.exposure(in: input.conntrack, profile: $0.profile, portRange: input.kernel.portRange ?? KernelFacts.defaultPortRange)
            } ?? [])
            + Findings.stalls(stalls, sidecar: sidecar, thresholdSeconds: options.stallAfterSeconds)
        return DiagnosisReport(
            namespace: input.namespace,
            verdict: verdict(sidecar: sidecar, leaks: leaks, stalls: stalls, collisions: collisions, kernel: kernel, findings: findings),
            findings: findings.sorted { ($0.severity, $1.id) > ($1.severity, $0.id) },
            sidecar: sidecar,
            idleTimeout: idleTimeout,
            leaks: leaks,
            stalls: stalls,
            stallAfterSeconds: options.stallAfterSeconds,
            collisions: collisions,
            kernel: kernel,
            orphans: orphans,
            notices: notices,
            input: input)
    }

    /// Only copies are inferred from: a live namespace always shows the proxy's listener.
    static func inferredFromCopy(_ input: DiagnosisInput) -> SidecarDetection? {
        guard case .file = input.socketSource else { return nil }
        return SidecarDetection.infer(fromConnections: input.sockets, owners: input.owners)
    }

    static func sidecarOwner(_ input: DiagnosisInput, _ profile: SidecarProfile) -> SocketOwner? {
        input.sockets.filter { $0.state == .listen && profile.captures($0.local.port) }
            .lazy.compactMap { input.owners[$0.inode]?.first }.first
    }

    /// --idle-timeout, else ISTIO_META_IDLE_TIMEOUT from the proxy's environment, else
    /// Envoy's default of one hour.
    static func resolveIdleTimeout(
        options: DiagnosisOptions, input: DiagnosisInput, sidecar: SidecarDetection?, notices: inout [String]
    ) -> (seconds: Double, source: String) {
        if let given = options.idleTimeoutSeconds { return (given, "given with --idle-timeout") }
        if let setting = input.sidecarProcess?.idleTimeoutSetting {
            if let seconds = DurationText.goDuration(setting) {
                return (seconds, "ISTIO_META_IDLE_TIMEOUT=\(setting) in the proxy's environment")
            }
            notices.append("ISTIO_META_IDLE_TIMEOUT=\(setting) in the proxy's environment is not a duration Istio accepts (Go notation, at most 2^63 ns); assumed Envoy's default of 1h")
        }
        if let owner = input.sidecarProcess?.command ?? sidecar?.process?.command,
            SidecarProfile.mesh(ofProcess: owner) == nil || owner.hasPrefix("linkerd2-proxy") || owner == "ztunnel"
        {
            // Only Envoy is known to default to 1 h; anything else is a guess, said as one.
            notices.append("the proxy is \(owner), not Envoy: its idle timeout is unknown, 1 h assumed (give --idle-timeout)")
            return (defaultIdleTimeoutSeconds, "assumed: Envoy's default (1h), but the proxy is \(owner); give --idle-timeout")
        }
        return (defaultIdleTimeoutSeconds, "Envoy's default (1h); a DestinationRule connectionPool.tcp.idleTimeout may differ per destination")
    }

    static func verdict(
        sidecar: SidecarDetection?, leaks: [LeakRecord], stalls: [StallGroup], collisions: CollisionPrediction,
        kernel: KernelAudit, findings: [Finding]
    ) -> String {
        guard sidecar != nil else {
            return "No sidecar capture listener in this namespace: nothing to diagnose (give --sidecar istio|ambient|linkerd|ports:OUT,IN if the proxy uses other ports or the copy lacks its LISTEN rows)."
        }
        let leaked = leaks.filter { $0.classification == .leaked }
        let atRisk = leaks.filter { $0.classification == .atRisk }
        let outcome: String
        switch kernel.outcome {
        case .recovers: outcome = "a colliding connect recovers on this kernel (a retransmit's delay)"
        case .fails: outcome = "a colliding connect times out on this kernel"
        case .uncertain: outcome = "whether a colliding connect recovers on this kernel is uncertain"
        }
        if !collisions.liveCollisions.isEmpty {
            return "COLLIDING NOW: \(plural(collisions.liveCollisions.count, "connection")) from a leaked socket's port; \(plural(leaked.count, "leaked sidecar socket")); \(outcome)."
        }
        let serverFirstStalls = stalls.filter { $0.application?.isServerFirst == true }
        let stallNote = serverFirstStalls.first.map { group in
            "\(plural(serverFirstStalls.reduce(0) { $0 + $1.connections.count }, "connection")) stalled in the sidecar on server-first port \(group.port.map(String.init) ?? "?") (\(group.application!.name))"
        }
        let unknown = leaks.filter { $0.classification == .unknown }
        let inferred = leaked.contains { $0.basis == .idleTime } ? " (inferred from idle times: conntrack is unreadable here)" : ""
        if !leaked.isEmpty {
            let ports = collisions.sources.reduce(0) { $0 + $1.poisoned.count }
            if !inferred.isEmpty {
                return "\(plural(leaked.count, "sidecar socket")) leaked in FIN_WAIT2\(inferred), poisoning \(plural(ports, "ephemeral port")); \(plural(unknown.count, "younger one")) unknown; \(outcome)."
            }
            return "\(plural(leaked.count, "sidecar socket")) leaked in FIN_WAIT2, poisoning \(plural(ports, "ephemeral port")); \(outcome)\(stallNote.map { "; \($0)" } ?? "")."
        }
        if let stallNote { return stallNote + ": the sidecar waits for the client's bytes, the client for the server's greeting." }
        if !unknown.isEmpty {
            return "\(plural(unknown.count, "half-closed sidecar socket")) whose conntrack entry cannot be read here (no CAP_NET_ADMIN): none idle past the close_wait timeout yet, so none is certainly leaked."
        }
        if !atRisk.isEmpty {
            return "No leaks yet: \(plural(atRisk.count, "half-closed flow")) will outlive \(atRisk.count == 1 ? "its" : "their") conntrack \(atRisk.count == 1 ? "entry" : "entries") (the next leak if the app closes late)."
        }
        if let worst = findings.filter({ $0.severity >= .warning }).max(by: { $0.severity < $1.severity }) {
            return worst.summary
        }
        return "Healthy: no leaked or at-risk sidecar sockets."
    }
}

func plural(_ count: Int, _ noun: String) -> String {
    count == 1 ? "1 \(noun)" : "\(count) \(noun)s"
}

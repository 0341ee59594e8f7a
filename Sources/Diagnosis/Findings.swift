import Conntrack
import NetCore
import Sockets

/// Turns the analyses into findings, each with the remedy that works on this kernel
/// and this mesh.
///
/// Severity follows what is happening, not what could: leaks and collisions in
/// progress are errors, flows about to leak and a nearly full table are warnings, and
/// latent configuration risks (a close_wait timeout shorter than the proxy's idle
/// timeout, with nothing half-closed yet) are information. Stock Istio has that latent
/// risk everywhere; a report that fails on every pod would be ignored.
public enum Findings {
    static let evidenceLimit = 10

    static func make(
        sidecar: SidecarDetection?, leaks: [LeakRecord], collisions: CollisionPrediction, kernel: KernelAudit,
        idleTimeout: (seconds: Double, source: String), socketSource: SocketSource, inboundClashes: [InboundClash] = [],
        idleTunnels: [TCPSocket] = [], inboundExposure: [InboundClashAnalysis.Exposure] = []
    ) -> [Finding] {
        var findings: [Finding] = []
        guard let sidecar else {
            findings.append(Finding(
                .noSidecar, severity: .info,
                summary: "No sidecar capture listener (Istio 15001/15006, Linkerd 4140/4143) in this namespace",
                evidence: ["no LISTEN socket on a known capture port"],
                remedy: "If a proxy captures traffic on other ports, give them with --sidecar ports:OUT,IN."))
            findings += tableFindings(kernel)
            return findings
        }
        let profile = sidecar.profile
        let leaked = leaks.filter { $0.classification == .leaked }
        let atRisk = leaks.filter { $0.classification == .atRisk }
        let closeWait = kernel.facts.closeWaitTimeout.map { "\($0) s" } ?? "unknown"
        let idle = idleTimeout.seconds == 0 ? "disabled" : "\(Int(saturating: idleTimeout.seconds)) s"

        if !leaked.isEmpty {
            let reaped = leaked.compactMap(\.reapedInMilliseconds).max().map { " The last goes away in \(humanDuration(milliseconds: $0)) when the proxy's idle timeout fires, or when the proxy restarts." } ?? " They stay until the proxy restarts (its idle timeout is disabled)."
            findings.append(Finding(
                .leakedSockets, severity: .error,
                summary: "\(plural(leaked.count, "sidecar socket")) leaked in FIN_WAIT2: conntrack forgot \(leaked.count == 1 ? "its flow" : "their flows") after the half-close, so the app's FIN cannot reach the proxy",
                evidence: limited(leaked, describe) + ["conntrack close_wait timeout \(closeWait); proxy idle timeout \(idle) (\(idleTimeout.source))"],
                remedy: leakRemedy(profile: profile, kernel: kernel, idleTimeout: idleTimeout.seconds) + reaped))
        }
        if !atRisk.isEmpty {
            findings.append(Finding(
                .leakAtRisk, severity: .warning,
                summary: "\(plural(atRisk.count, "half-closed flow")) will lose \(atRisk.count == 1 ? "its" : "their") conntrack \(atRisk.count == 1 ? "entry" : "entries") before the proxy gives up on \(atRisk.count == 1 ? "it" : "them")",
                evidence: limited(atRisk, describe),
                remedy: leakRemedy(profile: profile, kernel: kernel, idleTimeout: idleTimeout.seconds)))
        }
        findings += collisionFindings(collisions, kernel: kernel, leakFix: leakRemedy(profile: profile, kernel: kernel, idleTimeout: idleTimeout.seconds))
        if let shorter = kernel.closeWaitShorterThanIdleTimeout, shorter {
            findings.append(Finding(
                .closeWaitTimeout, severity: (leaked.isEmpty && atRisk.isEmpty) ? .info : .warning,
                summary: "Conntrack forgets half-closed flows after \(closeWait), the proxy keeps them \(idle): any app that closes later than \(closeWait) after its upstream leaks a socket",
                evidence: [
                    "net.netfilter.nf_conntrack_tcp_timeout_close_wait = \(closeWait) in this namespace",
                    "proxy TCP idle timeout \(idle): \(idleTimeout.source)",
                ],
                remedy: leakRemedy(profile: profile, kernel: kernel, idleTimeout: idleTimeout.seconds)))
        }
        if !collisions.counters.isEmpty, collisions.counters.values.contains(where: { $0 > 0 }), !collisions.sources.contains(where: { !$0.poisoned.isEmpty }) {
            findings.append(Finding(
                .challengeACKsSeen, severity: .info,
                summary: "This namespace has sent challenge ACKs: port collisions (or other stale-connection hits) happened since it was created",
                evidence: counterEvidence(collisions),
                remedy: "Watch these counters over time (nstat -az TcpExtTCPChallengeACK); rising counts with leaked sidecar sockets mean live collisions."))
        }
        findings += inboundFindings(inboundClashes, profile: profile, counters: collisions)
        findings += exposureFindings(inboundExposure, idleTunnels: idleTunnels, profile: profile)
        return findings + tcpInfoFindings(socketSource: socketSource, leaks: leaks) + tableFindings(kernel)
    }

    /// Connects landing on leaked sockets: those under way, the ports poisoned for new
    /// ones, and what this kernel makes of them.
    static func collisionFindings(_ collisions: CollisionPrediction, kernel: KernelAudit, leakFix: String) -> [Finding] {
        var findings: [Finding] = []
        if !collisions.liveCollisions.isEmpty {
            findings.append(Finding(
                .liveCollision, severity: .error,
                summary: "\(plural(collisions.liveCollisions.count, "connection attempt")) \(collisions.liveCollisions.count == 1 ? "is" : "are") landing on a leaked socket right now",
                evidence: limited(collisions.liveCollisions) { leak in
                    let entry = leak.collidingEntry!
                    return "SYN_SENT \(entry.original.sourceEndpoint) -> \(entry.original.destinationEndpoint) is REDIRECTed onto the leaked \(leak.socket.local) <-> \(leak.socket.remote)"
                } + counterEvidence(collisions),
                remedy: (kernel.outcome == .recovers
                    ? "On this kernel the collision recovers after a SYN retransmit. "
                    : "On this kernel the collision makes connect() time out: \(kernel.collisionRemedy). ")
                    + "Prevent the leaks: \(leakFix)"))
        }
        let exposed = collisions.sources.filter { !$0.poisoned.isEmpty }
        if !exposed.isEmpty {
            // Ports of the second-pass parity are chosen only once the first pass runs
            // out of ports, so they matter only to a pod near port exhaustion.
            let firstPass = exposed.contains { $0.firstPassPoisoned > 0 }
            let severity: Severity = !firstPass ? .info : kernel.outcome == .fails ? .error : .warning
            findings.append(Finding(
                .collisionRisk, severity: severity,
                summary: collisionSummary(exposed, outcome: kernel.outcome),
                evidence: exposed.map { describe($0, rate: collisions.connectRate) }
                    + ["model: \(CollisionPrediction.model) (its assumptions are listed with the collisions)"]
                    + counterEvidence(collisions),
                remedy: kernel.outcome == .recovers
                    ? "On this kernel a collision costs the app a SYN retransmit and resets the leaked socket it hit; prevent the leaks (see leaked-sockets)."
                    : "\(kernel.collisionRemedy.capitalizedFirst). Until then each poisoned port stays dangerous while its leaked socket lives; prevent the leaks (see leaked-sockets)."))
        }
        if kernel.outcome != .recovers {
            findings.append(Finding(
                .collisionOutcome, severity: exposed.isEmpty ? .info : .warning,
                summary: kernel.outcome == .fails
                    ? "On this kernel a connect() that lands on a leaked socket's port times out instead of recovering"
                    : "Whether a connect() that lands on a leaked socket's port recovers is uncertain on this kernel",
                evidence: [kernel.reason, "rules: \(kernel.rules.source)"],
                remedy: kernel.collisionRemedy.capitalizedFirst + "."))
        }
        return findings
    }

    /// Risks that fail nothing yet: clients whose flows into the inbound funnel can
    /// clash, and ambient's idle HBONE tunnels.
    static func exposureFindings(
        _ inboundExposure: [InboundClashAnalysis.Exposure], idleTunnels: [TCPSocket], profile: SidecarProfile
    ) -> [Finding] {
        var findings: [Finding] = []
        if !inboundExposure.isEmpty {
            findings.append(Finding(
                .inboundClashRisk, severity: .info,
                summary: "\(plural(inboundExposure.count, "client")) \(inboundExposure.count == 1 ? "dials" : "dial") two or more of the pod's ports behind the inbound redirect port \(profile.inboundPort): a new connect can pick a source port one of its live flows holds, and clash there",
                evidence: limited(inboundExposure) { exposure in
                    "\(exposure.client): \(plural(exposure.liveFlows, "live flow")) to ports \(exposure.podPorts.map(String.init).joined(separator: ", ")); P(clash) ≈ \(formatPercent(exposure.perConnect)) per connect"
                } + ["model: \(InboundClashAnalysis.model) (N′ from this namespace's ip_local_port_range)"],
                remedy: "Nothing fails while NAT can move the port (inbound-port-remapped says when it did); exclude rarely used pod ports from inbound capture, or keep clients' connections to the pod on one port, to take the funnel's clashes away."))
        }
        if !idleTunnels.isEmpty, let port = profile.hbonePort {
            let longest = idleTunnels.compactMap { $0.info.map { UInt64($0.idleMilliseconds) } }.max() ?? 0
            findings.append(Finding(
                .idleHBONETunnels, severity: .info,
                summary: "\(plural(idleTunnels.count, "HBONE tunnel")) on \(port) \(idleTunnels.count == 1 ? "has" : "have") been idle \(humanDuration(milliseconds: HBONEAnalysis.longIdleMilliseconds)) or more (the longest \(humanDuration(milliseconds: longest))): ztunnel keeps them pooled, each a socket in this namespace and a conntrack entry",
                evidence: limited(idleTunnels) { socket in
                    "\(socket.local) <-> \(socket.remote), idle \(humanDuration(milliseconds: UInt64(socket.info?.idleMilliseconds ?? 0)))"
                },
                remedy: "Nothing is broken by an idle tunnel; on a node short of sockets or conntrack entries (ztunnel holds every ambient pod's), count them per pod (ctdoctor diagnose --all-netns) before the table fills."))
        }
        return findings
    }

    /// Clashes on the inbound redirect port: NAT moved a client's port (the flow works,
    /// but the proxy sees a port the client never used), or a SYN toward it went
    /// unanswered (it met a socket that holds its tuple).
    static func inboundFindings(_ clashes: [InboundClash], profile: SidecarProfile, counters: CollisionPrediction) -> [Finding] {
        var findings: [Finding] = []
        let inbound = profile.inboundPort
        let unreplied = clashes.filter { $0.kind == .unreplied }
        let remapped = clashes.filter { $0.kind == .remapped }
        func describe(_ clash: InboundClash) -> String {
            let entry = clash.entry
            return "\(clash.client) -> :\(clash.podPort) REDIRECTed to :\(inbound), reply to port \(clash.seenClientPort) (\(entry.state?.name ?? "?")\(entry.timeout.map { ", \($0) s left" } ?? ""))"
        }
        if !unreplied.isEmpty {
            findings.append(Finding(
                .inboundUnreplied, severity: .error,
                summary: "\(plural(unreplied.count, "inbound connection attempt")) to the pod \(unreplied.count == 1 ? "sits" : "sit") in SYN_SENT [UNREPLIED] on the inbound redirect port \(inbound): the SYN met a socket that holds its tuple, or nothing answered",
                evidence: limited(unreplied, describe) + counterEvidence(counters),
                remedy: "Look for leaked FIN_WAIT2 sockets on \(inbound) (ctdoctor leaks) and end them; clients that connect from fixed source ports (probes, NAT gateways) clash on the redirect port: let their ports vary, or exclude the probed port from inbound capture (Istio traffic.sidecar.istio.io/excludeInboundPorts, Linkerd config.linkerd.io/skip-inbound-ports)."))
        }
        if !remapped.isEmpty {
            findings.append(Finding(
                .inboundPortRemapped, severity: .warning,
                summary: "\(plural(remapped.count, "inbound connection")) had \(remapped.count == 1 ? "its" : "their") client port moved by NAT on the inbound redirect port \(inbound): two flows from one client port to different pod ports clashed there",
                evidence: limited(remapped, describe) + ["model: \(InboundClashAnalysis.model)"],
                remedy: "The connections work, but the proxy (its logs, its policies, a later connect from the moved port) sees a client port that client never used; a later SYN from that port collides. Clients that reuse one source port across the pod's ports (fixed bind(), SO_REUSEADDR) cause it: let the kernel choose their ports, or exclude one of the ports from inbound capture."))
        }
        return findings
    }

    /// When the socket listing has no tcp_info, idle times (and so the leaks' lifetimes
    /// and the stalls) are unknown: say so and how to get them.
    static func tcpInfoFindings(socketSource: SocketSource, leaks: [LeakRecord]) -> [Finding] {
        var findings: [Finding] = []
        if case .procFile(let reason) = socketSource {
            findings.append(Finding(
                .noTCPInfo, severity: .info,
                summary: "Socket idle times are unknown: \(reason)",
                evidence: ["leaks are assumed to live the whole proxy idle timeout"],
                remedy: "Load the kernel's inet_diag and tcp_diag modules for exact idle times."))
        } else if case .file = socketSource, leaks.contains(where: { $0.idleMilliseconds == nil }) {
            findings.append(Finding(
                .noTCPInfo, severity: .info,
                summary: "Socket idle times are unknown: the listing (\(socketSource)) carries no tcp_info",
                evidence: ["leaks are assumed to live the whole proxy idle timeout; stalled connections cannot be seen"],
                remedy: "Capture `ss -tanpoei` (-i adds idle times and byte counts), or take a `ctdoctor snapshot` where ctdoctor can run."))
        }
        return findings
    }

    /// Stalled connections: a deadlock (Istio, ASM) or a 10 s delay (Linkerd) on a
    /// server-first port; otherwise silent connections worth a look.
    static func stalls(_ groups: [StallGroup], sidecar: SidecarDetection?, thresholdSeconds: Double) -> [Finding] {
        guard let sidecar else { return [] }
        let linkerd = sidecar.profile.mesh == .linkerd
        return groups.map { group in
            let port = group.port.map { "port \($0)" } ?? "an unknown port"
            // The port already names itself; other evidence (--server-first) is worth saying.
            let what = group.application.map { application in
                if case .given = group.evidence { return "\(application.name), from \(group.evidence!)" }
                return application.name
            }
            let oldest = humanDuration(milliseconds: group.connections.first?.silentMilliseconds ?? 0)
            let evidence = limited(group.connections) { connection in
                "\(connection.socket.local) <-> \(connection.socket.remote) (\(connection.direction.rawValue))\(connection.originalDestination.map { ", dialled \($0)" } ?? ""), no byte either way for \(humanDuration(milliseconds: connection.silentMilliseconds))"
            }
            let declare = linkerd
                ? "List \(port) in config.linkerd.io/opaque-ports on both the Service and the workload (or appProtocol: linkerd.io/opaque on the Service port); the annotation replaces Linkerd's default list."
                : "Declare \(port) TCP: a Service port named tcp-… or appProtocol: tcp, a ServiceEntry with protocol: TCP for an external server; or have clients start TLS. `ctdoctor lint` finds such ports in manifests."
            if let application = group.application, application.isServerFirst {
                return Finding(
                    .stalledServerFirst, severity: linkerd ? .warning : .error,
                    summary: "\(plural(group.connections.count, "connection")) to \(port) (\(what!)) \(group.connections.count == 1 ? "is" : "are") stalled in the sidecar, the oldest for \(oldest): "
                        + (linkerd
                            ? "Linkerd waits up to 10 s for the client's bytes to detect the protocol, while the \(application.name) client waits for the server's greeting"
                            : "its protocol detection waits for the client's bytes, while the \(application.name) client waits for the server's greeting — a deadlock until the client gives up"),
                    evidence: evidence, remedy: declare)
            }
            if linkerd, let application = group.application, application.silentClients {
                return Finding(
                    .stalledSilentClients, severity: .warning,
                    summary: "\(plural(group.connections.count, "pooled \(application.name) connection")) to \(port) wait out Linkerd's 10 s protocol detection",
                    evidence: evidence, remedy: declare)
            }
            let remedy = group.application.map { application in
                "\(application.name) is client-first, so protocol detection is not what holds these: the clients have not sent their first request (idle pooled connections, or a client stuck before it writes)."
            } ?? "If the server speaks first on \(port), it is stalled in protocol detection: \(declare) Idle pooled connections look the same: give --server-first \(group.port.map(String.init) ?? "PORT") if this protocol's server speaks first."
            return Finding(
                .stalledConnections, severity: .info,
                summary: "\(plural(group.connections.count, "connection")) to \(port)\(what.map { " (\($0))" } ?? "") accepted by the sidecar carried no byte for over \(humanDuration(milliseconds: UInt64(saturating: thresholdSeconds * 1000)))",
                evidence: evidence, remedy: remedy)
        }
    }

    static func tableFindings(_ kernel: KernelAudit) -> [Finding] {
        guard let count = kernel.facts.conntrackCount, let maximum = kernel.facts.conntrackMax else { return [] }
        return tableFill(count: count, maximum: maximum).map { [$0] } ?? []
    }

    /// The fill finding, one wording for diagnose and pressure: a warning past 80 %, an
    /// error past 90 % (early drops begin only at 100 %, but a burst gets there fast).
    public static func tableFill(count: Int, maximum: Int, buckets: Int? = nil) -> Finding? {
        guard maximum > 0 else { return nil }
        let fill = Double(count) / Double(maximum)
        guard fill >= 0.8 else { return nil }
        var evidence = ["nf_conntrack_count \(count) of nf_conntrack_max \(maximum) (the maximum is the node's, the count this namespace's)"]
        if let buckets, buckets > 0 {
            evidence.append("nf_conntrack_buckets \(buckets): \(formatQuantity(Double(count) / Double(buckets))) entries per hash chain on average")
        }
        return Finding(
            .conntrackTableFull, severity: fill >= 0.9 ? .error : .warning,
            summary: "The conntrack table is \(formatPercent(fill)) full: once it fills, new flows are dropped (\"nf_conntrack: table full, dropping packet\")",
            evidence: evidence,
            remedy: "Find what fills it (ctdoctor pressure names the states, timeouts and pods), then lower the timeout that holds the most entries or raise net.netfilter.nf_conntrack_max on the node (kube-proxy's --conntrack-max-per-core sets it), with nf_conntrack_buckets at a quarter to an eighth of it.")
    }

    /// The way to stop half-close leaks for this mesh, kernel and idle timeout.
    static func leakRemedy(profile: SidecarProfile, kernel: KernelAudit, idleTimeout: Double) -> String {
        let target = idleTimeout == 0 ? 3600 : Int(idleTimeout.rounded(.up))
        let sysctl = "raise net.netfilter.nf_conntrack_tcp_timeout_close_wait to at least the proxy idle timeout (\(target)) in the pod's network namespace, e.g. from a NET_ADMIN init container: sysctl -w net.netfilter.nf_conntrack_tcp_timeout_close_wait=\(target)"
        switch profile.mesh {
        case .istio:
            return "Either \(sysctl); or lower the proxy's TCP idle timeout below the close_wait timeout (\(kernel.facts.closeWaitTimeout.map { "\($0) s" } ?? "60 s by default")) with a DestinationRule trafficPolicy.connectionPool.tcp.idleTimeout (Istio ≥ 1.21) or ISTIO_META_IDLE_TIMEOUT in the proxy metadata, at the cost of closing idle connections sooner."
        case .ambient:
            return "Either \(sysctl); or have ztunnel close idle half-closed connections sooner than the close_wait timeout (\(kernel.facts.closeWaitTimeout.map { "\($0) s" } ?? "60 s by default")). The leaked sockets are ztunnel's, held in this pod's namespace: restarting ztunnel ends them, for every pod of the node at once."
        case .linkerd:
            // The injector reads the annotation with Go's time.ParseDuration and drops what
            // it cannot read; current charts render it only with proxyInit.runAsRoot.
            return "Set config.linkerd.io/close-wait-timeout: \"\(target)s\" on the workload's pod template (or its namespace) and restart it: a Go duration with its unit (a bare number is dropped), which proxy-init applies only when it runs as root (proxyInit.runAsRoot=true in the control plane's values; it then runs privileged); or \(sysctl). `ctdoctor lint` checks the annotation."
        case .custom:
            return "Either \(sysctl); or make the proxy close idle half-closed connections before conntrack forgets them."
        }
    }

    static func describe(_ leak: LeakRecord) -> String {
        var text = "\(leak.socket.local) <-> \(leak.socket.remote) (\(leak.direction.rawValue))"
        if let destination = leak.originalDestination { text += ", app dialled \(destination)" }
        if let entry = leak.entry, let left = entry.timeout { text += ", conntrack \(entry.state?.name ?? "?") \(left) s left" }
        if let app = leak.appSocket { text += ", app socket \(app.state.name)" }
        if let idle = leak.idleMilliseconds { text += ", idle \(humanDuration(milliseconds: idle))" }
        if let owner = leak.owner {
            // Inferred: the capture listener's owner; the socket's own holder was not read.
            text += leak.ownerInferred ? ", on the capture listener of \(owner.command) (pid \(owner.pid))" : ", held by \(owner.command) (pid \(owner.pid), fd \(owner.fd))"
        }
        return text
    }

    static func describe(_ source: SourceExposure, rate: ConnectRate?) -> String {
        let ports = source.poisoned.map { "\($0.port)\($0.firstPass ? "" : "*")" }.prefix(evidenceLimit).joined(separator: " ")
        var text = "\(source.address) (\(source.direction == .outbound ? "the app" : "a remote client")): poisoned ports \(ports)\(source.poisoned.count > evidenceLimit ? " …" : "")"
        text += "; \(source.firstPassPoisoned) of \(source.firstPassSpace) first-pass ports (\(formatPercent(source.fractionPoisoned)) per connect)"
        if source.secondPassPoisoned > 0 { text += ", \(source.secondPassPoisoned) second-pass (*)" }
        if let expected = source.expectedCollisions, let probability = source.collisionProbability {
            text += "; expected before the leaks end: \(formatQuantity(expected)) connects on a poisoned port"
            if let hit = source.expectedLeaksHit { text += ", \(formatQuantity(hit)) leaks hit" }
            text += " (P ≥ 1 collision: \(formatPercent(probability)))"
        } else if rate == nil {
            text += "; expected collisions unknown (no connect rate: give --connect-rate)"
        }
        return text
    }

    static func collisionSummary(_ exposed: [SourceExposure], outcome: CollisionOutcome) -> String {
        let ports = exposed.reduce(0) { $0 + $1.poisoned.count }
        if !exposed.contains(where: { $0.firstPassPoisoned > 0 }) {
            return "\(plural(ports, "ephemeral port")) \(ports == 1 ? "is" : "are") poisoned, all of the parity connect() tries only once the other runs out"
        }
        let effect = outcome == .fails ? "time out" : outcome == .recovers ? "be delayed by a retransmit" : "be delayed or time out"
        let odds = exposed.map(\.fractionPoisoned).max() ?? 0
        return "\(plural(ports, "ephemeral port")) \(ports == 1 ? "is" : "are") poisoned: a connect() that picks one will \(effect) (\(formatPercent(odds)) of connects)"
    }

    static func counterEvidence(_ collisions: CollisionPrediction) -> [String] {
        guard !collisions.counters.isEmpty else { return [] }
        let values = CollisionPrediction.counterNames.compactMap { name in collisions.counters[name].map { "\(name) \($0)" } }
        return ["since the namespace was created: " + values.joined(separator: ", ")]
    }

    /// The first `evidenceLimit` items described, and how many more there are; only
    /// those shown are described (there may be thousands).
    static func limited<Item>(_ items: [Item], _ describe: (Item) -> String) -> [String] {
        let shown = items.prefix(evidenceLimit).map(describe)
        return items.count <= evidenceLimit ? shown : shown + ["… and \(items.count - evidenceLimit) more"]
    }
}

/// A fraction as a percentage with `formatQuantity`'s precision.
public func formatPercent(_ fraction: Double) -> String {
    fraction == 0 ? "0%" : "\(formatQuantity(fraction * 100))%"
}

extension String {
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}

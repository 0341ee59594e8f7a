import Sockets

/// Which proxy captures the namespace's TCP, and on which ports.
public struct SidecarProfile: Sendable, Hashable, CustomStringConvertible {
    public enum Mesh: String, Sendable, Hashable {
        /// Istio and Alibaba ASM: Envoy, started by pilot-agent.
        case istio
        /// Istio's ambient mode: ztunnel, the node's proxy, holds listeners inside each
        /// pod's namespace (15001 outbound by REDIRECT, 15006 plaintext and 15008 HBONE
        /// inbound by TPROXY) from a process that lives in another namespace.
        case ambient
        case linkerd
        /// Ports given by hand.
        case custom
    }

    public var mesh: Mesh
    /// Where iptables REDIRECTs the app's outbound connections.
    public var outboundPort: UInt16
    /// Where it REDIRECTs connections coming in to the app.
    public var inboundPort: UInt16
    /// Where HBONE (mTLS HTTP/2 CONNECT tunnels between proxies) arrives: ambient's 15008.
    public var hbonePort: UInt16?

    public init(mesh: Mesh, outboundPort: UInt16, inboundPort: UInt16, hbonePort: UInt16? = nil) {
        self.mesh = mesh
        self.outboundPort = outboundPort
        self.inboundPort = inboundPort
        self.hbonePort = hbonePort
    }

    public static let istio = SidecarProfile(mesh: .istio, outboundPort: 15001, inboundPort: 15006)
    public static let ambient = SidecarProfile(mesh: .ambient, outboundPort: 15001, inboundPort: 15006, hbonePort: 15008)
    public static let linkerd = SidecarProfile(mesh: .linkerd, outboundPort: 4140, inboundPort: 4143)

    /// The ports sockets are captured on.
    public var capturePorts: [UInt16] { [outboundPort, inboundPort] }

    /// Whether `port` is one of the capture ports (without building an array: it is
    /// asked once per socket).
    public func captures(_ port: UInt16) -> Bool { port == outboundPort || port == inboundPort }

    public var description: String {
        switch mesh {
        case .istio: "istio (outbound \(outboundPort), inbound \(inboundPort))"
        case .ambient: "ambient (ztunnel: outbound \(outboundPort), inbound \(inboundPort), HBONE \(hbonePort.map(String.init) ?? "-"))"
        case .linkerd: "linkerd (outbound \(outboundPort), inbound \(inboundPort))"
        case .custom: "ports:\(outboundPort),\(inboundPort)"
        }
    }

    /// Reads `--sidecar`: `istio`, `asm` (same ports), `ambient`, `linkerd`, or `ports:OUT,IN`.
    public init?(spec: String) {
        switch spec.lowercased() {
        case "istio", "asm": self = .istio
        case "ambient": self = .ambient
        case "linkerd": self = .linkerd
        default:
            guard spec.lowercased().hasPrefix("ports:") else { return nil }
            let ports = spec.dropFirst(6).split(separator: ",").map { UInt16($0) }
            guard ports.count == 2, let outbound = ports[0], let inbound = ports[1], outbound > 0, inbound > 0 else {
                return nil
            }
            self.init(mesh: .custom, outboundPort: outbound, inboundPort: inbound)
        }
    }

    /// Every profile auto-detection knows (ambient shares Istio's capture ports: told
    /// apart by its HBONE listener and its process, see `SidecarDetection.detect`).
    public static let known: [SidecarProfile] = [.istio, .linkerd]

    /// Every port a known profile listens on for capture or HBONE: what detection lists.
    public static let listenerPorts: [UInt16] = Array(knownCapturePorts.union([ambient.hbonePort!])).sorted()
    /// Every known mesh's capture ports: what is watched where no sidecar was recognised.
    public static let knownCapturePorts: Set<UInt16> = Set(known.flatMap(\.capturePorts))

    /// Process names that identify a mesh's proxy (comm is at most 15 bytes).
    static func mesh(ofProcess command: String) -> Mesh? {
        switch command {
        case "envoy", "pilot-agent": .istio
        // Istio ambient's node proxy, which holds the capture sockets inside each pod's
        // namespace.
        case "ztunnel": .ambient
        case "linkerd2-proxy", "linkerd2-proxy-": .linkerd
        default: nil
        }
    }
}

/// How the sidecar was found, for the report.
public struct SidecarDetection: Sendable, Hashable {
    public var profile: SidecarProfile
    /// How it was decided: "given with --sidecar", or the listeners and process seen.
    public var evidence: String
    /// The process holding the capture listener, when it could be found.
    public var process: SocketOwner?
    public var wasGiven: Bool
    /// The network namespace that process lives in when it is not this one
    /// ("net:[4026532101]"): ambient's ztunnel, or the lab's proxy.
    public var proxyNamespace: String?
    /// The pod living there, when a node sweep could name it.
    public var proxyPod: String?

    /// For copies filtered with grep (`ss -tanp | grep 15001`), which carry no LISTEN row:
    /// the sidecar inferred from accepted or half-closed sockets on a known profile's
    /// capture ports, or from a proxy process named among the owners.
    public static func infer(fromConnections sockets: [TCPSocket], owners: [UInt64: [SocketOwner]]) -> SidecarDetection? {
        var best: (profile: SidecarProfile, count: Int, ports: Set<UInt16>, process: SocketOwner?)?
        for profile in SidecarProfile.known {
            let onPorts = sockets.filter { [.finWait2, .established].contains($0.state) && profile.captures($0.local.port) }
            let process = sockets.lazy.compactMap { owners[$0.inode]?.first }.first { SidecarProfile.mesh(ofProcess: $0.command) == profile.mesh }
            let score = onPorts.count + (process == nil ? 0 : 1_000_000)
            guard score > 0, score > best?.count ?? 0 else { continue }
            best = (profile, score, Set(onPorts.map(\.local.port)), process)
        }
        guard let best else { return nil }
        var evidence = "inferred: no LISTEN row in the copy (filtered with grep?)"
        if !best.ports.isEmpty { evidence += ", but sockets on \(best.ports.sorted().map(String.init).joined(separator: " and "))" }
        if let process = best.process { evidence += ", held by \(process.command) (pid \(process.pid))" }
        evidence += "; give --sidecar istio|ambient|linkerd|ports:OUT,IN to say so"
        return SidecarDetection(profile: best.profile, evidence: evidence, process: best.process, wasGiven: false)
    }

    /// Finds the sidecar from listening sockets on the known capture ports and, when
    /// their owners are known, the proxy's process name.
    public static func detect(listeners: [TCPSocket], owners: [UInt64: [SocketOwner]]) -> SidecarDetection? {
        var best: (profile: SidecarProfile, ports: [UInt16], owner: SocketOwner?)?
        for profile in SidecarProfile.known {
            let matching = listeners.filter { $0.state == .listen && profile.captures($0.local.port) }
            guard !matching.isEmpty else { continue }
            let owner = matching.lazy.compactMap { owners[$0.inode]?.first }.first
            let candidate = (profile, Array(Set(matching.map(\.local.port))).sorted(), owner)
            // A recognised proxy process outranks a bare port match.
            if let owner, SidecarProfile.mesh(ofProcess: owner.command) == profile.mesh {
                best = candidate
                break
            }
            if best == nil || candidate.1.count > best!.ports.count { best = candidate }
        }
        guard var best else { return nil }
        // Ambient: Istio's capture ports plus ztunnel's HBONE listener, held by ztunnel
        // or by another process that is not Envoy. An unknown holder stays a sidecar:
        // sidecars with HBONE enabled listen on 15008 too, and the ambient remedy
        // (restart ztunnel, for the whole node) would be the wrong one.
        let hbone = SidecarProfile.ambient.hbonePort!
        if best.profile == .istio, listeners.contains(where: { $0.state == .listen && $0.local.port == hbone }),
            let owner = best.owner, SidecarProfile.mesh(ofProcess: owner.command) != .istio
        {
            best = (.ambient, (best.ports + [hbone]).sorted(), best.owner)
        }
        let ports = best.ports.map(String.init).joined(separator: " and ")
        var who = best.owner.map { " held by \($0.command) (pid \($0.pid))" } ?? ""
        // Named as what it is: a process on a capture port that is no known proxy.
        if let owner = best.owner, SidecarProfile.mesh(ofProcess: owner.command) == nil {
            who += best.profile == .ambient
                ? ", which is not ztunnel by name (an ambient mesh's node proxy as the HBONE listener on \(hbone) says, or a custom one)"
                : ", which is not Envoy, pilot-agent, linkerd2-proxy or ztunnel (a custom proxy, or another program on the port)"
        }
        return SidecarDetection(
            profile: best.profile, evidence: "listening on \(ports)\(who)", process: best.owner, wasGiven: false)
    }
}

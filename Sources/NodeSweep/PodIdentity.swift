import JSON
import NetCore

/// What a node sweep can learn about the pod living in a network namespace, from the
/// files of one of its processes. Pure parsers: bytes in, values out.
public struct PodIdentity: Sendable, Hashable {
    /// "namespace/name" from the container runtime, or a name alone from the hostname.
    public var name: String?
    /// The pod's UID, from the process's cgroup path.
    public var uid: String?
    /// Where the name came from, for the report.
    public var source: String?

    public init(name: String? = nil, uid: String? = nil, source: String? = nil) {
        self.name = name
        self.uid = uid
        self.source = source
    }

    /// How to label the namespace: the name, else the UID, else nil.
    public var label: String? { name ?? uid.map { "pod uid \($0)" } }

    /// HOSTNAME from /proc/PID/environ (NUL-separated): Kubernetes sets it to the pod's
    /// name in every container.
    public static func hostname(fromEnviron bytes: [UInt8]) -> String? {
        Environ.value(of: "HOSTNAME", in: bytes).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The pod UID in a cgroup path: `/kubepods/burstable/pod1b2c…/…` (cgroupfs driver) or
    /// `kubepods-burstable-pod1b2c_…_….slice` (systemd driver, dashes as underscores).
    public static func podUID(fromCgroup bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        var rest = Substring(text)
        while let range = rest.firstRange(of: "pod") {
            let candidate = rest[range.upperBound...].prefix(36)
            let normalized = String(candidate.map { $0 == "_" ? "-" : $0 })
            if isUUID(normalized) { return normalized }
            rest = rest[range.upperBound...]
        }
        return nil
    }

    /// The container ID a cgroup path ends in: `cri-containerd-<64 hex>.scope`,
    /// `crio-<64 hex>.scope`, `docker-<64 hex>.scope`, or a bare 64-hex component.
    public static func containerID(fromCgroup bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n") {
            guard let path = line.split(separator: ":", maxSplits: 2).last else { continue }
            for component in path.split(separator: "/").reversed() {
                var name = Substring(component)
                if name.hasSuffix(".scope") { name = name.dropLast(6) }
                if let dash = name.lastIndex(of: "-") { name = name[name.index(after: dash)...] }
                if name.count == 64, name.allSatisfy(\.isHexDigit) { return String(name) }
            }
        }
        return nil
    }

    /// The pod's namespace and name from a container's OCI config.json annotations:
    /// containerd's `io.kubernetes.cri.sandbox-namespace`/`-name`, CRI-O's and dockershim's
    /// `io.kubernetes.pod.namespace`/`.name`.
    public static func name(fromRuntimeConfig bytes: [UInt8]) -> String? {
        guard let document = try? JSONReader.parse(bytes) else { return nil }
        let annotations = JSONField(node: document)["annotations"]
        for (namespaceKey, nameKey) in [
            ("io.kubernetes.cri.sandbox-namespace", "io.kubernetes.cri.sandbox-name"),
            ("io.kubernetes.pod.namespace", "io.kubernetes.pod.name"),
        ] {
            if let name = try? annotations[nameKey].string() {
                let namespace = try? annotations[namespaceKey].string()
                return namespace.map { "\($0)/\(name)" } ?? name
            }
        }
        return nil
    }

    static func isUUID(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        return parts.map(\.count) == [8, 4, 4, 4, 12] && parts.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }
}

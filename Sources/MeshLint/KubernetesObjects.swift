import Diagnosis
import YAML

/// A Service port, as written.
public struct ServicePort: Sendable {
    public var name: String?
    public var port: Int
    /// A number or a container port's name.
    public var targetPort: String?
    public var appProtocol: String?
    public var line: Int
}

public struct Service: Sendable {
    public var object: ManifestObject
    public var selector: [String: String]
    public var ports: [ServicePort]
    public var annotations: [String: String]
    public var type: String
}

/// A container port, as written.
public struct ContainerPort: Sendable {
    public var name: String?
    public var number: Int
    public var line: Int
}

public struct Container: Sendable {
    public var name: String
    public var image: String
    public var ports: [ContainerPort]
    public var line: Int
    /// command followed by args, as the container runs them.
    public var arguments: [String] = []
    /// ConfigMaps mounted into the container: where, and which keys (subPath: one).
    public var configMounts: [ConfigMount] = []
    /// env entries with a literal value (valueFrom cannot be read from a manifest).
    public var environment: [String: String] = [:]
}

/// A Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod: what its pods
/// look like.
/// A ConfigMap volume mounted into a container.
public struct ConfigMount: Sendable {
    public var configMap: String
    public var mountPath: String
    /// Only this key, mounted as the file at mountPath.
    public var subPath: String?
    /// The volume's `items`: key → path under mountPath; nil mounts every key by its name.
    public var items: [String: String]?
}

/// A ConfigMap's text data, for the server config files it holds.
public struct ConfigMap: Sendable {
    public var object: ManifestObject
    public var data: [String: String]
}

public struct Workload: Sendable {
    public var object: ManifestObject
    public var podLabels: [String: String]
    public var podAnnotations: [String: String]
    /// Where each pod annotation is written, for findings about one.
    public var podAnnotationLines: [String: Int] = [:]
    public var containers: [Container]
    /// The pod's `securityContext.sysctls`, which the kubelet sets in the pod's network
    /// namespace (net.netfilter.nf_conntrack_tcp_timeout_close_wait among them), with lines.
    public var podSysctls: [String: (value: String, line: Int)] = [:]
    /// The arguments of an already injected `linkerd-init` container, when the input is
    /// rendered (nil for a manifest before injection).
    public var proxyInitArguments: [String]?

    public static let kinds: Set<String> = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod", "ReplicationController"]
}

public struct NamespaceObject: Sendable {
    public var object: ManifestObject
    public var labels: [String: String]
    public var annotations: [String: String]
}

/// An Istio ServiceEntry port.
public struct ServiceEntryPort: Sendable {
    public var name: String?
    public var number: Int
    public var protocolName: String?
    public var line: Int
}

public struct ServiceEntry: Sendable {
    public var object: ManifestObject
    public var hosts: [String]
    public var ports: [ServiceEntryPort]
}

/// An Istio PeerAuthentication: the mTLS mode for the workloads it selects, and per port.
public struct PeerAuthentication: Sendable {
    public var object: ManifestObject
    /// nil: the whole namespace (or the mesh, in the root namespace).
    public var selector: [String: String]?
    public var mode: String?
    /// Keyed by the workload's (container) port.
    public var portModes: [Int: (mode: String, line: Int)]
}

/// An Istio DestinationRule's TLS mode towards its host.
public struct DestinationRule: Sendable {
    public var object: ManifestObject
    public var host: String
    public var tlsMode: String?
    public var portModes: [Int: String]
}

/// The objects of an input, by type.
public struct ManifestSet: Sendable {
    public var services: [Service] = []
    public var workloads: [Workload] = []
    public var namespaces: [NamespaceObject] = []
    public var serviceEntries: [ServiceEntry] = []
    public var peerAuthentications: [PeerAuthentication] = []
    public var destinationRules: [DestinationRule] = []
    public var configMaps: [ConfigMap] = []
    public var objectCount = 0

    // Indexes, so that lint is linear in objects: matching every Service against every
    // workload took 16 s for 16k objects and minutes for 64k.
    /// Workloads by (namespace, pod label, value): a Service's candidates are those of
    /// its rarest selector pair.
    private var workloadsByLabel: [LabelKey: [Int]] = [:]
    private var namespacesByName: [String: Int] = [:]
    /// PeerAuthentications by their namespace.
    private var peerAuthenticationsByNamespace: [String: [Int]] = [:]
    /// DestinationRules by the first label of their host (the Service name).
    private var destinationRulesByName: [String: [Int]] = [:]
    private var configMapsByName: [NamespacedName: Int] = [:]

    struct NamespacedName: Hashable {
        var namespace: String
        var name: String
    }

    struct LabelKey: Hashable {
        var namespace: String
        var key: String
        var value: String
    }

    public init(_ objects: [ManifestObject]) {
        objectCount = objects.count
        for object in objects {
            let root = object.root
            let metadata = root["metadata"]
            switch object.kind {
            case "Service":
                let spec = root["spec"]
                services.append(Service(
                    object: object,
                    selector: spec?["selector"]?.stringMap ?? [:],
                    ports: (spec?["ports"]?.items ?? []).compactMap { port in
                        guard let number = port["port"]?.int else { return nil }
                        return ServicePort(
                            name: port["name"]?.string, port: number, targetPort: port["targetPort"]?.string,
                            appProtocol: port["appProtocol"]?.string, line: port.line)
                    },
                    annotations: metadata?["annotations"]?.stringMap ?? [:],
                    type: spec?["type"]?.string ?? "ClusterIP"))
            case _ where Workload.kinds.contains(object.kind):
                workloads.append(Self.workload(object))
            case "ConfigMap":
                configMaps.append(ConfigMap(object: object, data: root["data"]?.stringMap ?? [:]))
            case "Namespace":
                namespaces.append(NamespaceObject(
                    object: object, labels: metadata?["labels"]?.stringMap ?? [:],
                    annotations: metadata?["annotations"]?.stringMap ?? [:]))
            case "ServiceEntry":
                let spec = root["spec"]
                serviceEntries.append(ServiceEntry(
                    object: object,
                    hosts: (spec?["hosts"]?.items ?? []).compactMap(\.string),
                    ports: (spec?["ports"]?.items ?? []).compactMap { port in
                        guard let number = port["number"]?.int else { return nil }
                        return ServiceEntryPort(name: port["name"]?.string, number: number, protocolName: port["protocol"]?.string, line: port.line)
                    }))
            case "PeerAuthentication":
                let spec = root["spec"]
                var portModes: [Int: (mode: String, line: Int)] = [:]
                for (port, line, value) in spec?["portLevelMtls"]?.pairs ?? [] {
                    if let number = Int(port), let mode = value["mode"]?.string { portModes[number] = (mode.uppercased(), line) }
                }
                peerAuthentications.append(PeerAuthentication(
                    object: object,
                    selector: spec?["selector"]?["matchLabels"]?.stringMap,
                    mode: spec?["mtls"]?["mode"]?.string?.uppercased(),
                    portModes: portModes))
            case "DestinationRule":
                let spec = root["spec"]
                let policy = spec?["trafficPolicy"]
                var portModes: [Int: String] = [:]
                for setting in policy?["portLevelSettings"]?.items ?? [] {
                    if let number = setting["port"]?["number"]?.int, let mode = setting["tls"]?["mode"]?.string {
                        portModes[number] = mode.uppercased()
                    }
                }
                destinationRules.append(DestinationRule(
                    object: object, host: spec?["host"]?.string ?? "",
                    tlsMode: policy?["tls"]?["mode"]?.string?.uppercased(), portModes: portModes))
            default:
                continue
            }
        }
        for (index, workload) in workloads.enumerated() {
            for (key, value) in workload.podLabels {
                workloadsByLabel[LabelKey(namespace: workload.object.namespace, key: key, value: value), default: []].append(index)
            }
        }
        for (index, configMap) in configMaps.enumerated() {
            configMapsByName[NamespacedName(namespace: configMap.object.namespace, name: configMap.object.name)] = index
        }
        for (index, namespace) in namespaces.enumerated() where namespacesByName[namespace.object.name] == nil {
            namespacesByName[namespace.object.name] = index
        }
        for (index, policy) in peerAuthentications.enumerated() {
            peerAuthenticationsByNamespace[policy.object.namespace, default: []].append(index)
        }
        for (index, rule) in destinationRules.enumerated() {
            let name = rule.host.split(separator: ".", maxSplits: 1).first.map(String.init) ?? ""
            destinationRulesByName[name, default: []].append(index)
        }
    }

    /// A workload of any kind (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob…)
    /// from its pod template: labels, annotations, serving containers and what they mount.
    static func workload(_ object: ManifestObject) -> Workload {
        let root = object.root
        let template: YAMLNode?
        switch object.kind {
        case "Pod": template = root
        case "CronJob": template = root["spec"]?["jobTemplate"]?["spec"]?["template"]
        default: template = root["spec"]?["template"]
        }
        let podMetadata = template?["metadata"]
        let podSpec = template?["spec"]
        // ConfigMap volumes by volume name: the ConfigMap and its items.
        var configVolumes: [String: (name: String, items: [String: String]?)] = [:]
        for volume in podSpec?["volumes"]?.items ?? [] {
            guard let name = volume["name"]?.string, let source = volume["configMap"], let configMap = source["name"]?.string else { continue }
            var items: [String: String]?
            if let list = source["items"]?.items {
                let pairs = list.compactMap { item -> (String, String)? in
                    guard let key = item["key"]?.string, let path = item["path"]?.string else { return nil }
                    return (key, path)
                }
                items = Dictionary(pairs, uniquingKeysWith: { first, _ in first })
            }
            configVolumes[name] = (configMap, items)
        }
        let containers = (podSpec?["containers"]?.items ?? []) + (podSpec?["initContainers"]?.items ?? []).filter {
            // Sidecar-style init containers (restartPolicy: Always) serve ports too.
            $0["restartPolicy"]?.string == "Always"
        }
        var sysctls: [String: (value: String, line: Int)] = [:]
        for entry in podSpec?["securityContext"]?["sysctls"]?.items ?? [] {
            if let name = entry["name"]?.string, let value = entry["value"]?.string { sysctls[name] = (value, entry.line) }
        }
        let proxyInit = (podSpec?["initContainers"]?.items ?? []).first { $0["name"]?.string == "linkerd-init" }
        return Workload(
            object: object,
            podLabels: podMetadata?["labels"]?.stringMap ?? [:],
            podAnnotations: podMetadata?["annotations"]?.stringMap ?? [:],
            podAnnotationLines: Dictionary((podMetadata?["annotations"]?.pairs ?? []).map { ($0.key, $0.line) }, uniquingKeysWith: { first, _ in first }),
            containers: containers.map { container in
                Container(
                    name: container["name"]?.string ?? "",
                    image: container["image"]?.string ?? "",
                    ports: (container["ports"]?.items ?? []).compactMap { port in
                        port["containerPort"]?.int.map { ContainerPort(name: port["name"]?.string, number: $0, line: port.line) }
                    },
                    line: container.line,
                    arguments: ((container["command"]?.items ?? []) + (container["args"]?.items ?? [])).compactMap(\.string),
                    configMounts: (container["volumeMounts"]?.items ?? []).compactMap { mount in
                        guard let volume = mount["name"]?.string.flatMap({ configVolumes[$0] }), let path = mount["mountPath"]?.string else { return nil }
                        return ConfigMount(configMap: volume.name, mountPath: path, subPath: mount["subPath"]?.string, items: volume.items)
                    },
                    environment: Dictionary(
                        (container["env"]?.items ?? []).compactMap { entry in
                            entry["name"]?.string.flatMap { name in entry["value"]?.string.map { (name, $0) } }
                        },
                        uniquingKeysWith: { first, _ in first }))
            },
            podSysctls: sysctls,
            proxyInitArguments: proxyInit.map { ((($0["command"]?.items ?? []) + ($0["args"]?.items ?? [])).compactMap(\.string)) })
    }

    /// The workloads a Service selects: same namespace (or both unstated), and every
    /// selector label on the pod template. A Service without a selector selects none.
    public func workloads(selectedBy service: Service) -> [Workload] {
        guard !service.selector.isEmpty else { return [] }
        let namespace = service.object.namespace
        let candidates = service.selector.map { workloadsByLabel[LabelKey(namespace: namespace, key: $0.key, value: $0.value)] ?? [] }
        guard let rarest = candidates.min(by: { $0.count < $1.count }) else { return [] }
        return rarest.map { workloads[$0] }.filter { workload in
            service.selector.allSatisfy { workload.podLabels[$0.key] == $0.value }
        }
    }

    /// The files the container's mounted ConfigMaps put in its filesystem, when those
    /// ConfigMaps are in the input (same namespace as the workload).
    public func configFiles(of container: Container, in workload: Workload) -> [ServerConfig.File] {
        var files: [ServerConfig.File] = []
        for mount in container.configMounts {
            guard let index = configMapsByName[NamespacedName(namespace: workload.object.namespace, name: mount.configMap)] else { continue }
            let data = configMaps[index].data
            let directory = mount.mountPath.hasSuffix("/") ? String(mount.mountPath.dropLast()) : mount.mountPath
            for key in data.keys.sorted() {
                let relative = mount.items.map { $0[key] } ?? key
                guard let relative else { continue }  // items list others only
                if let subPath = mount.subPath {
                    if subPath == relative { files.append(ServerConfig.File(path: directory, text: data[key]!)) }
                } else {
                    files.append(ServerConfig.File(path: "\(directory)/\(relative)", text: data[key]!))
                }
            }
        }
        return files
    }

    public func namespace(named name: String) -> NamespaceObject? {
        namespacesByName[name].map { namespaces[$0] }
    }

    /// The PeerAuthentications of a namespace, in input order.
    func peerAuthentications(in namespace: String) -> [PeerAuthentication] {
        (peerAuthenticationsByNamespace[namespace] ?? []).map { peerAuthentications[$0] }
    }

    /// The DestinationRules whose host starts with `name` ("mysql", "mysql.db.svc…").
    func destinationRules(forServiceNamed name: String) -> [DestinationRule] {
        (destinationRulesByName[name] ?? []).map { destinationRules[$0] }
    }
}

extension Workload {
    /// The container ports a Service port's targetPort points at: by number, or by name.
    func containerPorts(matching port: ServicePort) -> [(Container, ContainerPort)] {
        let target = port.targetPort ?? String(port.port)
        var matches: [(Container, ContainerPort)] = []
        for container in containers {
            for containerPort in container.ports where String(containerPort.number) == target || containerPort.name == target {
                matches.append((container, containerPort))
            }
        }
        return matches
    }
}

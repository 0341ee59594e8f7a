import Diagnosis

/// What a port serves, from the strongest evidence to the weakest: --server-first, the
/// container's image (with its args, env and mounted config), the port's name, its number.
struct PortProtocols {
    let set: ManifestSet
    let catalog: ProtocolCatalog

    /// Names that describe a side channel, not the protocol: an exporter next to MySQL
    /// speaks HTTP.
    static let sideChannelWords = ["exporter", "metrics", "http", "grpc", "web", "admin", "ui", "monitor", "health", "prom", "status"]

    func named(_ name: String?) -> (ApplicationProtocol, ProtocolEvidence)? {
        guard let name, !Self.sideChannelWords.contains(where: { name.lowercased().contains($0) }) else { return nil }
        return catalog.byName(name)
    }

    /// What the container's image serves on `port`, as its args, env and mounted config
    /// files set it up; nil when the image is unknown or does not serve that port.
    func imageServes(_ workload: Workload, _ container: Container, port: Int) -> ServedProtocol? {
        let match = catalog.byImage(
            container.image, arguments: container.arguments, environment: container.environment,
            configFiles: set.configFiles(of: container, in: workload))
        return match?.ports[UInt16(clamping: port)].map { ServedProtocol(application: $0.application, evidence: $0.evidence) }
    }

    /// The strongest evidence first: a port given with --server-first, the image with
    /// one of its ports, a port name, a port number.
    func served(_ port: ServicePort, targets: [PortTarget]) -> ServedProtocol? {
        let numbers = [port.port] + (port.targetPort.flatMap { Int($0) }.map { [$0] } ?? []) + targets.map(\.port.number)
        for number in numbers {
            if let protocolEntry = catalog.additions[UInt16(clamping: number)] {
                return ServedProtocol(application: protocolEntry, evidence: .given(UInt16(clamping: number)))
            }
        }
        for target in targets {
            if let served = imageServes(target.workload, target.container, port: target.port.number) { return served }
        }
        for name in [port.name] + targets.map(\.port.name) {
            if let (application, evidence) = named(name) { return ServedProtocol(application: application, evidence: evidence) }
        }
        for number in numbers {
            if let (application, evidence) = catalog.byPort(UInt16(clamping: number)) {
                return ServedProtocol(application: application, evidence: evidence)
            }
        }
        return nil
    }

    /// A ServiceEntry port: given, named, or by number (no image behind it).
    func served(_ port: ServiceEntryPort) -> ServedProtocol? {
        let number = UInt16(clamping: port.number)
        return catalog.additions[number].map { ServedProtocol(application: $0, evidence: .given(number)) }
            ?? named(port.name).map { ServedProtocol(application: $0.0, evidence: $0.1) }
            ?? catalog.byPort(number).map { ServedProtocol(application: $0.0, evidence: $0.1) }
    }

    /// A container port no Service declares.
    func served(_ port: ContainerPort, of container: Container, in workload: Workload) -> ServedProtocol? {
        imageServes(workload, container, port: port.number)
            ?? named(port.name).map { ServedProtocol(application: $0.0, evidence: $0.1) }
            ?? catalog.byPort(UInt16(clamping: port.number)).map { ServedProtocol(application: $0.0, evidence: $0.1) }
    }
}

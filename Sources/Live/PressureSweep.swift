import Diagnosis
import KernelIO
import NetCore
import Pressure

/// `pressure --all-netns` and `--pod`: each namespace's report, fullest table first; a
/// namespace that could not be read is its row.
public struct PressureSweep: Sendable {
    public struct Row: Sendable {
        public var name: String
        public var pod: String?
        public var namespace: NetworkNamespace?
        public var result: Result<PressureReport, any Error>

        public init(name: String, pod: String?, namespace: NetworkNamespace?, result: Result<PressureReport, any Error>) {
            self.name = name
            self.pod = pod
            self.namespace = namespace
            self.result = result
        }

        var entries: Int { (try? result.get())?.count ?? -1 }
    }

    public static func run(_ namespaces: [NodeNamespace], request: PressureCollector.Request, parallel: Int) throws -> [Row] {
        let results = try inParallel(namespaces, width: parallel) { node in
            Result { try PressureCollector(namespace: node.namespace).collect(request) }
        }
        return zip(namespaces, results)
            .map { node, result in Row(name: node.displayName, pod: node.pod.label, namespace: node.namespace, result: result) }
            .sorted { left, right in left.entries != right.entries ? left.entries > right.entries : left.name < right.name }
    }

    /// Pod addresses across the node's namespaces, to name who fills a table, and what
    /// could not be read; nothing when ctdoctor cannot list or enter them (not root).
    public static func podAddresses() -> (byAddress: [IPAddress: String], notice: String?) {
        let listing: NodeInventory.Listing
        do {
            listing = try NodeInventory().namespaces()
        } catch {
            return ([:], "the node's namespaces could not be listed (\(error)): pods are not named in the lists")
        }
        guard listing.namespaces.count > 1 else { return ([:], nil) }
        let pods = listing.namespaces.filter { !$0.isHost }
        let results = (try? inParallel(pods, width: 2) { node -> (String, Set<IPAddress>)? in
            guard let addresses = try? PressureCollector(namespace: node.namespace).addresses() else { return nil }
            return (node.displayName, addresses)
        }) ?? []
        var byAddress: [IPAddress: String] = [:]
        var unreadable = 0
        for result in results {
            guard let (name, addresses) = result else { unreadable += 1; continue }
            for address in addresses where !address.isLoopback && !address.isLinkLocal { byAddress[address] = name }
        }
        let notice = unreadable > 0 ? "\(unreadable) of the node's \(pods.count) pod namespaces could not be entered: their pods are not named in the lists" : nil
        return (byAddress, notice)
    }
}

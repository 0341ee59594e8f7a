import YAML

/// One Kubernetes object from a manifest, with where it was written.
public struct ManifestObject: Sendable {
    public var file: String
    public var line: Int
    public var kind: String
    public var apiVersion: String
    public var name: String
    /// Empty when the manifest does not say (it then applies to whichever namespace it
    /// is applied in; objects without one are matched with each other).
    public var namespace: String
    let root: YAMLNode

    /// "Service/mysql" or "Service/db/mysql" with a namespace.
    public var reference: String { namespace.isEmpty ? "\(kind)/\(name)" : "\(kind)/\(namespace)/\(name)" }
}

/// Input that is not YAML, or not Kubernetes objects: one line, with where.
public struct ManifestError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public var description: String {
        line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
    }
}

/// Parses manifest text: multi-document YAML, `kind: List`, anchors and merge keys, JSON
/// (which libyaml reads as YAML). Pure.
public enum ManifestParser {
    /// More objects than this in one input is refused: a `kind: List` whose items are
    /// aliases can otherwise expand a small file into millions of objects.
    public static let objectLimit = 100_000

    /// How many nodes the documents may hold once aliases are expanded, per byte of
    /// input (plus a floor for small files). Written-out YAML needs at least two bytes a
    /// node, so honest manifests stay far below; a billion-laughs file, whose aliases
    /// multiply at every level, meets the cap after work proportional to its size.
    public static let expandedNodesPerByte = 16
    public static let expandedNodesFloor = 100_000

    public static func parse(_ text: String, file: String) throws(ManifestError) -> [ManifestObject] {
        let bytes = Array(text.utf8)
        let documents: [YAMLNode]
        do {
            documents = try YAMLReader.documents(bytes, expandedNodeLimit: bytes.count * expandedNodesPerByte + expandedNodesFloor)
        } catch {
            throw describe(error, file: file)
        }
        var objects: [ManifestObject] = []
        for document in documents { try collect(document, file: file, into: &objects) }
        return objects
    }

    static func collect(_ node: YAMLNode, file: String, into objects: inout [ManifestObject]) throws(ManifestError) {
        switch node.kind {
        case .scalar where ["", "null", "~"].contains(node.scalar):
            return  // an empty document, e.g. a trailing "---"
        case .mapping:
            break
        default:
            throw ManifestError(file: file, line: node.line, column: node.column, message: "a document must be a mapping (a Kubernetes object), not a \(node.kindName)")
        }
        let kind = node["kind"]?.string ?? ""
        if kind == "List" || kind.hasSuffix("List") && node["items"] != nil {
            for item in node["items"]?.items ?? [] { try collect(item, file: file, into: &objects) }
            return
        }
        guard !kind.isEmpty else {
            throw ManifestError(file: file, line: node.line, column: node.column, message: "object without a kind")
        }
        guard objects.count < objectLimit else {
            throw ManifestError(file: file, line: node.line, column: node.column, message: "more than \(objectLimit) objects (an alias-expanded list?)")
        }
        let metadata = node["metadata"]
        objects.append(ManifestObject(
            file: file, line: node.line, kind: kind, apiVersion: node["apiVersion"]?.string ?? "",
            name: metadata?["name"]?.string ?? metadata?["generateName"]?.string ?? "(unnamed)",
            namespace: metadata?["namespace"]?.string ?? "", root: node))
    }

    /// One line with where; the expansion cap says what it is and why it is there.
    static func describe(_ error: YAMLError, file: String) -> ManifestError {
        let mark = error.mark ?? YAMLMark(line: 0, column: 0)
        let message =
            switch error {
            case .expansion(let limit, _): "its aliases expand to more than \(limit) nodes (\(expandedNodesPerByte) per byte of input): a YAML alias bomb?"
            default: error.description
            }
        return ManifestError(file: file, line: mark.line, column: mark.column, message: message)
    }
}

/// What lint reads from nodes beyond the YAML module's own: scalars as numbers, string
/// maps (labels, annotations, selectors), and keys with their lines.
extension YAMLNode {
    var string: String? { scalar }

    var int: Int? { scalar.flatMap { Int($0) } }

    var kindName: String { kind.name }

    /// A mapping of strings; of duplicate keys the last wins.
    var stringMap: [String: String] {
        var map: [String: String] = [:]
        for (key, value) in entries {
            if let key = key.scalar, let value = value.scalar { map[key] = value }
        }
        return map
    }

    /// A mapping's entries with the line of each key.
    var pairs: [(key: String, line: Int, value: YAMLNode)] {
        entries.compactMap { key, value in key.scalar.map { ($0, key.line, value) } }
    }
}

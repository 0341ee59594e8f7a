import Yams

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

/// Parses manifest text: multi-document YAML, `kind: List`, JSON (a YAML subset). Pure.
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
        var objects: [ManifestObject] = []
        var budget = ExpansionBudget(remaining: text.utf8.count * expandedNodesPerByte + expandedNodesFloor)
        let documents: YamlSequence<Node>
        do {
            // The basic resolver: lint reads scalars as text, and the default one runs a
            // regular expression over every scalar to tag it (most of lint's time).
            documents = try Yams.compose_all(yaml: text, .basic)
        } catch {
            throw describe(error, file: file)
        }
        var iterator = documents.makeIterator()
        while true {
            let document: Node? = iterator.next()
            if let error = iterator.error { throw describe(error, file: file) }
            guard let document else { break }
            try budget.spend(on: document, file: file)
            try collect(YAMLNode(document), file: file, into: &objects)
        }
        return objects
    }

    static func collect(_ node: YAMLNode, file: String, into objects: inout [ManifestObject]) throws(ManifestError) {
        switch node.node {
        case .scalar(let scalar) where scalar.string.isEmpty || scalar.string == "null" || scalar.string == "~":
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

    /// Counts a document's nodes as the linter would walk them (aliases expanded),
    /// stopping as soon as the budget is spent.
    struct ExpansionBudget {
        var remaining: Int
        let initial: Int

        init(remaining: Int) {
            self.remaining = remaining
            initial = remaining
        }

        mutating func spend(on document: Node, file: String) throws(ManifestError) {
            var stack = [document]
            while let node = stack.popLast() {
                remaining -= 1
                guard remaining >= 0 else {
                    throw ManifestError(
                        file: file, line: document.mark?.line ?? 0, column: document.mark?.column ?? 0,
                        message: "its aliases expand to more than \(initial) nodes (\(expandedNodesPerByte) per byte of input): a YAML alias bomb?")
                }
                switch node {
                case .scalar, .alias: continue
                case .mapping(let mapping):
                    for (key, value) in mapping {
                        stack.append(key)
                        stack.append(value)
                    }
                case .sequence(let sequence): stack.append(contentsOf: sequence)
                }
            }
        }
    }

    /// Yams errors are several lines with a snippet; ctdoctor's are one.
    static func describe(_ error: any Error, file: String) -> ManifestError {
        guard let yaml = error as? YamlError else {
            return ManifestError(file: file, line: 0, column: 0, message: "not YAML: \(error)")
        }
        switch yaml {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let where_ = context.map { " (\($0.text))" } ?? ""
            return ManifestError(file: file, line: mark.line, column: mark.column, message: "invalid YAML: \(problem)\(where_)")
        case .reader(let problem, _, _, _):
            return ManifestError(file: file, line: 0, column: 0, message: "invalid YAML input: \(problem)")
        default:
            let text = "\(yaml)".split(separator: "\n").first.map(String.init) ?? "invalid YAML"
            return ManifestError(file: file, line: 0, column: 0, message: text)
        }
    }
}

/// Read access to a Yams node: keys, scalars and the line each came from.
struct YAMLNode: @unchecked Sendable {
    let node: Node

    init(_ node: Node) { self.node = node }

    var line: Int { node.mark?.line ?? 0 }
    var column: Int { node.mark?.column ?? 0 }

    var kindName: String {
        switch node {
        case .scalar: "scalar"
        case .mapping: "mapping"
        case .sequence: "sequence"
        case .alias: "alias"
        }
    }

    subscript(_ key: String) -> YAMLNode? {
        guard case .mapping(let mapping) = node else { return nil }
        for (candidate, value) in mapping where candidate.scalar?.string == key { return YAMLNode(value) }
        return nil
    }

    var string: String? {
        guard case .scalar(let scalar) = node else { return nil }
        return scalar.string
    }

    var int: Int? { string.flatMap { Int($0) } }

    var items: [YAMLNode] {
        guard case .sequence(let sequence) = node else { return [] }
        return sequence.map(YAMLNode.init)
    }

    /// A mapping of strings (labels, annotations, selectors).
    var stringMap: [String: String] {
        guard case .mapping(let mapping) = node else { return [:] }
        var map: [String: String] = [:]
        for (key, value) in mapping {
            if let key = key.scalar?.string, let value = value.scalar?.string { map[key] = value }
        }
        return map
    }

    /// A mapping's entries with the line of each key.
    var pairs: [(key: String, line: Int, value: YAMLNode)] {
        guard case .mapping(let mapping) = node else { return [] }
        return mapping.compactMap { key, value -> (String, Int, YAMLNode)? in
            guard let name = key.scalar?.string else { return nil }
            return (name, key.mark?.line ?? 0, YAMLNode(value))
        }
    }
}

extension YamlError.Context {
    var text: String { "\(self)".split(separator: "\n").first.map(String.init) ?? "" }
}

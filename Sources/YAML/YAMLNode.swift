/// Every node of one input in one flat store: an alias is an edge to the node its anchor
/// names, never a copy, so a document's size in memory is its size in bytes however far
/// its aliases would expand.
final class YAMLTree: Sendable {
    struct Node {
        var kind: YAMLNode.Kind
        /// A plain (unquoted) scalar: only a plain `<<` is a merge key.
        var plain: Bool
        /// A mapping with a merge key, so lookups know when to look further.
        var merges: Bool
        var line: UInt32
        var column: UInt32
        /// A scalar's bytes in `text`, or a collection's children in `links`.
        var start: UInt32
        var count: UInt32

        /// A scalar's bytes in the stream's text.
        func bytes(in text: [UInt8]) -> ArraySlice<UInt8> { text[Int(start)..<Int(start) + Int(count)] }

        /// A plain `<<` scalar: YAML 1.1's merge key (a quoted `'<<'` is an ordinary key).
        func isMergeKey(in text: [UInt8]) -> Bool { kind == .scalar && plain && count == 2 && bytes(in: text).elementsEqual("<<".utf8) }
    }

    let nodes: [Node]
    /// Children of collections: a sequence's items, a mapping's keys and values in turn.
    let links: [UInt32]
    /// Every scalar's bytes, one after the other.
    let text: [UInt8]

    init(nodes: [Node], links: [UInt32], text: [UInt8]) {
        self.nodes = nodes
        self.links = links
        self.text = text
    }

    func scalarBytes(_ node: Node) -> ArraySlice<UInt8> { node.bytes(in: text) }

    func isMergeKey(_ index: UInt32) -> Bool { nodes[Int(index)].isMergeKey(in: text) }

    /// The mappings a merge key's value names: one mapping, or a sequence of them.
    func mergeSources(_ value: UInt32) -> [UInt32] {
        let node = nodes[Int(value)]
        switch node.kind {
        case .mapping: return [value]
        case .sequence: return children(node).filter { nodes[Int($0)].kind == .mapping }
        case .scalar: return []
        }
    }

    func children(_ node: Node) -> ArraySlice<UInt32> { links[Int(node.start)..<Int(node.start) + Int(node.count)] }

    /// Visits a mapping's pairs in YAML 1.1's merge order (`<<: *defaults`): its own
    /// pairs first, then each merged mapping in the order given, each with its own merges
    /// after its pairs. Each mapping is visited once, so shared anchors cost nothing
    /// twice. `body` gets whether the pair came through a merge, and returns true to stop.
    func visitPairs(of mapping: UInt32, _ body: (_ key: UInt32, _ value: UInt32, _ merged: Bool) -> Bool) {
        var pending: [UInt32] = [mapping]
        var visited: Set<UInt32> = []
        while let current = pending.popLast() {
            let node = nodes[Int(current)]
            if node.merges { guard visited.insert(current).inserted else { continue } }
            var sources: [UInt32] = []
            let pairs = children(node)
            for position in stride(from: pairs.startIndex, to: pairs.endIndex, by: 2) {
                let key = pairs[position], value = pairs[position + 1]
                if node.merges && isMergeKey(key) {
                    sources += mergeSources(value)
                } else if body(key, value, current != mapping) {
                    return
                }
            }
            pending += sources.reversed()
        }
    }

    /// The value of a scalar key; the first place that has it wins.
    func lookup(_ key: some Collection<UInt8>, in mapping: UInt32) -> UInt32? {
        var found: UInt32?
        visitPairs(of: mapping) { candidate, value, _ in
            let keyNode = nodes[Int(candidate)]
            guard keyNode.kind == .scalar && keyNode.count == key.count && scalarBytes(keyNode).elementsEqual(key) else { return false }
            found = value
            return true
        }
        return found
    }

    /// A mapping's pairs in order, then the merged pairs whose keys no earlier place has.
    func entries(of mapping: UInt32) -> [(key: UInt32, value: UInt32)] {
        var result: [(key: UInt32, value: UInt32)] = []
        var seenKeys: Set<ArraySlice<UInt8>> = []
        let merges = nodes[Int(mapping)].merges
        visitPairs(of: mapping) { key, value, merged in
            let keyNode = nodes[Int(key)]
            if merges, keyNode.kind == .scalar {
                let text = scalarBytes(keyNode)
                if merged && seenKeys.contains(text) { return false }
                seenKeys.insert(text)
            }
            result.append((key, value))
            return false
        }
        return result
    }
}

/// A node of a parsed YAML document: a scalar, a sequence or a mapping, with where it
/// began. A view into the stream's shared store, cheap to copy.
public struct YAMLNode: Sendable {
    public enum Kind: UInt8, Sendable {
        case scalar, sequence, mapping

        public var name: String {
            switch self {
            case .scalar: "scalar"
            case .sequence: "sequence"
            case .mapping: "mapping"
            }
        }
    }

    let tree: YAMLTree
    let index: UInt32

    init(_ tree: YAMLTree, _ index: UInt32) {
        self.tree = tree
        self.index = index
    }

    private var node: YAMLTree.Node { tree.nodes[Int(index)] }

    public var kind: Kind { node.kind }
    /// Where the node began; an alias's node is the anchored one, and begins there.
    public var mark: YAMLMark { YAMLMark(line: Int(node.line), column: Int(node.column)) }
    public var line: Int { Int(node.line) }
    public var column: Int { Int(node.column) }

    /// A scalar's text as written (no tag resolution: `080`, `yes` and `~` stay text).
    public var scalar: String? {
        let node = node
        guard node.kind == .scalar else { return nil }
        return String(decoding: tree.scalarBytes(node), as: UTF8.self)
    }

    /// Whether the scalar is plain (unquoted, not a block scalar).
    public var isPlain: Bool { node.kind == .scalar && node.plain }

    /// A sequence's items; empty for anything else.
    public var items: [YAMLNode] {
        let node = node
        guard node.kind == .sequence else { return [] }
        return tree.children(node).map { YAMLNode(tree, $0) }
    }

    /// A mapping's value for a scalar key, merge keys followed; nil for other kinds.
    public subscript(key: String) -> YAMLNode? {
        guard node.kind == .mapping else { return nil }
        return tree.lookup(key.utf8, in: index).map { YAMLNode(tree, $0) }
    }

    /// A mapping's pairs as written, then those merge keys bring in; empty for other kinds.
    public var entries: [(key: YAMLNode, value: YAMLNode)] {
        guard node.kind == .mapping else { return [] }
        return tree.entries(of: index).map { (YAMLNode(tree, $0.key), YAMLNode(tree, $0.value)) }
    }
}

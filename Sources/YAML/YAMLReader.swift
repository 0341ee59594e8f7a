/// Reads YAML (and JSON, which libyaml reads as YAML) into trees. Pure: bytes in, nodes out.
///
/// Written on libyaml's event API rather than through Yams, the Swift library that wraps
/// the same parser, because Yams imports all of Foundation and, with it, ICU's 30 MB of
/// data: the one reason ctdoctor's static binary was four times the size it needs to be
/// in a debug image. What lint needs from YAML is small (documents, scalars as text, line
/// numbers, anchors, merge keys), and composing the tree here lets aliases stay edges
/// and their expansion be counted before anything walks it.
public enum YAMLReader {
    /// Every document of the stream, in order (an empty document is an empty plain scalar).
    ///
    /// - Parameter expandedNodeLimit: the most nodes the documents may hold together,
    ///   counted with every alias expanded: the work a walk of them could cost. Checked as
    ///   each node completes, so a billion-laughs document is refused after work
    ///   proportional to its size, never to its expansion.
    /// - Throws: `YAMLError`, with the place of the problem.
    public static func documents(_ bytes: [UInt8], expandedNodeLimit: Int) throws(YAMLError) -> [YAMLNode] {
        var composer = Composer(expandedNodeLimit: expandedNodeLimit)
        try LibYAMLParser.forEachEvent(of: bytes) { event throws(YAMLError) in try composer.take(event) }
        let tree = YAMLTree(nodes: composer.nodes, links: composer.links, text: composer.text)
        return composer.roots.map { YAMLNode(tree, $0) }
    }

    /// Builds the store from events: collections open on a stack, their children gathered
    /// on one shared stack and copied to `links` when the collection ends.
    struct Composer {
        var nodes: [YAMLTree.Node] = []
        var links: [UInt32] = []
        var text: [UInt8] = []
        var roots: [UInt32] = []

        /// Expanded size of each node (saturated just past the limit): an alias adds its
        /// anchor's size without being walked.
        private var sizes: [Int] = []
        /// Anchors of completed nodes; an alias to an unfinished one (`&a [*a]`) is undefined.
        private var anchors: [String: UInt32] = [:]
        private var open: [Frame] = []
        private var pendingChildren: [UInt32] = []
        /// What the documents before this one spent, and where this one began.
        private var spent = 0
        private var documentMark = YAMLMark(line: 0, column: 0)
        private let limit: Int

        struct Frame {
            var kind: YAMLNode.Kind
            var anchor: String?
            var mark: YAMLMark
            var firstChild: Int
            var size = 1
            var merges = false
        }

        init(expandedNodeLimit: Int) { limit = min(max(0, expandedNodeLimit), Int.max / 4) }

        /// Takes one event; false once the stream has ended.
        mutating func take(_ event: YAMLEvent) throws(YAMLError) -> Bool {
            switch event {
            case .streamStart, .documentStart:
                break
            case .documentEnd:
                if let root = roots.last { spent = min(spent + sizes[Int(root)], limit + 1) }
            case .streamEnd:
                return false
            case .alias(let anchor, let mark):
                guard let target = anchors[anchor] else { throw .undefinedAlias(anchor: anchor, mark: mark) }
                noteStart(mark)
                try complete(target)
            case .scalar(let value, let anchor, let plain, let mark):
                noteStart(mark)
                guard let start = UInt32(exactly: text.count), let count = UInt32(exactly: value.count),
                    UInt32(exactly: text.count + value.count) != nil
                else { throw .tooLarge(mark: mark) }
                text.append(contentsOf: value)
                let index = try add(YAMLTree.Node(kind: .scalar, plain: plain, merges: false, line: Self.clamped(mark.line), column: Self.clamped(mark.column), start: start, count: count), size: 1, mark: mark)
                if let anchor { anchors[anchor] = index }
                try complete(index)
            case .sequenceStart(let anchor, let mark):
                noteStart(mark)
                open.append(Frame(kind: .sequence, anchor: anchor, mark: mark, firstChild: pendingChildren.count))
            case .mappingStart(let anchor, let mark):
                noteStart(mark)
                open.append(Frame(kind: .mapping, anchor: anchor, mark: mark, firstChild: pendingChildren.count))
            case .sequenceEnd, .mappingEnd:
                guard let frame = open.popLast() else { break }
                let children = pendingChildren[frame.firstChild...]
                if frame.kind == .mapping { try refuseDuplicateKeys(children) }
                guard let start = UInt32(exactly: links.count), let count = UInt32(exactly: children.count),
                    UInt32(exactly: links.count + children.count) != nil
                else { throw .tooLarge(mark: frame.mark) }
                links += children
                pendingChildren.removeSubrange(frame.firstChild...)
                let node = YAMLTree.Node(
                    kind: frame.kind, plain: false, merges: frame.merges, line: Self.clamped(frame.mark.line),
                    column: Self.clamped(frame.mark.column), start: start, count: count)
                let index = try add(node, size: frame.size, mark: frame.mark)
                if let anchor = frame.anchor { anchors[anchor] = index }
                try complete(index)
            }
            return true
        }

        /// A mapping that says the same key twice is refused: which of its values would
        /// lint judge, and which would the cluster keep?
        private func refuseDuplicateKeys(_ pairs: ArraySlice<UInt32>) throws(YAMLError) {
            var first: [ArraySlice<UInt8>: UInt32] = [:]
            for position in stride(from: pairs.startIndex, to: pairs.endIndex, by: 2) {
                let key = nodes[Int(pairs[position])]
                // Merge keys are not keys: `<<` may merge twice, and `'<<'` is another key.
                guard key.kind == .scalar, !isMergeKey(pairs[position]) else { continue }
                let text = key.bytes(in: self.text)
                if let earlier = first[text] {
                    let earlierNode = nodes[Int(earlier)]
                    throw .duplicateKey(
                        String(decoding: text, as: UTF8.self), first: YAMLMark(line: Int(earlierNode.line), column: Int(earlierNode.column)),
                        mark: YAMLMark(line: Int(key.line), column: Int(key.column)))
                }
                first[text] = pairs[position]
            }
        }

        /// The first node of a document marks where its expansion error points.
        private mutating func noteStart(_ mark: YAMLMark) {
            if open.isEmpty { documentMark = mark }
        }

        private mutating func add(_ node: YAMLTree.Node, size: Int, mark: YAMLMark) throws(YAMLError) -> UInt32 {
            guard let index = UInt32(exactly: nodes.count), index < .max else { throw .tooLarge(mark: mark) }
            nodes.append(node)
            sizes.append(size)
            return index
        }

        /// A node is complete: it becomes a child of the open collection, or a document's root.
        private mutating func complete(_ index: UInt32) throws(YAMLError) {
            let size = sizes[Int(index)]
            guard let parent = open.indices.last else {
                guard spent + size <= limit else { throw .expansion(limit: limit, mark: documentMark) }
                roots.append(index)
                return
            }
            if open[parent].kind == .mapping && (pendingChildren.count - open[parent].firstChild).isMultiple(of: 2) && isMergeKey(index) {
                open[parent].merges = true
            }
            open[parent].size = min(open[parent].size + size, limit + 1)
            pendingChildren.append(index)
            // A collection is at least as large as what it holds so far: refuse as soon
            // as any open one passes what is left.
            guard spent + open[parent].size <= limit else { throw .expansion(limit: limit, mark: documentMark) }
        }

        private func isMergeKey(_ index: UInt32) -> Bool { nodes[Int(index)].isMergeKey(in: text) }

        private static func clamped(_ value: Int) -> UInt32 { UInt32(clamping: value) }
    }
}

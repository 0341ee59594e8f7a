import Foundation
import Testing
@testable import YAML
import Yams

/// The YAML module against Yams, the library it replaced, on the manifest corpus and on
/// the constructs lint relies on; and against YAML 1.1's own examples where Yams, which
/// composes without merging, cannot say.
@Suite("YAML reader")
struct YAMLReaderTests {
    static let corpus = [
        "anchors.yaml", "client-first.yaml", "close-wait.yaml", "configmap-ports.yaml", "helm-rendered.yaml", "istio-mysql.yaml",
        "istio-smtp.yaml", "linkerd.yaml", "list.json", "merge-keys.yaml", "not-an-object.yaml", "peerauthentication.yaml",
        "serviceentry.yaml", "workload-kinds.yaml",
    ]

    /// Constructs people write, each small: styles, block scalars, flow in block, comments,
    /// documents without `---`, explicit `...`, tags, anchors on every kind, CRLF. (A
    /// byte-order mark is the one place they differ: Yams counts it as a column.)
    static let constructs: [String] = [
        "a: 1\nb: [x, 'y', \"z\"]\nc: {d: e, f: [1, 2]}\n",
        "- a\n- - b\n  - c\n- d: e\n  f: g\n",
        "text: |\n  line one\n  line two\nfolded: >-\n  folded\n  text\nkeep: |+\n  kept\n\n",
        "# comment\nkey: value # trailing\n---\nsecond: doc\n...\n---\nthird: 3\n",
        "plain: it's fine\nquoted: \"a\\tb\\u00e9\"\nsingle: 'it''s'\nmulti: this\n  continues\n",
        "tagged: !!str 080\nint: !!int 80\ncustom: !thing {a: 1}\nnull: ~\nempty:\n",
        "base: &b {port: 3306, name: mysql}\nuse: *b\nlist: &l [1, 2]\nagain: *l\nscalar: &s text\nref: *s\n",
        "a: 1\r\nb:\r\n  - c\r\n",
        "? complex\n: value\n? [a, b]\n: sequence key\n",
        "",
        "# only a comment\n",
        "---\n",
        "key: value\n---\n",
        "{\"kind\": \"List\", \"items\": [{\"a\": 1}, {\"b\": [true, null, 1.5e3]}]}",
    ]

    @Test(arguments: corpus)
    func readsTheManifestCorpusAsYamsDid(name: String) throws {
        let text = try Fixture.text("manifests/\(name)")
        try expectSameTrees(text, name)
    }

    @Test(arguments: constructs.indices)
    func readsEachConstructAsYamsDid(index: Int) throws {
        try expectSameTrees(Self.constructs[index], "construct \(index)")
    }

    func expectSameTrees(_ text: String, _ name: String) throws {
        let ours = try YAMLReader.documents(Array(text.utf8), expandedNodeLimit: 1 << 20)
        let theirs = Array(try Yams.compose_all(yaml: text, .basic))
        try #require(ours.count == theirs.count, "\(name): \(ours.count) documents, Yams \(theirs.count)")
        for (index, (mine, reference)) in zip(ours, theirs).enumerated() {
            if let difference = Self.difference(mine, reference, at: "\(name) document \(index)") {
                Issue.record("\(difference)")
            }
        }
    }

    /// The first place the trees differ, or nil: kind, scalar text, plain style, mark,
    /// children in order (aliases expanded on both sides; merge keys as written).
    static func difference(_ mine: YAMLNode, _ reference: Yams.Node, at path: String) -> String? {
        let referenceMark = reference.mark.map { YAMLMark(line: $0.line, column: $0.column) }
        if mine.mark != referenceMark { return "\(path): mark \(mine.mark), Yams \(String(describing: referenceMark))" }
        let stored = mine.tree.nodes[Int(mine.index)]
        let children: [YAMLNode] = stored.kind == .scalar ? [] : mine.tree.children(stored).map { YAMLNode(mine.tree, $0) }
        switch reference {
        case .scalar(let scalar):
            guard mine.kind == .scalar, mine.scalar == scalar.string else { return "\(path): \(mine.kind) \(mine.scalar ?? "-"), Yams scalar \(scalar.string)" }
            if mine.isPlain != (scalar.style == .plain) { return "\(path): plain \(mine.isPlain), Yams style \(scalar.style)" }
            return nil
        case .sequence(let sequence):
            guard mine.kind == .sequence, children.count == sequence.count else { return "\(path): \(mine.kind) of \(children.count), Yams sequence of \(sequence.count)" }
            for (index, (item, referenceItem)) in zip(children, sequence).enumerated() {
                if let difference = difference(item, referenceItem, at: "\(path)[\(index)]") { return difference }
            }
            return nil
        case .mapping(let mapping):
            let pairs = Array(mapping)
            guard mine.kind == .mapping, children.count == 2 * pairs.count else { return "\(path): \(mine.kind) of \(children.count / 2), Yams mapping of \(pairs.count)" }
            for (index, pair) in pairs.enumerated() {
                let key = "\(path).\(pair.key.string ?? "<\(index)>")"
                if let difference = difference(children[2 * index], pair.key, at: key + " (key)") ?? difference(children[2 * index + 1], pair.value, at: key) {
                    return difference
                }
            }
            return nil
        case .alias:
            return "\(path): Yams left an alias unresolved"
        }
    }

    /// YAML 1.1's merge type, its own example (yaml.org/type/merge.html): four ways to
    /// write one map, each read the same.
    @Test func mergeKeysFollowYAMLsOwnExample() throws {
        let text = """
            - &CENTER { x: 1, y: 2 }
            - &LEFT { x: 0, y: 2 }
            - &BIG { r: 10 }
            - &SMALL { r: 1 }
            - # Explicit keys
              x: 1
              y: 2
              r: 10
              label: center/big
            - # Merge one map
              << : *CENTER
              r: 10
              label: center/big
            - # Merge multiple maps
              << : [ *CENTER, *BIG ]
              label: center/big
            - # Override
              << : [ *BIG, *LEFT, *SMALL ]
              x: 1
              label: center/big

            """
        let root = try #require(try YAMLReader.documents(Array(text.utf8), expandedNodeLimit: 10_000).first)
        let maps = Array(root.items.dropFirst(4))
        try #require(maps.count == 4)
        for (index, map) in maps.enumerated() {
            for (key, value) in [("x", "1"), ("y", "2"), ("r", "10"), ("label", "center/big")] {
                #expect(map[key]?.scalar == value, "map \(index): \(key)")
            }
            #expect(map["<<"] == nil, "a merge key is not a key")
            let entries = map.entries.compactMap { entry in entry.key.scalar.map { ($0, entry.value.scalar ?? "") } }
            #expect(Dictionary(entries, uniquingKeysWith: { first, _ in first }) == ["x": "1", "y": "2", "r": "10", "label": "center/big"], "map \(index)")
            #expect(entries.count == 4, "map \(index): each key once: \(entries)")
        }
        // A quoted "<<" is an ordinary key, and merges reach through merged maps.
        let nested = try #require(try YAMLReader.documents(Array("a: &a {p: 1}\nb: &b {<<: *a, q: 2}\nc: {<<: *b, '<<': plain}\n".utf8), expandedNodeLimit: 1_000).first)
        #expect(nested["c"]?["p"]?.scalar == "1")
        #expect(nested["c"]?["q"]?.scalar == "2")
        #expect(nested["c"]?["<<"]?.scalar == "plain")
    }

    @Test func marksCountFromOneAsEditorsDo() throws {
        let root = try #require(try YAMLReader.documents(Array("kind: Service\nspec:\n  ports:\n    - port: 25\n".utf8), expandedNodeLimit: 1_000).first)
        #expect(root.mark == YAMLMark(line: 1, column: 1))
        let port = try #require(root["spec"]?["ports"]?.items.first)
        #expect(port.mark == YAMLMark(line: 4, column: 7))
        #expect(port["port"]?.mark == YAMLMark(line: 4, column: 13))
        // A byte-order mark is not a column an editor shows.
        let marked = try #require(try YAMLReader.documents(Array("\u{FEFF}kind: Pod\n".utf8), expandedNodeLimit: 1_000).first)
        #expect(marked.mark == YAMLMark(line: 1, column: 1))
        #expect(marked["kind"]?.scalar == "Pod")
    }

    @Test func refusalsSayWhatAndWhere() throws {
        func error(_ text: String, limit: Int = 1_000) -> YAMLError? {
            do {
                _ = try YAMLReader.documents(Array(text.utf8), expandedNodeLimit: limit)
                return nil
            } catch { return error }
        }
        let badIndentation = try #require(error(try Fixture.text("manifests/bad-indentation.yaml")))
        #expect("\(badIndentation)" == "invalid YAML: did not find expected key (while parsing a block mapping in line 1, column 1)")
        #expect(badIndentation.mark == YAMLMark(line: 5, column: 2))
        #expect(error("a: *nowhere\n") == .undefinedAlias(anchor: "nowhere", mark: YAMLMark(line: 1, column: 4)))
        // An anchor is defined once its node is complete: no cycles.
        #expect(error("a: &self [*self]\n") == .undefinedAlias(anchor: "self", mark: YAMLMark(line: 1, column: 11)))
        #expect(error("a: 1\nb:\n  c: 2\n  c: 3\n") == .duplicateKey("c", first: YAMLMark(line: 3, column: 3), mark: YAMLMark(line: 4, column: 3)))
        if case .input = error("a: \u{0}\n") {} else { Issue.record("a NUL is refused as input: \(String(describing: error("a: \u{0}\n")))") }
        // The mapping, its key, the sequence and its three items: six nodes.
        #expect(error("a: [1, 2, 3]\n", limit: 5) == .expansion(limit: 5, mark: YAMLMark(line: 1, column: 1)))
        #expect(error("a: [1, 2, 3]\n", limit: 6) == nil)
    }

    /// Nine aliases a level, nine levels (387,420,489 nodes expanded): refused by count,
    /// since an alias adds its anchor's counted size without being walked; and the seven
    /// levels that fit (6,053,451 nodes expanded) are read with one node per written node.
    @Test func anAliasBombIsCountedNotExpanded() throws {
        var text = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...9 { text += "l\(level): &l\(level) [" + Array(repeating: "*l\(level - 1)", count: 9).joined(separator: ", ") + "]\n" }
        #expect(throws: YAMLError.expansion(limit: 100_000_000, mark: YAMLMark(line: 1, column: 1))) {
            try YAMLReader.documents(Array(text.utf8), expandedNodeLimit: 100_000_000)
        }
        let sevenLevels = text.split(separator: "\n").prefix(7).joined(separator: "\n")
        let root = try #require(try YAMLReader.documents(Array(sevenLevels.utf8), expandedNodeLimit: 100_000_000).first)
        #expect(root.tree.nodes.count == 1 + 7 + 7 + 9, "the mapping, 7 keys, 7 sequences, 9 lol: \(root.tree.nodes.count)")
        #expect(root["l6"]?.items.first?.items.first?.items.count == 9)
    }

    /// Nesting is composed on the heap, and libyaml bounds it (1,000 levels) before a
    /// hostile file could make any walk of it deep.
    @Test func deepNestingIsBoundedAndNeedsNoStack() throws {
        func nested(_ depth: Int) -> [UInt8] { Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8) }
        var node = try #require(try YAMLReader.documents(nested(900), expandedNodeLimit: 1 << 20).first)
        var levels = 1
        while let inner = node.items.first {
            node = inner
            levels += 1
        }
        #expect(levels == 900)
        do {
            _ = try YAMLReader.documents(nested(200_000), expandedNodeLimit: 1 << 20)
            Issue.record("200,000 levels were read")
        } catch {
            #expect("\(error)".contains("nesting level"), "\(error)")
        }
    }
}

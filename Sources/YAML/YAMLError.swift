/// Where a node or a problem is in the input: 1-based line and column, as editors count.
public struct YAMLMark: Sendable, Equatable {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// Input that is not YAML, or YAML that would not fit the caller's bounds.
public enum YAMLError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What libyaml's scanner or parser was parsing when it failed, and where that began.
    public struct Context: Sendable, Equatable {
        public var text: String
        public var mark: YAMLMark
    }

    /// libyaml's scanner or parser refused the text (`problem` as libyaml says it).
    case syntax(problem: String, context: Context?, mark: YAMLMark)
    /// The bytes are not a character stream libyaml reads (invalid UTF-8, a NUL…).
    case input(problem: String, offset: Int)
    /// An alias names no anchor defined (and complete) before it.
    case undefinedAlias(anchor: String, mark: YAMLMark)
    /// A mapping names the same scalar key twice.
    case duplicateKey(String, first: YAMLMark, mark: YAMLMark)
    /// A document's nodes, counted with every alias expanded, pass the caller's limit.
    case expansion(limit: Int, mark: YAMLMark)
    /// More nodes than the tree's 32-bit indices address.
    case tooLarge(mark: YAMLMark)
    case outOfMemory

    /// Where the problem is, when the input says (nil for whole-input problems).
    public var mark: YAMLMark? {
        switch self {
        case .syntax(_, _, let mark), .undefinedAlias(_, let mark), .duplicateKey(_, _, let mark), .expansion(_, let mark),
            .tooLarge(let mark):
            mark
        case .input, .outOfMemory: nil
        }
    }

    /// One line, without the place (callers prefix file:line:column).
    public var description: String {
        switch self {
        case .syntax(let problem, let context, _):
            let during = context.map { " (\($0.text) in line \($0.mark.line), column \($0.mark.column))" } ?? ""
            return "invalid YAML: \(problem)\(during)"
        case .input(let problem, let offset): return "invalid YAML input: \(problem) at byte \(offset)"
        case .undefinedAlias(let anchor, _): return "invalid YAML: found undefined alias *\(anchor)"
        case .duplicateKey(let key, let first, _): return "duplicate key '\(key)' in a mapping (first at line \(first.line))"
        case .expansion(let limit, _): return "its aliases expand to more than \(limit) nodes"
        case .tooLarge: return "more YAML nodes than ctdoctor addresses (4,294,967,295)"
        case .outOfMemory: return "out of memory while parsing YAML"
        }
    }
}

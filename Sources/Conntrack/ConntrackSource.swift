/// Where a listing's entries came from.
public enum ConntrackSource: Sendable, Equatable {
    /// A ctnetlink dump: every field, including status bits and ids.
    case netlink
    /// /proc/net/nf_conntrack, read because netlink refused; `reason` says why. The text
    /// lacks ids and the full status word (see ConntrackTextParser).
    case procFile(reason: String)

    public var name: String {
        switch self {
        case .netlink: "netlink"
        case .procFile: "proc"
        }
    }
}

/// What a read did besides delivering entries.
public struct ConntrackReadReport: Sendable, Equatable {
    public var source: ConntrackSource
    /// Entries that matched the filter (delivered, or counted).
    public var matched: Int
    /// Dump passes run: more than one when the kernel said the table changed under the
    /// dump (NLM_F_DUMP_INTR) or the socket overran (ENOBUFS).
    public var passes: Int
    /// False when the last pass was still interrupted: the listing may miss entries
    /// that were being created or deleted. Never silent: renderers print it.
    public var consistent: Bool
    /// True when an interrupted pass was not retried because the passes had listed more
    /// entries than a retry may remember to skip (a long table, not a restless one).
    public var stoppedRetrying: Bool

    public init(source: ConntrackSource, matched: Int, passes: Int, consistent: Bool, stoppedRetrying: Bool = false) {
        self.source = source
        self.matched = matched
        self.passes = passes
        self.consistent = consistent
        self.stoppedRetrying = stoppedRetrying
    }

    /// Why the listing may miss entries, for a notice; nil when it may not.
    public var interruption: String? {
        guard !consistent else { return nil }
        if stoppedRetrying {
            return "the conntrack table changed during the dump (NLM_F_DUMP_INTR), and it was not dumped again: too many entries were listed for a retry to skip them"
        }
        return "the conntrack table changed during every dump pass (\(passes), NLM_F_DUMP_INTR)"
    }
}


/// The formats a copied conntrack table is recognised in.
public enum ConntrackFileFormat: String, Sendable, CaseIterable {
    case xml = "conntrack -o xml"
    case ctdoctorJSON = "ctdoctor conntrack JSON"
    /// The two share one line format.
    case procText = "/proc/net/nf_conntrack or conntrack -o extended"
    case conntrackList = "conntrack -L"
}

/// How a diagnosis got its conntrack entries: a value, so that a snapshot stores what
/// happened rather than a sentence to be parsed back, and reports say it in one place.
public enum ConntrackProvenance: Sendable, Equatable, CustomStringConvertible {
    /// Looked up one by one by reply tuple; `count` lookups (0: none was needed).
    case lookups(count: Int)
    /// A whole-table read: the netlink dump, or the /proc fallback.
    case dump(ConntrackSource)
    /// Neither netlink nor /proc could be read (no CAP_NET_ADMIN, not root).
    case unreadable
    /// A copied table.
    case file(format: ConntrackFileFormat, path: String)

    public var description: String {
        switch self {
        case .lookups(0): "netlink lookups by reply tuple (none needed)"
        case .lookups(let count): "netlink lookups by reply tuple (\(count))"
        case .dump(.netlink): "netlink dump"
        case .dump(.procFile): "/proc/net/nf_conntrack"
        case .unreadable: "unreadable (no CAP_NET_ADMIN, not root)"
        case .file(let format, let path): "\(format.rawValue) in \(path)"
        }
    }

    /// The short name snapshots store beside the details.
    public var name: String {
        switch self {
        case .lookups: "lookups"
        case .dump(let source): source.name
        case .unreadable: "unreadable"
        case .file: "file"
        }
    }
}

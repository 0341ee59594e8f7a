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

    public init(source: ConntrackSource, matched: Int, passes: Int, consistent: Bool) {
        self.source = source
        self.matched = matched
        self.passes = passes
        self.consistent = consistent
    }
}


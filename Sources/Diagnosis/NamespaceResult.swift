/// Which network namespace a result is about, as monitoring should label it: the netns
/// (a name from `ip netns`, a path, `pid:N`, or `net:[inode]`) and the pod living there,
/// when a node sweep could tell.
public struct NamespaceIdentity: Sendable, Hashable {
    public var netns: String
    public var pod: String?
    /// Where a node sweep found it; nil for a namespace named on the command line.
    public var place: NodePlace?

    public init(netns: String, pod: String? = nil, place: NodePlace? = nil) {
        self.netns = netns
        self.pod = pod
        self.place = place
    }

    /// How people name it: the pod, the ip netns name, "host", or the netns label.
    public var displayName: String { pod ?? place?.netnsName ?? (place?.isHost == true ? "host" : netns) }
}

/// What a node sweep knows of a namespace besides its label: the facts `ctdoctor.sweep.v1`
/// reports per namespace.
public struct NodePlace: Sendable, Hashable {
    /// Its name under /var/run/netns, if any.
    public var netnsName: String?
    public var podName: String?
    public var podUID: String?
    /// Which file named the pod.
    public var podSource: String?
    /// A process inside, and how many there are.
    public var pid: Int32?
    public var processCount: Int
    /// The node's own namespace.
    public var isHost: Bool

    public init(
        netnsName: String?, podName: String?, podUID: String?, podSource: String?, pid: Int32?, processCount: Int, isHost: Bool
    ) {
        self.netnsName = netnsName
        self.podName = podName
        self.podUID = podUID
        self.podSource = podSource
        self.pid = pid
        self.processCount = processCount
        self.isHost = isHost
    }
}

/// Why a namespace could not be diagnosed, as a bounded label value for alerting; the
/// full message goes to the JSON export.
public enum FailureReason: String, Sendable, Hashable, CaseIterable {
    /// The namespace or its tables could not be opened (capabilities, another user's).
    case permissionDenied = "permission_denied"
    /// Its processes exited, or its file vanished, while it was read.
    case namespaceGone = "namespace_gone"
    /// A kernel interface answered with an error (netlink, sock_diag).
    case kernelError = "kernel_error"
    case other
}

/// One namespace's diagnosis, or the one-line reason it could not be made.
public struct NamespaceResult: Sendable {
    public var identity: NamespaceIdentity
    public var report: DiagnosisReport?
    public var failure: String?
    public var failureReason: FailureReason?

    public static func diagnosed(_ identity: NamespaceIdentity, _ report: DiagnosisReport) -> Self {
        Self(identity: identity, report: report, failure: nil, failureReason: nil)
    }

    public static func failed(_ identity: NamespaceIdentity, _ failure: String, reason: FailureReason) -> Self {
        Self(identity: identity, report: nil, failure: failure, failureReason: reason)
    }
}

/// What one run of `ctdoctor export` found, with when and how long: a cron job's output.
public struct ExportRun: Sendable {
    /// Seconds since the Unix epoch when the run started.
    public var startedAt: Double
    public var durationSeconds: Double
    public var results: [NamespaceResult]

    public init(startedAt: Double, durationSeconds: Double, results: [NamespaceResult]) {
        self.startedAt = startedAt
        self.durationSeconds = durationSeconds
        self.results = results
    }

    /// A run succeeded when every namespace it was asked about was diagnosed.
    public var succeeded: Bool { !results.isEmpty && results.allSatisfy { $0.report != nil } }
}

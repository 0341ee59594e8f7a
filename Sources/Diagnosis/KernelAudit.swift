/// Whether this kernel carries commit c410cb974f2b ("netfilter: conntrack: handle tcp
/// challenge acks during connection reuse"), mainline in v6.2.
public enum ChallengeAckFix: String, Sendable, Hashable {
    case present
    case absent
    /// 6.1.y: the fix was queued for that stable series; whether this build has it
    /// cannot be told from the version string.
    case uncertain
    /// The release could not be read or parsed.
    case unknown
}

/// What happens on this node when a new connect() lands on a leaked socket's port.
public enum CollisionOutcome: String, Sendable, Hashable {
    /// The app's RST resets the leaked socket and the retransmitted SYN connects: a
    /// delay (measured in milliseconds on 6.18 by `ctdoctor lab collision`), not a failure.
    case recovers
    /// The RST is judged INVALID and never reaches the leaked socket: SYN retransmits
    /// hit it until connect() times out.
    case fails
    case uncertain
}

/// The kernel and sysctl facts that decide whether leaks happen and what they cost.
public struct KernelAudit: Sendable, Hashable {
    public var facts: KernelFacts
    public var rules: RulesFacts
    public var version: String?
    public var challengeAckFix: ChallengeAckFix
    public var outcome: CollisionOutcome
    /// Why `outcome`, in one or two sentences naming the facts that decide it.
    public var reason: String
    /// The proxy's idle timeout the audit compared the close_wait timeout against.
    public var idleTimeoutSeconds: Double

    /// conntrack count / max, when both are known.
    public var tableFill: Double? {
        guard let count = facts.conntrackCount, let max = facts.conntrackMax, max > 0 else { return nil }
        return Double(count) / Double(max)
    }

    /// True when conntrack forgets half-closed flows before the proxy gives up on them:
    /// the condition for the half-close leak.
    public var closeWaitShorterThanIdleTimeout: Bool? {
        guard let closeWait = facts.closeWaitTimeout else { return nil }
        return idleTimeoutSeconds == 0 || Double(closeWait) < idleTimeoutSeconds
    }

    /// nf_conntrack_tcp_ignore_invalid_rst as every part of a report words it: its
    /// value; "absent (before 5.14)" when the kernel is known to predate it; otherwise
    /// "unknown" (not read: a copy, or a sysctl that could not be opened). One wording,
    /// so the kernel section and the findings tell one story.
    public static func ignoreInvalidRSTText(_ facts: KernelFacts) -> String {
        if let value = facts.ignoreInvalidRST { return String(value) }
        let version = facts.release.flatMap(KernelText.version(ofRelease:))
        return (version.map { ($0.major, $0.minor) < (5, 14) } ?? false) ? "absent (before 5.14)" : "unknown"
    }

    public static func audit(facts: KernelFacts, rules: RulesFacts, idleTimeoutSeconds: Double) -> KernelAudit {
        let parsed = facts.release.flatMap(KernelText.version(ofRelease:))
        let fix: ChallengeAckFix
        switch parsed {
        case nil: fix = .unknown
        case let version? where (version.major, version.minor) >= (6, 2): fix = .present
        case let version? where version.major == 6 && version.minor == 1: fix = .uncertain
        default: fix = .absent
        }
        let release = facts.release ?? "unknown"
        let rst = ignoreInvalidRSTText(facts)
        let dropNote = rules.invalidDrop == true ? " An INVALID-drop rule (\(rules.matchingRule ?? "present")) drops it too." : ""

        let outcome: CollisionOutcome
        let reason: String
        if fix == .present {
            outcome = .recovers
            reason = "kernel \(release) has the v6.2 conntrack fix for challenge ACKs (c410cb974f2b): the app's RST reaches and resets the leaked socket, and the retransmitted SYN connects — a short delay, and the end of that leak"
        } else if facts.ignoreInvalidRST == 1 {
            outcome = .recovers
            reason = "nf_conntrack_tcp_ignore_invalid_rst=1: conntrack does not mark the app's out-of-window RST INVALID, so it reaches and resets the leaked socket, and the retransmitted SYN connects"
        } else if fix == .uncertain {
            outcome = .uncertain
            reason = "kernel \(release) is a 6.1.y build: the challenge-ACK fix (c410cb974f2b, v6.2) was queued for 6.1.y, and ctdoctor cannot tell whether this build carries it; nf_conntrack_tcp_ignore_invalid_rst=\(rst)." + dropNote
        } else if fix == .unknown {
            outcome = .uncertain
            reason = "the kernel release could not be read; nf_conntrack_tcp_ignore_invalid_rst=\(rst)." + dropNote
        } else {
            outcome = .fails
            reason = "kernel \(release) predates the v6.2 challenge-ACK fix and nf_conntrack_tcp_ignore_invalid_rst=\(rst): conntrack judges the app's RST INVALID, it never reaches the leaked socket, and the app's SYN retransmits hit it until connect() times out." + dropNote
        }
        return KernelAudit(
            facts: facts, rules: rules, version: parsed.map { "\($0.major).\($0.minor).\($0.patch)" },
            challengeAckFix: fix, outcome: outcome, reason: reason, idleTimeoutSeconds: idleTimeoutSeconds)
    }

    /// The sysctl change that makes collisions recover on this kernel, if there is one.
    public var collisionRemedy: String {
        if challengeAckFix == .present { return "none needed on this kernel" }
        if let version = version.flatMap(KernelText.version(ofRelease:)), (version.major, version.minor) < (5, 14) {
            return "kernel \(facts.release ?? "") has no nf_conntrack_tcp_ignore_invalid_rst (added in 5.14) and lacks the v6.2 fix: only preventing the leaks helps here, or a kernel ≥ 6.2"
        }
        return "set net.netfilter.nf_conntrack_tcp_ignore_invalid_rst=1 in the pod's network namespace (needs NET_ADMIN, e.g. an init container running `sysctl -w net.netfilter.nf_conntrack_tcp_ignore_invalid_rst=1`), or move to kernel ≥ 6.2"
    }
}

import Netlink

/// What a ctnetlink event message announces (what `conntrack -E` prints as [NEW],
/// [UPDATE], [DESTROY]).
public enum ConntrackEventKind: String, Sendable, Hashable {
    case new, update, destroy

    /// The multicast group that carries it (enum nfnetlink_groups): join it to receive.
    public var group: UInt32 {
        switch self {
        case .new: 1  // NFNLGRP_CONNTRACK_NEW
        case .update: 2  // NFNLGRP_CONNTRACK_UPDATE
        case .destroy: 3  // NFNLGRP_CONNTRACK_DESTROY
        }
    }

    /// The kind of an event message, nil for anything else. The kernel sends new entries
    /// as IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL, updates as IPCTNL_MSG_CT_NEW
    /// without them, and destroyed ones as IPCTNL_MSG_CT_DELETE (ctnetlink_conntrack_event).
    public init?(_ message: NetlinkMessage) {
        guard message.subsystem == UInt8(Ctnetlink.subsystem) else { return nil }
        switch UInt16(message.command) {
        case Ctnetlink.messageNew:
            self = message.flags & (NetlinkConstant.create | NetlinkConstant.exclusive) != 0 ? .new : .update
        case Ctnetlink.messageDelete:
            self = .destroy
        default:
            return nil
        }
    }
}

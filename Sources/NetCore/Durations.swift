/// Formats a duration in milliseconds the way people read it: 850ms, 41.2s, 12m5s,
/// 3h2m, 2d4h.
public func humanDuration(milliseconds: UInt64) -> String {
    if milliseconds < 1000 { return "\(milliseconds)ms" }
    let seconds = milliseconds / 1000
    if seconds < 60 { return "\(seconds).\(milliseconds % 1000 / 100)s" }
    if seconds < 3600 { return "\(seconds / 60)m\(seconds % 60)s" }
    if seconds < 86400 { return seconds % 3600 < 60 ? "\(seconds / 3600)h" : "\(seconds / 3600)h\(seconds % 3600 / 60)m" }
    return seconds % 86400 < 3600 ? "\(seconds / 86400)d" : "\(seconds / 86400)d\(seconds % 86400 / 3600)h"
}

extension Duration {
    /// The duration as a floating-point number of seconds, for rates and reports.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

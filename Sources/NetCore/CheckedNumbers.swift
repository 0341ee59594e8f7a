/// Conversions of numbers that come from outside — a tenant's environment, a snapshot,
/// an option, a kernel counter — that cannot trap.
///
/// Swift's `Int(someDouble)` stops the process on NaN, on infinities and on values out
/// of the type's range; one hostile pod's `ISTIO_META_IDLE_TIMEOUT` reaching such a
/// conversion would end a whole node sweep. Inputs are refused at the edge with a
/// message (`DurationText`); what is left is arithmetic on accepted values, and every
/// conversion of its result goes through these.
extension FixedWidthInteger {
    /// `value` rounded toward zero and clamped into the type's range; NaN becomes 0.
    @inlinable
    public init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value <= Double(Self.min) {
            self = Self.min
        } else if value >= Double(Self.max) {
            // Double(Self.max) rounds up for 64-bit types: compare with >=, not >.
            self = Self.max
        } else {
            self = Self(value)
        }
    }
}

/// Durations written as people and Istio write them: plain seconds ("90", "0.5") or Go's
/// notation ("1h", "90s", "1m30s", "500ms"), bounded as Go bounds them.
public enum DurationText {
    /// The longest duration Go's time.ParseDuration accepts (2^63−1 ns, about 292
    /// years). Istio reads ISTIO_META_IDLE_TIMEOUT with it, so a longer value is an
    /// error there as well; here it keeps every later conversion in range.
    public static let maximumSeconds = 9_223_372_036.854775807

    /// Seconds, or nil when `text` is neither form, is negative, or exceeds
    /// `maximumSeconds`. Only plain decimal numbers are taken: "inf", "nan", "1e19" and
    /// hexadecimal floats, which `Double(_:)` would accept, are not durations.
    public static func seconds(_ text: String) -> Double? {
        let trimmed = text.trimmingWhitespaceAndQuotes()
        guard !trimmed.isEmpty else { return nil }
        if let plain = plainDecimal(Substring(trimmed)) { return plain <= maximumSeconds ? plain : nil }
        return goDuration(trimmed)
    }

    /// A Go duration ("1h30m", "500ms", "0"), seconds; nil if malformed or too long.
    public static func goDuration(_ text: String) -> Double? {
        var rest = Substring(text.trimmingWhitespaceAndQuotes())
        guard !rest.isEmpty else { return nil }
        if rest == "0" { return 0 }
        // Longest unit first: "ms" before "m" and "s".
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        var total = 0.0
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard let value = plainDecimal(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            total += value * unit.1
            guard total.isFinite, total <= maximumSeconds else { return nil }
            rest = rest.dropFirst(unit.0.count)
        }
        return total
    }

    /// "12", "0.5", "3." — ASCII digits with at most one point; nil otherwise.
    static func plainDecimal(_ text: Substring) -> Double? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            text.filter({ $0 == "." }).count <= 1, text != "."
        else { return nil }
        guard let value = Double(text), value.isFinite else { return nil }
        return value
    }
}

extension String {
    func trimmingWhitespaceAndQuotes() -> String {
        var text = Substring(self)
        let set: Set<Character> = [" ", "\n", "\t", "\r", "\""]
        while let first = text.first, set.contains(first) { text = text.dropFirst() }
        while let last = text.last, set.contains(last) { text = text.dropLast() }
        return String(text)
    }
}

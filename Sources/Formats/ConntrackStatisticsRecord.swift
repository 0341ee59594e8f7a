import Conntrack
import JSON

/// The kernel's conntrack counters as every document carries them (COUNTERS in README):
/// one key per counter, null where the source did not carry it.
public enum ConntrackStatisticsRecord {
    public static func json(_ values: ConntrackCounterValues) -> JSONValue {
        .object(ConntrackCounter.allCases.map { ($0.rawValue, .integer(values[$0])) })
    }

    /// nil for a null or absent field; a counter must be a non-negative integer.
    public static func read(_ field: JSONField) throws(JSONError) -> ConntrackCounterValues? {
        guard !field.isNull else { return nil }
        _ = try field.object()
        var values = ConntrackCounterValues()
        for counter in ConntrackCounter.allCases {
            values[counter] = try field[counter.rawValue].optionalInteger(UInt64.self)
        }
        return values
    }
}

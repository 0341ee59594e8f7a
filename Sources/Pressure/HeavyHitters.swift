/// The most frequent keys of a stream in bounded memory (Misra–Gries): exact while the
/// stream has at most `capacity` distinct keys, and otherwise each count is low by at
/// most `undercount`, which is at most n / (capacity + 1) for n keys seen. A million
/// distinct destinations cost `capacity` counters, not a dictionary of the table.
///
/// Written here because no Swift package in reach keeps a bounded frequent-items summary.
public struct HeavyHitters<Key: Hashable & Sendable>: Sendable {
    public let capacity: Int
    private var counts: [Key: Int] = [:]
    /// How many times every counter was decremented together: the most any count can be
    /// short of the truth.
    public private(set) var undercount = 0

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        counts.reserveCapacity(capacity + 1)
    }

    /// True while no count has been decremented: every count is the true one.
    public var isExact: Bool { undercount == 0 }

    public mutating func add(_ key: Key) {
        if let count = counts[key] {
            counts[key] = count + 1
        } else if counts.count < capacity {
            counts[key] = 1
        } else {
            // The new key and one occurrence of each kept key cancel out.
            undercount += 1
            counts = counts.compactMapValues { $0 > 1 ? $0 - 1 : nil }
        }
    }

    /// The `limit` largest counts, largest first; ties in `tieOrder`.
    public func top(_ limit: Int, tieOrder: (Key, Key) -> Bool) -> [(key: Key, count: Int)] {
        counts.sorted { $0.value != $1.value ? $0.value > $1.value : tieOrder($0.key, $1.key) }
            .prefix(limit).map { (key: $0.key, count: $0.value) }
    }
}

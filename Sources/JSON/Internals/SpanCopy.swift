/// The JSON module's only unsafe code: a bulk copy into an `OutputSpan`, which Swift 6.3's
/// OutputSpan lacks (it appends one element at a time, or repeats one). Byte by byte, the
/// literals of an ndjson record cost ~13 instructions a byte: a quarter of the CPU of a
/// 262,144-entry `conntrack --format ndjson` in callgrind. The capacity is checked first,
/// so the copy traps, as `append` does, rather than overrun.
extension OutputSpan where Element == UInt8 {
    @usableFromInline
    mutating func append(copying bytes: Span<UInt8>) {
        bytes.withUnsafeBufferPointer { append(copying: $0) }
    }

    @inlinable
    mutating func append(copying source: UnsafeBufferPointer<UInt8>) {
        precondition(source.count <= freeCapacity, "record larger than its reserved bound")
        guard let from = source.baseAddress else { return }
        withUnsafeMutableBufferPointer { destination, initializedCount in
            (destination.baseAddress! + initializedCount).initialize(from: from, count: source.count)
            initializedCount += source.count
        }
    }
}

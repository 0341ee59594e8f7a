import Diagnosis
import Formats
import JSON

// What each scenario built, as the members of its `ctdoctor.lab.v1` document (README,
// "JSON output"); LabDocument writes the document around them.

extension LabFlow {
    public var record: JSONValue {
        .object([("name", .string(name)), ("app_port", .integer(appPort)), ("expected", .string(expected?.rawValue))])
    }
}

extension ServerFirstFlow {
    public var record: JSONValue {
        .object([
            ("name", .string(name)), ("service_port", .integer(servicePort)), ("app_port", .integer(appPort)),
            ("expect_stalled", .bool(expectStalled)), ("first_bytes_after_seconds", firstBytesAfter.map { .number($0) } ?? .null),
        ])
    }
}

extension CollisionAttempt {
    /// `failOn` applies to the diagnosis taken during the attempt, as to the document's own.
    public func record(failOn: Severity?) -> JSONValue {
        .object([
            ("port", .integer(port)), ("connected", .bool(connected)), ("seconds", .number(seconds)), ("error", .string(error)),
            ("counter_deltas", counters(counterDeltas)),
            ("diagnosis_during", duringAttempt.map { DiagnosisDocument.json($0, failOn: failOn) } ?? .null),
        ])
    }
}

extension CollisionMeasurement {
    public var record: JSONValue {
        .object([
            ("pattern", .string(pattern.rawValue)), ("connects", .integer(connects)), ("leaks", .integer(leaks)),
            ("first_pass_poisoned", .integer(poisonedFirstPass)), ("first_pass_space", .integer(firstPassSpace)),
            ("picks", .integer(picks)), ("collisions", .integer(collisions)), ("leaks_hit", .integer(leaksHit)),
            ("slow_connects", .integer(slowConnects)),
            ("expected_picks", .number(expected.picks)), ("expected_leaks_hit", .number(expected.leaksHit)),
            ("uniform_picks", .number(uniformPicks)), ("counter_deltas", counters(counterDeltas)),
        ])
    }
}

/// Counter steps by name, in name order.
func counters(_ deltas: [String: UInt64]) -> JSONValue {
    .object(deltas.sorted { $0.key < $1.key }.map { ($0.key, .integer($0.value)) })
}

import Diagnosis
import JSON

/// One line of `ctdoctor watch --format ndjson` (`ctdoctor.watch.v1`).
public enum WatchRecord {
    public static let schema = "ctdoctor.watch.v1"

    /// - Parameters:
    ///   - namespace: the namespace as given (--netns), or its net:[inode] in a node watch.
    ///   - pod: the pod it belongs to, when a node watch could tell.
    public static func json(_ event: WatchEvent, namespace: String, pod: String? = nil) -> JSONValue {
        .object([
            ("schema", .string(schema)), ("event", .string(event.kind.rawValue)), ("time", .number(event.time)),
            ("namespace", .string(namespace)), ("pod", .string(pod)),
            ("proxy", .string(event.proxy?.description)), ("app", .string(event.app?.description)),
            ("original_destination", .string(event.originalDestination?.description)),
            ("cookie", .integer(event.cookie)), ("lifetime_seconds", event.lifetimeSeconds.map { .number($0) } ?? .null),
            ("overruns", .integer(event.overruns)), ("after_seconds", event.afterSeconds.map { .number($0) } ?? .null),
            ("protocol", .string(event.application?.name)), ("server_first", event.application.map { .bool($0.isServerFirst) } ?? .null),
            ("counter_steps", event.counterSteps.map { steps in .object(steps.sorted { $0.key < $1.key }.map { ($0.key, .integer($0.value)) }) } ?? .null),
            ("detail", .string(event.detail)),
        ])
    }
}

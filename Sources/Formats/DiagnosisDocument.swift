import Conntrack
import Diagnosis
import JSON
import NetCore
import Sockets

/// A diagnosis as JSON (`ctdoctor.diagnosis.v1`, and the `leaks` and `collisions`
/// documents made of its parts) and as ndjson records.
public enum DiagnosisDocument {
    public static let schema = "ctdoctor.diagnosis.v1"
    public static let leaksSchema = "ctdoctor.leaks.v1"
    public static let collisionsSchema = "ctdoctor.collisions.v1"


    /// The JSON document. `parts` narrows it for `leaks` and `collisions`, which use
    /// their own schema names with the same member shapes.
    public static func json(_ report: DiagnosisReport, failOn: Severity?, parts: ReportParts = .all) -> JSONValue {
        guard parts != .all else { return fullJSON(report, failOn: failOn) }
        // `leaks` and `collisions`: their own schema names, built from the members they
        // speak for, in the full document's order.
        let name = parts.contains(.leaks) && parts.contains(.collisions)
            ? schema : parts.contains(.leaks) ? leaksSchema : collisionsSchema
        var members: [(String, JSONValue)] = [("schema", .string(name))]
        members += header(report, failOn: failOn, findings: report.findings(for: parts))
        if parts.contains(.leaks) { members.append(("leaks", .array(report.leaks.map(leak)))) }
        if parts.contains(.collisions) {
            members += [("collisions", collisions(report.collisions)), ("kernel", kernel(report.kernel))]
        }
        if parts.contains(.leaks) { members.append(("orphaned_fin_wait2", .integer(Int64(report.orphans)))) }
        members += trailer(report)
        return .object(members)
    }

    /// The members every report starts with, up to its findings.
    static func header(_ report: DiagnosisReport, failOn: Severity?, findings: [Finding]) -> [(String, JSONValue)] {
        [
            ("namespace", .string(report.namespace)),
            ("verdict", .string(report.verdict)),
            ("worst_severity", .string(report.worstSeverity?.name)),
            ("fail_on", .string(failOn?.name ?? "never")),
            ("sidecar", report.sidecar.map(sidecar) ?? .null),
            ("proxy_idle_timeout", .object([("seconds", .number(report.idleTimeout.seconds)), ("source", .string(report.idleTimeout.source))])),
            ("findings", .array(findings.map(finding))),
        ]
    }

    /// The members every report ends with.
    static func trailer(_ report: DiagnosisReport) -> [(String, JSONValue)] {
        [
            ("sources", .object([
                ("sockets", .string(report.input.socketSource.name)),
                ("conntrack", .string(report.input.conntrackSource.description)),
            ])),
            ("notices", .strings(report.notices)),
        ]
    }

    static func fullJSON(_ report: DiagnosisReport, failOn: Severity?) -> JSONValue {
        .object([("schema", .string(schema))] + header(report, failOn: failOn, findings: report.findings) + [
            ("leaks", .array(report.leaks.map(leak))),
            ("stall_after_seconds", .number(report.stallAfterSeconds)),
            ("stalls", .array(report.stalls.map(stall))),
            ("collisions", collisions(report.collisions)),
            ("kernel", kernel(report.kernel)),
            ("orphaned_fin_wait2", .integer(Int64(report.orphans))),
        ] + trailer(report))
    }

    /// One record per line: each finding, each half-closed socket, then a summary.
    public static func ndjson(_ report: DiagnosisReport, failOn: Severity?) -> [JSONValue] {
        func tagged(_ kind: String, _ value: JSONValue) -> JSONValue {
            guard case .object(let members) = value else { return value }
            return .object([("kind", .string(kind)), ("namespace", .string(report.namespace))] + members)
        }
        var records = report.findings.map { tagged("finding", finding($0)) }
        records += report.leaks.map { tagged("leak", leak($0)) }
        records += report.stalls.map { tagged("stall", stall($0)) }
        records.append(tagged("summary", .object([
            ("verdict", .string(report.verdict)),
            ("worst_severity", .string(report.worstSeverity?.name)),
            ("findings", .integer(Int64(report.findings.count))),
            ("leaked", .integer(Int64(report.leaks.filter { $0.classification == .leaked }.count))),
            ("at_risk", .integer(Int64(report.leaks.filter { $0.classification == .atRisk }.count))),
            ("poisoned_ports", .integer(Int64(report.collisions.sources.reduce(0) { $0 + $1.poisoned.count }))),
            ("stalled", .integer(Int64(report.stalls.reduce(0) { $0 + $1.connections.count }))),
            ("collision_outcome", .string(report.kernel.outcome.rawValue)),
            ("notices", .strings(report.notices)),
        ])))
        return records
    }

    static func finding(_ finding: Finding) -> JSONValue {
        .object([
            ("id", .string(finding.id)),
            ("severity", .string(finding.severity.name)),
            ("summary", .string(finding.summary)),
            ("evidence", .strings(finding.evidence)),
            ("remedy", .string(finding.remedy)),
        ])
    }

    static func sidecar(_ detection: SidecarDetection) -> JSONValue {
        .object([
            ("mesh", .string(detection.profile.mesh.rawValue)),
            ("outbound_port", .integer(Int64(detection.profile.outboundPort))),
            ("inbound_port", .integer(Int64(detection.profile.inboundPort))),
            ("detected", .bool(!detection.wasGiven)),
            ("evidence", .string(detection.evidence)),
            ("process", detection.process.map(process) ?? .null),
            ("proxy_namespace", .string(detection.proxyNamespace)),
            ("proxy_pod", .string(detection.proxyPod)),
        ])
    }

    static func process(_ owner: SocketOwner) -> JSONValue {
        .object([("pid", .integer(Int64(owner.pid))), ("command", .string(owner.command)), ("fd", .integer(Int64(owner.fd)))])
    }

    public static func endpoint(_ endpoint: Endpoint?) -> JSONValue {
        guard let endpoint else { return .null }
        return .object([("address", .string(endpoint.address.description)), ("port", .integer(Int64(endpoint.port)))])
    }

    public static func leak(_ leak: LeakRecord) -> JSONValue {
        .object([
            ("class", .string(leak.classification.rawValue)),
            ("reason", .string(leak.reason)),
            ("direction", .string(leak.direction.rawValue)),
            ("socket", .object([
                ("local", endpoint(leak.socket.local)), ("peer", endpoint(leak.socket.remote)),
                ("inode", .integer(leak.socket.inode)), ("cookie", .integer(leak.socket.cookie)),
            ])),
            ("original_destination", endpoint(leak.originalDestination)),
            ("app_socket_state", .string(leak.appSocket?.state.name)),
            ("conntrack", leak.entry.map { entry in
                .object([("state", .string(entry.state?.name)), ("timeout", .integer(entry.timeout)), ("id", .integer(entry.id))])
            } ?? .null),
            ("colliding_connection", leak.collidingEntry.map { entry in
                .object([("src", endpoint(entry.original.sourceEndpoint)), ("dst", endpoint(entry.original.destinationEndpoint)),
                         ("state", .string(entry.state?.name))])
            } ?? .null),
            ("idle_ms", .integer(leak.idleMilliseconds)),
            ("reaped_in_ms", .integer(leak.reapedInMilliseconds)),
            ("process", leak.owner.map(process) ?? .null),
            ("process_inferred", .bool(leak.ownerInferred)),
            ("provenance", .string(leak.provenance.rawValue)),
            ("basis", .string(leak.basis.rawValue)),
        ])
    }

    static func stall(_ group: StallGroup) -> JSONValue {
        .object([
            ("port", .integer(group.port)),
            ("direction", .string(group.direction.rawValue)),
            ("protocol", .string(group.application?.name)),
            ("server_first", group.application.map { .bool($0.isServerFirst) } ?? .null),
            ("evidence", .string(group.evidence.map { "\($0)" })),
            ("connections", .array(group.connections.map { connection in
                .object([
                    ("local", endpoint(connection.socket.local)), ("peer", endpoint(connection.socket.remote)),
                    ("original_destination", endpoint(connection.originalDestination)),
                    ("silent_ms", .integer(Int64(connection.silentMilliseconds))),
                ])
            })),
        ])
    }

    static func collisions(_ prediction: CollisionPrediction) -> JSONValue {
        .object([
            ("model", .string(CollisionPrediction.model)),
            ("assumptions", .strings(prediction.assumptions)),
            ("connect_rate", prediction.connectRate.map {
                .object([("per_second", .number($0.perSecond)), ("source", .string($0.source))])
            } ?? .null),
            ("port_range", .array([.integer(Int64(prediction.portRange.lowerBound)), .integer(Int64(prediction.portRange.upperBound))])),
            ("reserved_ports", .integer(Int64(prediction.reservedPorts))),
            ("sources", .array(prediction.sources.map { source in
                .object([
                    ("address", .string(source.address.description)),
                    ("direction", .string(source.direction.rawValue)),
                    ("poisoned_ports", .array(source.poisoned.map { port in
                        .object([("port", .integer(Int64(port.port))), ("first_pass", .bool(port.firstPass)),
                                 ("seconds_left", port.secondsLeft.map { .number($0) } ?? .null)])
                    })),
                    ("first_pass_poisoned", .integer(Int64(source.firstPassPoisoned))),
                    ("second_pass_poisoned", .integer(Int64(source.secondPassPoisoned))),
                    ("unreachable_ports", .integer(Int64(source.unreachablePorts))),
                    ("first_pass_space", .integer(Int64(source.firstPassSpace))),
                    ("fraction_poisoned", .number(source.fractionPoisoned)),
                    ("expected_collisions", source.expectedCollisions.map { .number($0) } ?? .null),
                    ("expected_leaks_hit", source.expectedLeaksHit.map { .number($0) } ?? .null),
                    ("collision_probability", source.collisionProbability.map { .number($0) } ?? .null),
                ])
            })),
            ("live", .array(prediction.liveCollisions.map(leak))),
            ("counters", .object(prediction.counters.sorted { $0.key < $1.key }.map { ($0.key, .integer($0.value)) })),
        ])
    }

    static func kernel(_ audit: KernelAudit) -> JSONValue {
        let facts = audit.facts
        return .object([
            ("release", .string(facts.release)),
            ("challenge_ack_fix", .string(audit.challengeAckFix.rawValue)),
            ("collision_outcome", .string(audit.outcome.rawValue)),
            ("reason", .string(audit.reason)),
            ("sysctls", .object([
                ("nf_conntrack_tcp_timeout_close_wait", .integer(facts.closeWaitTimeout)),
                ("nf_conntrack_tcp_ignore_invalid_rst", .integer(facts.ignoreInvalidRST)),
                ("nf_conntrack_tcp_be_liberal", .integer(facts.beLiberal)),
                ("ip_local_port_range", facts.portRange.map { .array([.integer(Int64($0.lowerBound)), .integer(Int64($0.upperBound))]) } ?? .null),
                ("ip_local_reserved_ports", .integer(Int64(facts.reservedPorts.count))),
            ])),
            ("close_wait_shorter_than_idle_timeout", audit.closeWaitShorterThanIdleTimeout.map { .bool($0) } ?? .null),
            ("conntrack", .object([
                ("count", .integer(facts.conntrackCount)), ("max", .integer(facts.conntrackMax)),
                ("fill", audit.tableFill.map { .number($0) } ?? .null),
                ("statistics", facts.conntrackCounters.map(ConntrackStatisticsRecord.json) ?? .null),
            ])),
            ("invalid_drop_rule", audit.rules.invalidDrop.map { .bool($0) } ?? .null),
            ("rules_source", .string(audit.rules.source)),
            ("matching_rule", .string(audit.rules.matchingRule)),
        ])
    }
}

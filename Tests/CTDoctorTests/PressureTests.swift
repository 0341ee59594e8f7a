import Conntrack
import Diagnosis
import NetCore
import Netlink
import Offline
@testable import Pressure
import Testing

/// The pure half of `ctdoctor pressure`: statistics as the kernel and conntrack -S give
/// them, the one-pass summary, and the findings both turn into.
@Suite("Pressure")
struct PressureTests {
    // MARK: - Statistics

    @Test func readsConntrackSAndTheProcFileAlike() throws {
        let tool = try ConntrackStatisticsText.parse(try Fixture.bytes("handmade/conntrack-S.txt"), source: "conntrack -S")
        #expect(tool.source == .conntrackS && tool.perCPU.map(\.cpu) == [0, 1])
        #expect(tool.totals[.invalid] == 15 && tool.totals[.insertFailed] == 0 && tool.totals[.chainTooLong] == 0)
        let proc = try ConntrackStatisticsText.parse(try Fixture.bytes("handmade/proc-net-stat-nf_conntrack.txt"), source: "proc")
        #expect(proc.source == .procFile && proc.entries == 9)
        #expect(proc.totals[.invalid] == 12 && proc.totals[.error] == 0 && proc.totals[.clashResolve] == 0)
        // Since 5.17 the column headed chainlength holds chaintoolong.
        #expect(proc.totals[.chainTooLong] == 0)
    }

    @Test func aPastedConntrackSWithItsPromptAndWatchHeaderReads() throws {
        let pasted = "Every 2.0s: conntrack -S        node-1: Tue Dec  1 20:31:00 2026\n\n$ sudo conntrack -S\n"
            + (try Fixture.text("handmade/conntrack-S.txt"))
        let statistics = try PastedInput.statistics(Array(pasted.utf8), source: "pasted")
        #expect(statistics.perCPU.count == 2 && statistics.totals[.invalid] == 15)
    }

    @Test(arguments: [
        ("cpu=0 found=x", "is not a number"), ("cpu=0 found", "is not name=value"), ("hello", "neither"),
        ("entries found\n00000001", "1 columns where the header names 2"), ("entries found\n0000000g 00000000", "not hexadecimal"),
        ("", "no statistics"),
    ])
    func badStatisticsFailWithTheirLine(text: String, message: String) {
        #expect {
            _ = try ConntrackStatisticsText.parse(Array(text.utf8), source: "s")
        } throws: { error in
            "\(error)".contains(message) && "\(error)".hasPrefix("s")
        }
    }

    /// A GET_STATS_CPU reply as the kernel builds it (ctnetlink_ct_stat_cpu_fill_info).
    static func cpuMessage(cpu: UInt16, _ counters: [(ConntrackCounter, UInt32)], truncate: Bool = false) -> [UInt8] {
        var builder = NetlinkRequestBuilder(type: 1 << 8 | 4, flags: NetlinkConstant.multi, sequence: 7)
        builder.appendBytes([0, 0] + [UInt8(cpu >> 8), UInt8(cpu & 0xFF)])
        for (counter, value) in counters { builder.attributeBE(counter.attribute, value) }
        if truncate { builder.attribute(ConntrackCounter.drop.attribute, [1, 2]) }
        builder.attributeBE(1, UInt32(99))  // CTA_STATS_SEARCHED: no longer sent, skipped
        return builder.finish()
    }

    @Test func decodesEachCPUsCountersFromTheKernelsMessage() throws {
        let bytes = Self.cpuMessage(cpu: 3, [(.insertFailed, 5), (.drop, 6), (.clashResolve, 7), (.chainTooLong, 8)])
        var reader = NetlinkMessageReader(bytes, count: bytes.count)
        let message = try #require(try reader.next())
        #expect(ConntrackStatisticsDecoder.carriesCPUStatistics(message) && !ConntrackMessageDecoder.carriesEntry(message))
        let cpu = try ConntrackStatisticsDecoder.decodeCPU(bytes, message)
        #expect(cpu.cpu == 3 && cpu.counters[.insertFailed] == 5 && cpu.counters[.drop] == 6)
        #expect(cpu.counters[.clashResolve] == 7 && cpu.counters[.chainTooLong] == 8 && cpu.counters[.found] == nil)

        let short = Self.cpuMessage(cpu: 0, [], truncate: true)
        var shortReader = NetlinkMessageReader(short, count: short.count)
        let shortMessage = try #require(try shortReader.next())
        #expect(throws: NetlinkFramingError.self) { try ConntrackStatisticsDecoder.decodeCPU(short, shortMessage) }
    }

    @Test func countersThatWrappedStillGrow() {
        func reading(_ value: UInt64, cpus: [Int] = [0]) -> ConntrackStatistics {
            ConntrackStatistics(perCPU: cpus.map { ConntrackCPUStatistics(cpu: $0, counters: ConntrackCounterValues([(.insertFailed, value)])) }, source: .netlink)
        }
        let delta = StatisticsDelta(from: reading(0xFFFF_FFF0), to: reading(0x10), seconds: 2)
        #expect(delta.growth[.insertFailed] == 0x20 && delta.rate(.insertFailed) == 16)
        #expect(delta.growth[.drop] == nil, "a counter neither reading had stays unknown")
        let hotplug = StatisticsDelta(from: reading(1, cpus: [0]), to: reading(3, cpus: [0, 1]), seconds: 1)
        #expect(hotplug.growth[.insertFailed] == 2 && hotplug.unmatchedCPUs == 1)
    }

    // MARK: - The pass over the table

    static let app = IPAddress("10.9.0.1")!
    static let service = IPAddress("10.96.0.10")!
    static let backend = IPAddress("10.244.1.5")!
    static let gone = IPAddress("10.244.9.9")!

    static func entry(
        _ protocolNumber: UInt8 = IPProtocolName.tcp, state: ConntrackTCPState? = .closeWait, from source: IPAddress = app,
        port: UInt16, to destination: IPAddress = service, dnat target: IPAddress? = backend, targetPort: UInt16 = 8080,
        timeout: UInt32, status: ConntrackStatus = [.seenReply, .assured], counters: ConntrackCounters? = nil
    ) -> ConntrackEntry {
        let replySource = target ?? destination
        var entry = ConntrackEntry(
            family: .ipv4, protocolNumber: protocolNumber,
            original: ConntrackTuple(source: source, destination: destination, sourcePort: port, destinationPort: 80),
            reply: ConntrackTuple(source: replySource, destination: source, sourcePort: target == nil ? 80 : targetPort, destinationPort: port),
            state: state.map { .tcp($0) }, status: status.union(target == nil ? [] : .destinationNAT), timeout: timeout)
        entry.counters = counters
        return entry
    }

    @Test func attributesTheTableToStatesTimeoutsAndContributors() {
        var context = PressureContext(timeouts: .reading([.tcpCloseWait: 3600]), podsByAddress: [Self.app: "shop/web-1", Self.backend: "shop/api-2"])
        context.liveEndpoints = [Self.backend]
        var accumulator = TablePressureAccumulator(context: context)
        // 300 CLOSE_WAIT entries idle 600 s under kube-proxy's 3600 s close_wait.
        for port in 0..<300 { accumulator.add(Self.entry(port: 20000 + UInt16(port), timeout: 3000)) }
        // 20 idle only 30 s: a lower close_wait of 60 s would not free them.
        for port in 0..<20 { accumulator.add(Self.entry(port: 21000 + UInt16(port), timeout: 3570)) }
        // 5 UDP flows to a vanished endpoint, retried: several packets, no reply.
        for port in 0..<5 {
            accumulator.add(Self.entry(
                IPProtocolName.udp, state: nil, port: 30000 + UInt16(port), to: IPAddress("10.96.0.53")!, dnat: Self.gone, targetPort: 53,
                timeout: 25, status: [], counters: ConntrackCounters(originalPackets: 6, originalBytes: 400, replyPackets: 0, replyBytes: 0)))
        }
        let table = accumulator.summary(top: 5)
        #expect(table.entries == 325)
        #expect(table.byState.first { $0.bucket.group.state == "CLOSE_WAIT" && $0.bucket.remaining == .underAnHour }?.entries == 320)
        #expect(table.byState.first { $0.bucket.group == StateGroup(protocolNumber: 17, state: "UNREPLIED") }?.entries == 5)
        #expect(table.heldBySetting[.tcpCloseWait] == 320 && table.heldBySetting[.udp] == 5)
        let best = table.bestSaving
        #expect(best?.setting == .tcpCloseWait && best?.loweredTo == 60 && best?.freed == 300 && best?.held == 320 && best?.assumed == false)
        #expect(table.savings.first { $0.setting == .tcpCloseWait && $0.loweredTo == 1800 }?.freed == 0)
        #expect(table.destinations.contributors.first?.key.endpoint == Endpoint(Self.service, 80) && table.destinations.undercount == 0)
        #expect(table.destinations.contributors.first?.entries == 320)
        #expect(table.natTargets.contributors.map(\.key.endpoint.address) == [Self.backend, Self.gone])
        #expect(table.podsAsSource.first?.key == "shop/web-1" && table.podsAsSource.first?.entries == 325)
        #expect(table.podsAsDestination.first?.key == "shop/api-2" && table.podsAsDestination.first?.entries == 320)
        // Six packets, no reply, but no age without timestamps: retried, not "kept alive for over N s".
        #expect(table.unreplied.entries == 5 && table.unreplied.retried == 5 && table.unreplied.refreshed == 0 && table.unreplied.ageUnknown == 5)
        #expect(table.stale?.entries == 5 && table.stale?.kept.allSatisfy { $0.reply.source == Self.gone } == true)

        let report = PressureReport(table: table, statistics: nil, delta: nil, count: 325, maximum: 1000, buckets: 256, rules: RulesFacts(), notices: [])
        let ids = report.findings.map(\.kind)
        #expect(ids.contains(.conntrackLongTimeouts) && ids.contains(.conntrackStaleEntries) && ids.contains(.conntrackUnrepliedEntries))
        #expect(!ids.contains(.conntrackTableFull), "32.5% full")
        let longTimeouts = report.findings.first { $0.kind == .conntrackLongTimeouts }
        #expect(longTimeouts?.remedy.contains("nf_conntrack_tcp_timeout_close_wait=60") == true)
        #expect(longTimeouts?.remedy.contains("is cut") == true, "lowering close_wait says what it costs")
        #expect(report.findings.first { $0.kind == .conntrackUnrepliedEntries }?.severity == .info, "retries of unknown age are information")
    }

    @Test func aFlowWithDataInFlightIsNotCountedIdle() {
        var accumulator = TablePressureAccumulator(context: PressureContext(timeouts: .kernelDefaults))
        // 250 s left: restarted at the 300 s unacknowledged timeout 50 s ago, not at
        // established's 432,000 s five days ago.
        accumulator.add(Self.entry(state: .established, port: 1, timeout: 250))
        // 400 s left is more than any shorter restart: idle 431,600 s.
        accumulator.add(Self.entry(state: .established, port: 2, timeout: 400))
        // No timeout in the copy: held, of unknown idle time and remaining time.
        accumulator.add(Self.entry(state: .established, port: 3, timeout: 0))
        var copied = Self.entry(state: .established, port: 4, timeout: 0)
        copied.timeout = nil
        accumulator.add(copied)
        let table = accumulator.summary()
        #expect(accumulator.idleSeconds(remaining: 250, slot: TimeoutSetting.tcpEstablished.index, tcp: true) == 50)
        #expect(table.heldBySetting[.tcpEstablished] == 4)
        #expect(table.savings.first { $0.setting == .tcpEstablished && $0.loweredTo == 86_400 }?.freed == 1, "the 400 s one: with 0 s left, the 0 s one may have restarted at 300 s")
        #expect(table.byState.first { $0.bucket.remaining == .unknown }?.entries == 1)
    }

    @Test func redirectsAndTheNodesPodsAreNeverStale() {
        let context = PressureContext(podsByAddress: [Self.backend: "shop/api-2"], localAddresses: [Self.app], liveEndpoints: [])
        var accumulator = TablePressureAccumulator(context: context)
        accumulator.add(Self.entry(port: 1, dnat: Self.backend, timeout: 50))  // a pod of the node
        accumulator.add(Self.entry(port: 2, dnat: Self.app, timeout: 50))  // the namespace's own address
        accumulator.add(Self.entry(port: 3, dnat: IPAddress("10.66.0.5")!, targetPort: 15006, timeout: 50))  // a sidecar's inbound REDIRECT
        accumulator.add(Self.entry(port: 4, dnat: .loopbackV4, targetPort: 15001, timeout: 50))
        accumulator.add(Self.entry(port: 5, dnat: Self.gone, timeout: 50))
        let stale = accumulator.summary().stale
        #expect(stale?.entries == 1 && stale?.kept.first?.reply.source == Self.gone)
    }

    @Test func closeWaitIsNotOfferedWhereASidecarsFlowsAreTracked() {
        var accumulator = TablePressureAccumulator(context: PressureContext(timeouts: .reading([.tcpCloseWait: 3600, .tcpTimeWait: 600])))
        for port in 0..<200 {
            accumulator.add(Self.entry(port: 20000 + UInt16(port), dnat: .loopbackV4, targetPort: 15001, timeout: 1000))
        }
        for port in 0..<150 {
            accumulator.add(Self.entry(state: .timeWait, port: 30000 + UInt16(port), dnat: nil, timeout: 400))
        }
        let table = accumulator.summary()
        #expect(table.sidecarRedirected == 200)
        #expect(table.savings.contains { $0.setting == .tcpCloseWait && $0.loweredTo == 60 && $0.freed == 200 })
        #expect(table.bestSaving?.setting == .tcpTimeWait && table.bestSaving?.loweredTo == 120 && table.bestSaving?.freed == 150)
        let finding = PressureFindings.findings(PressureReport(
            table: table, statistics: nil, delta: nil, count: nil, maximum: nil, buckets: nil, rules: RulesFacts(), notices: []))
        #expect(finding.first?.evidence.contains { $0.contains("close_wait is left out") } == true)
    }

    @Test func topListsStayBoundedAndKeepTheHeavyKey() {
        var hitters = HeavyHitters<Int>(capacity: 16)
        for value in 0..<10_000 { hitters.add(value % 3 == 0 ? -1 : value) }
        let top = hitters.top(3, tieOrder: <)
        #expect(top.first?.key == -1)
        #expect(!hitters.isExact && top.first!.count <= 3334 && top.first!.count >= 3334 - hitters.undercount)
        #expect(hitters.undercount <= 10_000 / 17)
        var exact = HeavyHitters<Int>(capacity: 16)
        for value in 0..<160 { exact.add(value % 16) }
        #expect(exact.isExact && exact.top(16, tieOrder: <).allSatisfy { $0.count == 10 })
    }

    // MARK: - Findings from the counters

    @Test func growingInsertFailuresAndDropsAreFindingsAndQuietCountersAreNot() {
        func report(_ growth: [(ConntrackCounter, UInt64)], rules: RulesFacts = RulesFacts(), count: Int? = nil) -> [Finding] {
            PressureReport(
                table: nil, statistics: nil, delta: StatisticsDelta(seconds: 5, growth: ConntrackCounterValues(growth)),
                count: count, maximum: 1000, buckets: nil, rules: rules, notices: []
            ).findings
        }
        let race = report([(.insertFailed, 3), (.drop, 3), (.clashResolve, 10)])
        #expect(race.map(\.kind) == [.conntrackInsertFailures] && race[0].severity == .error)
        #expect(race[0].remedy.contains("single-request-reopen") && race[0].evidence.contains { $0.contains("clash_resolve +10") })
        #expect(report([(.earlyDrop, 4)]).map(\.kind) == [.conntrackEarlyDrops], "evictions: a full table")
        let refused = report([(.drop, 7), (.insertFailed, 2)])
        #expect(Set(refused.map(\.kind)) == [.conntrackEarlyDrops, .conntrackInsertFailures])
        #expect(refused.first { $0.kind == .conntrackEarlyDrops }?.summary.contains("refused 5 packets") == true, "drops beyond the lost races")
        #expect(report([(.invalid, 9)]).isEmpty, "INVALID packets nobody drops are not a finding")
        let dropped = report([(.invalid, 9)], rules: RulesFacts(invalidDrop: true, source: "iptables-save", matchingRule: "-A X -m conntrack --ctstate INVALID -j DROP"))
        #expect(dropped.map(\.kind) == [.conntrackInvalidDropped])
        #expect(report([(.insertFailed, 0), (.drop, 0)]).isEmpty)
        #expect(report([], count: 850).first?.severity == .warning && report([], count: 920).first?.severity == .error)
    }

    // MARK: - Inputs from elsewhere

    @Test func endpointsFromSlicesAndFromEndpointsObjects() throws {
        let slices = #"{"kind":"List","items":[{"kind":"EndpointSlice","addressType":"IPv4","endpoints":[{"addresses":["10.244.1.5"],"conditions":{"ready":false}},{"addresses":["10.244.1.6"]}]},{"kind":"EndpointSlice","addressType":"FQDN","endpoints":[{"addresses":["db.example"]}]},{"kind":"EndpointSlice","endpoints":null}]}"#
        #expect(try EndpointList.parse(Array(slices.utf8), source: "s") == [IPAddress("10.244.1.5")!, IPAddress("10.244.1.6")!])
        let legacy = #"{"kind":"EndpointsList","items":[{"kind":"Endpoints","subsets":[{"addresses":[{"ip":"10.1.0.1"}],"notReadyAddresses":[{"ip":"fd00::7"}]}]}]}"#
        #expect(try EndpointList.parse(Array(legacy.utf8), source: "e") == [IPAddress("10.1.0.1")!, IPAddress("fd00::7")!])
        #expect { try EndpointList.parse(Array(#"{"kind":"Pod"}"#.utf8), source: "pod.json") } throws: { "\($0)".contains("no EndpointSlice") }
        #expect { try EndpointList.parse(Array("not json".utf8), source: "x") } throws: { "\($0)".hasPrefix("x: ") }
    }

    @Test func sysctlsAsSysctlPrintsThemAndAsGrepDoes() throws {
        let sysctl = "net.netfilter.nf_conntrack_max = 262144\nnet.netfilter.nf_conntrack_tcp_timeout_close_wait = 3600\nnet.netfilter.nf_conntrack_acct = 0\nnet.ipv4.ip_forward = 1\n"
        let parsed = try SysctlText.parse(Array(sysctl.utf8), source: "s")
        #expect(parsed.maximum == 262_144 && parsed.timeouts == [.tcpCloseWait: 3600])
        let grep = "/proc/sys/net/netfilter/nf_conntrack_buckets:65536\n/proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream:180\n"
        let grepped = try SysctlText.parse(Array(grep.utf8), source: "g")
        #expect(grepped.buckets == 65_536 && grepped.timeouts == [.udpStream: 180])
        #expect { try SysctlText.parse(Array("net.netfilter.nf_conntrack_max = lots\n".utf8), source: "b") } throws: { "\($0)".contains("b:1") }
        #expect { try SysctlText.parse(Array("net.ipv4.ip_forward = 1\n".utf8), source: "n") } throws: { "\($0)".contains("no nf_conntrack sysctl") }
    }
}

extension PressureTests {
    @Test func everyTimeoutSettingHasItsOwnSlot() {
        #expect(TimeoutSetting.allCases.sorted() == TimeoutSetting.allCases, "the slots follow the declaration order")
        #expect(Set(TimeoutSetting.allCases.map(\.kernelDefault)).isSubset(of: Set(timeoutCandidates + [432_000])), "every default is a candidate")
    }
}

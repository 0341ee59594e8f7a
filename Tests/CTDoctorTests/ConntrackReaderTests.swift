import Conntrack
import KernelIO
import Live
import Netlink
import SystemPackage
import TestSupport
import Testing

/// The reader's retry and fallback logic against scripted kernel answers.
@Suite("Conntrack reader")
struct ConntrackReaderTests {
    let a = KernelReplies.sampleEntry(id: 1, port: 40001)
    let b = KernelReplies.sampleEntry(id: 2, port: 40002, state: .closeWait)
    let c = KernelReplies.sampleEntry(id: 3, port: 40003)
    let d = KernelReplies.sampleEntry(id: 4, port: 40004, state: .timeWait)

    /// A reader whose every new socket is the next scripted transport.
    func reader(
        _ transports: [ScriptedTransport],
        fallback: @escaping @Sendable () throws -> [UInt8] = { throw KernelIOError("open", subject: "/proc/net/nf_conntrack", errno: .permissionDenied) },
        requestedBuffers: Locked<[Int?]> = Locked([])
    ) -> ConntrackReader {
        let queue = Locked(transports)
        return ConntrackReader(
            transportFactory: { bytes in
                requestedBuffers.update { $0.append(bytes) }
                return queue.update { $0.removeFirst() }
            },
            fallbackFile: fallback)
    }

    @Test func deliversEachEntryOnceFromAMultiDatagramDump() throws {
        let transport = ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b])), .datagram(KernelReplies.conntrack([c]) + KernelReplies.done())]])
        let (entries, report) = try reader([transport]).entries()
        #expect(entries.map(\.id) == [1, 2, 3])
        #expect(report == ConntrackReadReport(source: .netlink, matched: 3, passes: 1, consistent: true))
        #expect(transport.requests.count == 1)
    }

    @Test func retriesAnInterruptedDumpWithoutDeliveringAnEntryTwice() throws {
        // Pass 1: a and b arrive, then the kernel flags the dump interrupted. Pass 2 sees
        // a table where a is gone, b stayed and c and d appeared.
        let first = ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b, c], interruptedFrom: 2) + KernelReplies.done())]])
        let second = ScriptedTransport([[.datagram(KernelReplies.conntrack([b, c, d]) + KernelReplies.done())]])
        let (entries, report) = try reader([first, second]).entries()
        #expect(entries.map(\.id) == [1, 2, 3, 4])
        #expect(report.passes == 2 && report.consistent)
    }

    /// Conntrack ids are 32-bit hashes and repeat in large tables: a new flow that shares
    /// an earlier pass's id is still delivered.
    @Test func aRetryKeepsANewFlowThatSharesAnEarlierEntrysID() throws {
        let twin = KernelReplies.sampleEntry(id: 1, port: 40099)
        let first = ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b], interruptedFrom: 1) + KernelReplies.done())]])
        let second = ScriptedTransport([[.datagram(KernelReplies.conntrack([a, twin, b]) + KernelReplies.done())]])
        let (entries, _) = try reader([first, second]).entries()
        #expect(entries.map(\.original.sourcePort).sorted() == [40001, 40002, 40099])
    }

    @Test func saysSoWhenTheTableNeverHoldsStill() throws {
        let transports = (0..<4).map { _ in
            ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b], interruptedFrom: 0) + KernelReplies.done())]])
        }
        let (entries, report) = try reader(transports).entries()
        #expect(entries.map(\.id) == [1, 2])
        #expect(report.passes == 4 && !report.consistent && !report.stoppedRetrying)
        #expect(report.interruption == "the conntrack table changed during every dump pass (4, NLM_F_DUMP_INTR)")
    }

    /// Past what the passes may remember, an interrupted dump is not retried: the one
    /// pass is kept and reported inconsistent, and no second socket is opened.
    @Test func aTablePastTheRememberedLimitIsNotRetriedButSaysSo() throws {
        let interrupted = ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b, c], interruptedFrom: 1) + KernelReplies.done())]])
        let spare = ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b, c, d]) + KernelReplies.done())]])
        var limited = reader([interrupted, spare])
        limited.maximumRememberedEntries = 2
        let (entries, report) = try limited.entries()
        #expect(entries.map(\.id) == [1, 2, 3])
        #expect(report.passes == 1 && !report.consistent && report.stoppedRetrying)
        #expect(report.interruption?.contains("not dumped again") == true)
        #expect(spare.requests.isEmpty)

        // Under the limit the same dump is retried and made whole.
        let (retried, retriedReport) = try reader([
            ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b, c], interruptedFrom: 1) + KernelReplies.done())]]),
            ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b, c, d]) + KernelReplies.done())]]),
        ]).entries()
        #expect(retried.map(\.id) == [1, 2, 3, 4])
        #expect(retriedReport.passes == 2 && retriedReport.consistent)
    }

    /// The limit reached in a retry: what the first pass listed is still skipped, the
    /// rest is listed once, and no third pass is made.
    @Test func theLimitReachedInARetryStillListsEachEntryOnce() throws {
        let third = ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b, c, d]) + KernelReplies.done())]])
        var limited = reader([
            ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b], interruptedFrom: 1) + KernelReplies.done())]]),
            ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b, c, d], interruptedFrom: 3) + KernelReplies.done())]]),
            third,
        ])
        limited.maximumRememberedEntries = 3
        let (entries, report) = try limited.entries()
        #expect(entries.map(\.id) == [1, 2, 3, 4])
        #expect(report.passes == 2 && !report.consistent && report.stoppedRetrying)
        #expect(third.requests.isEmpty)
    }

    @Test func anOverrunPastTheRememberedLimitFailsNamingWhy() throws {
        let overrun = ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b, c])), .failure(.noBufferSpace)]])
        var limited = reader([overrun])
        limited.maximumRememberedEntries = 2
        #expect {
            try limited.entries()
        } throws: { error in
            "\(error)".contains("after 3 entries, more than a retry can skip without listing one twice")
        }
    }

    @Test func growsTheReceiveBufferAfterAnOverrun() throws {
        let overrun = ScriptedTransport([[.datagram(KernelReplies.conntrack([a])), .failure(.noBufferSpace)]])
        let retry = ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b]) + KernelReplies.done())]])
        let buffers = Locked<[Int?]>([])
        let (entries, report) = try reader([overrun, retry], requestedBuffers: buffers).entries()
        #expect(entries.map(\.id) == [1, 2])
        #expect(report.passes == 2)
        let sizes = buffers.get()
        #expect(sizes.count == 2 && sizes[0] == nil && (sizes[1] ?? 0) > 1 << 20)
    }

    @Test func fallsBackToTheProcFileWhenNetlinkNeedsCapNetAdmin() throws {
        let refused = ScriptedTransport([[.datagram(KernelReplies.error(.notPermitted))]])
        let proc = try Fixture.bytes("captured/proc-nf_conntrack.txt")
        let (entries, report) = try reader([refused], fallback: { proc }).entries(matching: ConntrackFilter(replySourcePort: 15001))
        #expect(entries.count == 3)
        guard case .procFile(let reason) = report.source else {
            Issue.record("expected the proc fallback, got \(report.source)")
            return
        }
        #expect(reason.contains("CAP_NET_ADMIN") && reason.contains("EPERM"))
    }

    @Test func namesCapNetAdminWhenTheFallbackFailsToo() throws {
        let refused = ScriptedTransport([[.datagram(KernelReplies.error(.notPermitted))]])
        #expect {
            _ = try reader([refused]).entries()
        } throws: { error in
            let text = "\(error)"
            return text.contains("CAP_NET_ADMIN") && text.contains("/proc/net/nf_conntrack") && !text.contains("\n")
        }
    }

    @Test func reportsConntrackMissingWhenNeitherSourceExists() throws {
        let refused = ScriptedTransport([[.datagram(KernelReplies.error(.notPermitted))]])
        let missing: @Sendable () throws -> [UInt8] = {
            throw KernelIOError("open", subject: "/proc/net/nf_conntrack", errno: .noSuchFileOrDirectory)
        }
        #expect(throws: ConntrackReadError.self) { _ = try reader([refused], fallback: missing).entries() }
        do { _ = try reader([ScriptedTransport([[.datagram(KernelReplies.error(.notPermitted))]])], fallback: missing).entries() } catch {
            #expect("\(error)".contains("nf_conntrack module"))
        }
    }

    @Test func countsWithoutDecodingAndSkipsStaleReplies() throws {
        // The stale datagram answers an older request: it must not be counted.
        var stale = KernelReplies.conntrack([a, b, c])
        stale[8] = 0xEE
        let transport = ScriptedTransport([[.staleDatagram(stale), .datagram(KernelReplies.conntrack([a, b]) + KernelReplies.done())]])
        let report = try reader([transport]).count()
        #expect(report.matched == 2)
    }

    @Test func failsOnMalformedDumpData() throws {
        var broken = KernelReplies.conntrack([a])
        broken[20 + 4] = 0xFF  // first attribute's length now overruns the message
        let transport = ScriptedTransport([[.datagram(broken + KernelReplies.done())]])
        #expect(throws: ConntrackReadError.self) { _ = try reader([transport]).entries() }
    }

    @Test func appliesTheFilterBeforeDelivering() throws {
        let transport = ScriptedTransport([[.datagram(KernelReplies.conntrack([a, b, c, d]) + KernelReplies.done())]])
        let (entries, report) = try reader([transport]).entries(matching: ConntrackFilter(states: [.tcp(.closeWait), .tcp(.timeWait)]))
        #expect(entries.map(\.id) == [2, 4] && report.matched == 2)
    }

    // The kernel's answers when conntrack is not loaded: nfnetlink answers EINVAL for
    // a subsystem nobody registered (nf_conntrack_netlink), and without nf_conntrack
    // there is no /proc/net/nf_conntrack either.
    @Test func withoutTheModulesItSaysConntrackIsNotLoaded() throws {
        let refused = ScriptedTransport([[.datagram(KernelReplies.error(.invalidArgument))]])
        let missing: @Sendable () throws -> [UInt8] = {
            throw KernelIOError("open", subject: "/proc/thread-self/net/nf_conntrack", errno: .noSuchFileOrDirectory)
        }
        #expect {
            try reader([refused], fallback: missing).entries()
        } throws: { error in
            "\(error)".contains("is the nf_conntrack module loaded?") && "\(error)".contains("nf_conntrack")
        }
    }

    @Test func withoutCtnetlinkButWithProcItReadsProcAndSaysWhy() throws {
        let refused = ScriptedTransport([[.datagram(KernelReplies.error(.invalidArgument))]])
        let line = "ipv4     2 tcp      6 50 CLOSE_WAIT src=10.66.0.5 dst=10.96.0.10 sport=40001 dport=80 src=127.0.0.1 dst=10.66.0.5 sport=15001 dport=40001 [ASSURED] mark=0 zone=0 use=2\n"
        let (entries, report) = try reader([refused], fallback: { Array(line.utf8) }).entries()
        #expect(entries.count == 1)
        guard case .procFile(let reason) = report.source else {
            Issue.record("expected the /proc fallback, got \(report.source)")
            return
        }
        #expect(reason.contains("EINVAL") && reason.contains("nf_conntrack_netlink"))
    }

    /// A flow's start (nf_conntrack_timestamp) and its connlabel bits come through the
    /// decoder and out as JSON.
    @Test func decodesTheFlowsStartAndItsLabels() throws {
        var entry = KernelReplies.sampleEntry(id: 7, port: 40001)
        entry.startNanoseconds = 1_796_123_470_123_456_789
        entry.labels = [0, 3, 65, 127]
        let decoded = try #require(try ConntrackMessageDecoder.decodeDump(KernelReplies.conntrackMessage(entry)).first)
        #expect(decoded.startNanoseconds == entry.startNanoseconds)
        #expect(decoded.labels == [0, 3, 65, 127])
        #expect(decoded == entry)
    }
}

@Suite("Errors keep their cause")
struct ErrorCauseTests {
    @Test func theErrnoBehindAReadersErrorIsFoundThroughItsWrapping() {
        let refused = ConntrackReadError.dumpFailed(cause: NetlinkKernelError(errno: .notPermitted))
        #expect(refused.underlyingErrno == .notPermitted)
        let gone = SocketReadError.unreadable(cause: KernelIOError("read", subject: "/proc/net/tcp", errno: .noSuchFileOrDirectory), while: "reading /proc/net/tcp")
        #expect(gone.underlyingErrno == .noSuchFileOrDirectory && "\(gone)".contains("ENOENT"))
        #expect(ConntrackReadError.dumpFailed(cause: nil, note: "no pass completed").underlyingErrno == nil)
    }
}

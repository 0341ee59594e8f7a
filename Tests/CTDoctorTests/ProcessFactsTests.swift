import Live
import Testing

@Suite("/proc/PID texts")
struct ProcessFactsTests {
    @Test func readsStatPastACommandWithSpacesAndParentheses() throws {
        let stat = try #require(ProcText.stat(try Fixture.bytes("kernel/proc-pid-stat.txt")))
        #expect(stat.parent == 20459 && stat.startTicks == 308_063)
        #expect(ProcText.stat(Array("42 (x) S".utf8)) == nil)
    }

    @Test func readsOneEnvironmentVariable() {
        let environ = Array("PATH=/bin\u{0}ISTIO_META_IDLE_TIMEOUT=90s\u{0}ISTIO_META_X=1\u{0}".utf8)
        #expect(ProcText.environmentValue("ISTIO_META_IDLE_TIMEOUT", in: environ) == "90s")
        #expect(ProcText.environmentValue("ISTIO_META", in: environ) == nil)
        #expect(ProcText.uptime(Array("12345.67 2345.89\n".utf8)) == 12345.67)
    }
}

import Sockets
import Testing

/// sockstat and sockstat6 as the kernel prints them (net/ipv4/proc.c sockstat_seq_show,
/// net/ipv6/proc.c sockstat6_seq_show), and what a tenant-controlled or truncated copy
/// may hold instead.
@Suite("sockstat")
struct SockstatParserTests {
    @Test func readsTheTCPLineOfEitherFile() {
        let v4 = "sockets: used 291\nTCP: inuse 17 orphan 0 tw 4 alloc 23 mem 2\nUDP: inuse 3 mem 1\nUDPLITE: inuse 0\nRAW: inuse 0\nFRAG: inuse 0 memory 0\n"
        #expect(SockstatParser.tcpInUse(Array(v4.utf8)) == 17)
        let v6 = "TCP6: inuse 5\nUDP6: inuse 2\nUDPLITE6: inuse 0\nRAW6: inuse 0\nFRAG6: inuse 0 memory 0\n"
        #expect(SockstatParser.tcpInUse(Array(v6.utf8)) == 5)
    }

    @Test(arguments: [
        "", "sockets: used 3\n", "TCP: inuse\n", "TCP: inuse -4 orphan 0\n", "TCP: inuse 99999999999999999999999 orphan 0\n",
        "TCP: orphan 0 tw 0\n", "TCPX: inuse 4\n",
    ])
    func aFileWithoutAReadableCountGivesNone(text: String) {
        #expect(SockstatParser.tcpInUse(Array(text.utf8)) == nil)
    }
}

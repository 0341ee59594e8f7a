import TestSupport
import Testing

/// Exit codes and messages, as scripts see them. Needs no privilege.
@Suite("Command line")
struct CommandLineTests {
    @Test(arguments: [["--help"], ["conntrack", "--help"], ["sockets", "--help"]])
    func helpExitsZeroWithAnExample(arguments: [String]) throws {
        let result = try Shell.run([Binary.ctdoctor] + arguments)
        #expect(result.status == 0)
        #expect(result.standardOutput.contains("Examples:"))
        #expect(result.standardOutput.contains("ctdoctor "))
    }

    @Test(arguments: [
        (["conntrack", "--port", "70000"], "--port takes a port number from 1 to 65535"),
        (["conntrack", "--proto", "bogus"], "--proto takes a protocol name"),
        (["conntrack", "--state", "NOPE"], "is not a tcp conntrack state"),
        (["sockets", "--state", "NOPE"], "is not a TCP state"),
        (["conntrack", "--format", "xml"], "format"),
        (["frobnicate"], "Unexpected argument"),
        (["diagnose", "--idle-timeout", "99999999999999999h"], "--idle-timeout takes a duration"),
        (["diagnose", "--connect-rate", "1e19"], "--connect-rate takes connects per second from 0 to 1e9"),
        (["export", "--every", "1e-320"], "--every"),
        (["leaks", "--reap", "--min-idle", "inf"], "--min-idle takes a duration"),
        (["diagnose", "--stall-after", "nan"], "--stall-after takes a duration"),
        (["watch", "--format", "json"], "use --format ndjson"),
        (["watch", "--duration", "0"], "--duration takes a duration"),
        (["pressure", "--top", "0"], "--top takes 1 to 1000"),
    ])
    func usageErrorsExitTwoOnOneLine(arguments: [String], message: String) throws {
        let result = try Shell.run([Binary.ctdoctor] + arguments)
        #expect(result.status == 2)
        #expect(result.standardOutput.isEmpty)
        #expect(result.standardError.contains(message), "\(result.standardError)")
        // README's format: one line, `ctdoctor: error: …`, no usage block to strip.
        #expect(result.standardError.hasPrefix("ctdoctor: error: ") && result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
    }

    @Test func versionPrints() throws {
        let result = try Shell.run([Binary.ctdoctor, "--version"])
        #expect(result.status == 0 && !result.standardOutput.isEmpty)
    }
}

import Foundation
import KernelIO
import TestSupport
import Testing

/// A fresh machine has only what scripts/lib.sh installs: every program ctdoctor
/// (`SystemProgram`) or its tests (`TestProgram`) run must come from a package that list
/// names, or from one Debian marks essential. A program installed by hand where the
/// suite last passed fails here, not on the next new machine.
@Suite("install list")
struct InstallListTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// CTDOCTOR_PACKAGES, as bash reads scripts/lib.sh.
    static func installList() throws -> Set<String> {
        let script = root.appendingPathComponent("scripts/lib.sh").path
        let listed = try Shell.check(["bash", "-c", "source \"$0\" && printf '%s\\n' \"${CTDOCTOR_PACKAGES[@]}\"", script])
        return Set(listed.split(separator: "\n").map(String.init))
    }

    /// The package dpkg says installed `path`: with merged /usr a file dpkg recorded as
    /// /sbin/ip is found at /usr/sbin/ip, so both spellings are asked.
    static func owningPackage(_ path: String) throws -> String? {
        let real = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        var candidates = [path, real]
        for candidate in [path, real] where candidate.hasPrefix("/usr/") { candidates.append(String(candidate.dropFirst(4))) }
        for candidate in [path, real] where !candidate.hasPrefix("/usr/") { candidates.append("/usr" + candidate) }
        for candidate in candidates {
            let result = try Shell.run(["sh", "-c", "dpkg-query -S \"$0\" 2>/dev/null", candidate])
            // "diversion by dash from: /bin/sh" lines name a diversion, not the owner.
            if result.succeeded,
                let line = result.standardOutput.split(separator: "\n").first(where: { !$0.hasPrefix("diversion by") }),
                let colon = line.firstIndex(of: ":")
            {
                return String(line[..<colon]).split(separator: ",").first.map { String($0).trimmingCharacters(in: .whitespaces) }
            }
        }
        return nil
    }

    static func isEssential(_ package: String) throws -> Bool {
        try Shell.run(["sh", "-c", "dpkg-query -W -f='${Essential}' \"$0\"", package]).standardOutput == "yes"
    }

    /// The file `program` runs from: `type -P` skips shell builtins (`true`), which
    /// `command -v` would name instead of /usr/bin/true.
    static func locate(_ program: String) throws -> String? {
        let found = try Shell.run(["bash", "-c", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin type -P \"$0\"", program])
        let path = found.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        return found.succeeded && path.hasPrefix("/") ? path : nil
    }

    /// The packages `package` depends on directly (python3 → python3-minimal, which holds
    /// the interpreter itself).
    static func dependencies(of package: String) throws -> Set<String> {
        let depends = try Shell.run(["sh", "-c", "dpkg-query -W -f='${Depends},${Pre-Depends}' \"$0\"", package]).standardOutput
        return Set(depends.split(whereSeparator: { $0 == "," || $0 == "|" }).compactMap {
            $0.split(separator: " ").first.map { String($0.split(separator: ":").first ?? $0) }
        })
    }

    static var everyProgram: [(name: String, package: String)] {
        SystemProgram.allCases.map { ($0.rawValue, $0.debianPackage) } + TestProgram.packages.map { ($0.key, $0.value) }
    }

    @Test func everyProgramRunComesFromAPackageTheInstallListNames() throws {
        let list = try Self.installList()
        #expect(list.contains("nftables"), "diagnose runs nft: \(list.sorted())")
        for (name, declared) in Self.everyProgram.sorted(by: { $0.name < $1.name }) {
            guard let path = try Self.locate(name) else {
                Issue.record("\(name) is not installed: \(declared) is missing from this machine")
                continue
            }
            guard let package = try Self.owningPackage(path) else {
                Issue.record("\(name) (\(path)) belongs to no Debian package: installed by hand, so a fresh machine lacks it")
                continue
            }
            let pulledIn = try Self.dependencies(of: declared)
            #expect(package == declared || pulledIn.contains(package), "\(name) comes from \(package), not \(declared) as declared")
            let essential = try Self.isEssential(declared)
            #expect(list.contains(declared) || essential, "\(name) comes from \(declared), which scripts/lib.sh does not install")
        }
    }

    /// The registry is the gate: neither ctdoctor nor the tests can run a program it
    /// does not name.
    @Test func undeclaredProgramsAreRefused() throws {
        #expect(systemProgram("sh") == nil, "ctdoctor runs only SystemProgram's programs")
        #expect(systemProgram("ip") != nil)
        #expect(throws: TestProgram.Undeclared.self) { try Shell.run(["dpkg-deb", "--version"]) }
    }
}

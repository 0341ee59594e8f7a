import Foundation
import KernelIO

/// What "exec into a pod" costs before ctdoctor says anything: the bytes copied with
/// `kubectl cp` or pulled in a debug image (the stripped binary, the release tarball),
/// and the time from exec to output beside the tools people run there (`ss -tan`,
/// `conntrack -C`), in an empty namespace so the work itself is nil.
struct SizeAndStart {
    let binary: String
    /// A release tarball to weigh (scripts/release's output); nil when none was built.
    let tarball: String?

    func report(measure: ([(String, [String])]) throws -> [RunBenchmark.Row], table: ([RunBenchmark.Row], String) -> String) throws -> String {
        var text = "## Size and start (what exec into a pod costs)\n"
        let stripped = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-bench-stripped-\(getpid())").path
        defer { unlink(stripped) }
        _ = try BenchNamespace.run(["strip", "--strip-unneeded", "-o", stripped, binary])
        let needed = try BenchNamespace.run(["readelf", "-d", stripped]).split(separator: "\n").compactMap { line -> String? in
            guard line.contains("(NEEDED)"), let open = line.firstIndex(of: "["), let close = line.lastIndex(of: "]") else { return nil }
            return String(line[line.index(after: open)..<close])
        }
        let icu = try BenchNamespace.run(["sh", "-c", "grep -c -a icudt \"$0\" || true", stripped]).trimmingCharacters(in: .whitespacesAndNewlines)
        text += "| artifact | size | target |\n|---|---|---|\n"
        let runtime = needed.contains { $0.hasPrefix("libswiftCore") } ? "dynamic Swift runtime (not the release build)" : "static Swift runtime"
        text += String(format: "| ctdoctor, %@, stripped | %.1f MB | <= 20 MB |\n", runtime, Double(try size(of: stripped)) / 1e6)
        if let tarball {
            text += String(format: "| release tarball (%@) | %.1f MB | <= 8 MB |\n", (tarball as NSString).lastPathComponent, Double(try size(of: tarball)) / 1e6)
            let xz = tarball.hasSuffix(".tar.gz") ? String(tarball.dropLast(3)) + ".xz" : nil
            if let xz, FileManager.default.fileExists(atPath: xz) {
                text += String(format: "| the same, xz (%@) | %.1f MB | <= 6 MB |\n", (xz as NSString).lastPathComponent, Double(try size(of: xz)) / 1e6)
            }
        } else {
            text += "| release tarball | not built (scripts/release, then --tarball dist/ctdoctor-*.tar.gz) | <= 8 MB |\n"
        }
        text += "Shared libraries it needs: \(needed.joined(separator: ", ")); ICU data blocks in it: \(icu).\n\n"

        let empty = try BenchNamespace(name: "ctd-bench-empty-\(getpid())")
        defer { empty.destroy() }
        let rows = try measure([
            ("ctdoctor --version", empty.exec([binary, "--version"])),
            ("ctdoctor diagnose, empty namespace", empty.exec([binary, "diagnose", "--fail-on", "never"])),
            ("ss -tan, empty namespace", empty.exec(["ss", "-tan"])),
            ("conntrack -C, empty namespace", empty.exec(["conntrack", "-C"])),
        ])
        text += table(rows, "ss -tan, empty namespace")
        return text
    }

    private func size(of path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as? NSNumber)?.intValue ?? 0
    }
}

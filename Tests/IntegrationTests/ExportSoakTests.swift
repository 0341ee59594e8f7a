import Foundation
import Lab
import TestSupport
import Testing

/// `export --every` as a DaemonSet runs it for weeks: repeated runs against the lab
/// (lookups, socket walks, rule listings spawned each time) must not grow its memory or
/// its open descriptors.
@Suite("export soak", .enabled(if: Privileges.shouldRunPrivilegedTests), .serialized)
final class ExportSoakTests {
    let lab: HalfCloseLab
    let directory: URL

    init() throws {
        lab = try HalfCloseLab(name: TestNamespace.uniqueName("soak"), closeWaitSeconds: 2, say: { _ in })
        try lab.build()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ctdoctor-soak-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        lab.tearDown()
        try? FileManager.default.removeItem(at: directory)
    }

    struct Sample {
        var run: Double
        var residentKiB: Int
        var descriptors: Int
    }

    func sample(_ pid: Int32, run: Double) -> Sample? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]),
            let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        else { return nil }
        return Sample(run: run, residentKiB: kib, descriptors: fds.count)
    }

    @Test func repeatedRunsKeepMemoryAndDescriptorsFlat() throws {
        let output = directory.appendingPathComponent("ctdoctor.prom").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binary.ctdoctor)
        process.arguments = ["export", "--netns", lab.lab.name, "--every", "1s", "--output", output]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        // One sample per run, taken between runs (when the file's timestamp moves).
        var samples: [Sample] = []
        var lastRun = 0.0
        let deadline = Date().addingTimeInterval(60)
        while samples.count < 20 && Date() < deadline {
            usleep(100_000)
            guard let parsed = try? ParsedExposition(file: output), let run = parsed.value("ctdoctor_last_run_timestamp_seconds"),
                run != lastRun
            else { continue }
            #expect(parsed.value("ctdoctor_run_success") == 1)
            #expect(parsed.value("ctdoctor_half_closed_sockets", ["class": "leaked"]).map { $0 >= 1 } == true)
            lastRun = run
            usleep(300_000)  // past the write, into the sleep
            if let sample = sample(process.processIdentifier, run: run) { samples.append(sample) }
        }
        try #require(samples.count >= 15, "runs seen: \(samples.count)")
        // After warm-up (allocator arenas, lazily loaded state), nothing may grow.
        let settled = Array(samples.dropFirst(4))
        let first = settled.first!, last = settled.last!
        #expect(last.descriptors == first.descriptors, "descriptors: \(settled.map(\.descriptors))")
        #expect(last.residentKiB - first.residentKiB < 1024, "RSS KiB over \(settled.count) runs: \(settled.map(\.residentKiB))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["ctdoctor.prom"], "no temporary files left")
    }
}

import Foundation
import Testing

/// The architecture Package.swift states, checked on Package.swift itself: a module that
/// judges, formats or reads copies must not gain a path to the kernel, and no target may
/// use one listed after it (the file reads as the data flow).
@Suite("architecture: Package.swift reads as the data flow")
struct ArchitectureTests {
    /// Each target's name and the targets (not products) it names, in file order.
    func targets() throws -> [(name: String, dependencies: [String])] {
        let text = String(decoding: try Fixture.repositoryFile("Package.swift"), as: UTF8.self)
        guard let start = text.range(of: "targets: [\n") else { throw Missing(what: "the targets list") }
        var found: [(String, [String])] = []
        var rest = text[start.upperBound...]
        while let declaration = rest.range(of: #"\.(target|executableTarget|testTarget|systemLibrary)\(\s*name: "([A-Za-z-]+)""#, options: .regularExpression) {
            let header = rest[declaration]
            let name = String(header[header.range(of: #""[A-Za-z-]+""#, options: .regularExpression)!].dropFirst().dropLast())
            rest = rest[declaration.upperBound...]
            // The dependencies of this declaration: up to the next one.
            let end = rest.range(of: #"\.(target|executableTarget|testTarget|systemLibrary)\("#, options: .regularExpression)?.lowerBound ?? rest.endIndex
            var body = rest[..<end]
            var dependencies: [String] = []
            if let list = body.range(of: "dependencies: [") {
                body = body[list.upperBound...]
                let close = body.firstIndex(of: "]") ?? body.endIndex
                // `.product(name: ...)` entries are packages', not targets.
                let items = body[..<close].replacingOccurrences(of: #"\.product\([^)]*\)"#, with: "", options: .regularExpression)
                dependencies = items.split(separator: ",").compactMap { item in
                    let trimmed = item.trimmingCharacters(in: .whitespacesAndNewlines)
                    return trimmed.hasPrefix("\"") ? String(trimmed.dropFirst().dropLast()) : nil
                }
            }
            found.append((name, dependencies))
        }
        return found
    }

    struct Missing: Error { var what: String }

    @Test func noTargetUsesOneListedAfterIt() throws {
        let all = try targets()
        #expect(all.count > 20)
        var seen: Set<String> = []
        for target in all {
            for dependency in target.dependencies {
                #expect(seen.contains(dependency), "\(target.name) uses \(dependency), listed after it")
            }
            seen.insert(target.name)
        }
    }

    @Test func onlyLiveAndTheOrchestratorsReachTheKernel() throws {
        let all = Dictionary(try targets().map { ($0.name, $0.dependencies) }, uniquingKeysWith: { first, _ in first })
        let kernel: Set = ["KernelIO", "CLinux", "CZlib", "Live"]
        for pure in ["NetCore", "JSON", "Netlink", "Conntrack", "Sockets", "NodeSweep", "Diagnosis", "Pressure", "YAML", "MeshLint", "Formats", "Rendering", "Export", "Offline"] {
            let dependencies = try #require(all[pure], "\(pure) is not a target")
            // Transitively: a pure module may not reach the kernel through another.
            var reached: Set<String> = []
            var queue = dependencies
            while let next = queue.popLast() {
                if reached.insert(next).inserted { queue += all[next] ?? [] }
            }
            #expect(reached.isDisjoint(with: kernel), "\(pure) reaches \(reached.intersection(kernel).sorted())")
        }
        #expect(all["KernelIO"]?.contains("CLinux") == true)
    }
}

// swift-tools-version:6.0
import PackageDescription

// Data flows one way; each target below uses only targets listed above it:
//   kernel ─▶ KernelIO: system calls and bytes, the only importer of the C boundary (CLinux, CZlib)
//   values and pure codecs: NetCore, JSON, Netlink, Conntrack, Sockets, NodeSweep (no kernel)
//   ─▶ Diagnosis, Pressure: judgements on those values (no kernel)
//   ─▶ Live: every reader of the live kernel, and the collectors that feed Diagnosis and Pressure
//   ─▶ YAML (libyaml, a pure parser: CYAML) ─▶ MeshLint: manifests (no kernel)
//   ─▶ Formats (every ctdoctor.*.v1 record), Rendering (text), Export (metrics) ─▶ Offline (copies)
//   ─▶ Lab, CTDoctorKit, ctdoctor: the orchestrators, wiring readers to judgements to outputs.
// Only Live and the orchestrators may touch the kernel (KernelIO in their lists); the
// modules that judge, format or read copies name no KernelIO, so they stay pure.
// Modules off the hot paths (command-line wiring, the lab, lint, diagnosis, which works on
// the suspects and not on whole tables, export) are optimised for size: the release
// tarball must fit a debug image (ReleaseTarballTests); so is Live, whose dump drivers
// hand each datagram to the decoders (measured: `conntrack --format ndjson` over 262k
// entries took the same time). The decoders, the listings' writers and the pressure pass,
// which run once per entry, keep -O.
let sizeOptimised: [SwiftSetting] = [.unsafeFlags(["-Osize"], .when(configuration: .release))]

let package = Package(
    name: "ctdoctor",
    products: [
        .executable(name: "ctdoctor", targets: ["ctdoctor"]),
        .executable(name: "ctdoctor-bench", targets: ["ctdoctor-bench"]),
        // The library: `import CTDoctorKit` for its entry point (CTDoctor) and the values it
        // returns; the modules stay listed for programs that want one part.
        .library(
            name: "CTDoctorKit",
            targets: [
                "CTDoctorKit", "NetCore", "JSON", "Netlink", "KernelIO", "Conntrack", "Sockets", "Diagnosis", "Live",
                "YAML", "MeshLint", "Lab", "Formats", "Rendering", "Export", "Offline", "NodeSweep",
            ]
        ),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        // Tests only: the reference the YAML module is compared with (the product does not
        // link Yams, which brings Foundation and ICU with it).
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The C boundary, one system library per job: the kernel's interfaces (syscalls
        // glibc hides, libmnl) and zlib. Only KernelIO imports them.
        .systemLibrary(
            name: "CLinux",
            pkgConfig: "libmnl",
            providers: [.apt(["libmnl-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // libyaml, the YAML parser (events in, no I/O): only YAML imports it.
        .systemLibrary(
            name: "CYAML",
            pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"])]
        ),
        .target(
            name: "NetCore"
        ),
        // The one JSON reader (located errors, exact integers, streamed arrays), the value
        // writer, the byte-level record writer and the streaming listing around them.
        .target(
            name: "JSON",
            dependencies: ["NetCore"]
        ),
        .target(
            name: "Netlink",
            dependencies: [.product(name: "SystemPackage", package: "swift-system")]
        ),
        .target(
            name: "KernelIO",
            dependencies: [
                "CLinux", "CZlib", "Netlink", "NetCore",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "Conntrack",
            dependencies: ["NetCore", "Netlink"]
        ),
        .target(
            name: "Sockets",
            dependencies: ["NetCore", "Netlink"]
        ),
        // nf_tables rules over netlink, and which of them drop conntrack's INVALID packets.
        .target(
            name: "Nftables",
            dependencies: ["Netlink"]
        ),
        .target(
            name: "Diagnosis",
            dependencies: ["NetCore", "Conntrack", "Sockets"],
            swiftSettings: sizeOptimised
        ),
        // What fills a conntrack table: one pass over its entries, the kernel's counters over
        // an interval, and the findings both give.
        .target(
            name: "Pressure",
            dependencies: ["NetCore", "JSON", "Conntrack", "Diagnosis"]
        ),
        .target(
            name: "NodeSweep",
            dependencies: ["NetCore", "JSON", "Netlink"],
            swiftSettings: sizeOptimised
        ),
        // Every reader of the live kernel: conntrack dumps and lookups, sock_diag, the reaper,
        // the /proc scans, the node's namespaces, and the collector that runs them for a diagnosis.
        .target(
            name: "Live",
            dependencies: [
                "NetCore", "Netlink", "KernelIO", "Conntrack", "Sockets", "Nftables", "Diagnosis", "NodeSweep", "Pressure",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: sizeOptimised
        ),
        // YAML documents as trees with line numbers, aliases counted before they expand.
        .target(
            name: "YAML",
            dependencies: ["CYAML"]
        ),
        .target(
            name: "MeshLint",
            dependencies: ["NetCore", "Diagnosis", "YAML"],
            swiftSettings: sizeOptimised
        ),
        // Every documented JSON schema, its writer and (where ctdoctor reads it back) its
        // reader side by side.
        .target(
            name: "Formats",
            dependencies: ["NetCore", "JSON", "Conntrack", "Sockets", "Diagnosis", "MeshLint", "Pressure"]
        ),
        // What people read: tables and reports.
        .target(
            name: "Rendering",
            dependencies: ["NetCore", "JSON", "Conntrack", "Sockets", "Diagnosis", "MeshLint", "Pressure"]
        ),
        .target(
            name: "Export",
            dependencies: ["Conntrack", "Diagnosis", .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: sizeOptimised
        ),
        // Tables copied from elsewhere, recognised by content; ctdoctor's own listings read
        // back through Formats.
        .target(
            name: "Offline",
            dependencies: ["NetCore", "JSON", "Conntrack", "Sockets", "Diagnosis", "Formats"],
            swiftSettings: sizeOptimised
        ),
        // The lab builds pod-shaped namespaces and diagnoses them: an orchestrator, like
        // the command line, so it sits after what it uses.
        .target(
            name: "Lab",
            dependencies: ["NetCore", "JSON", "Netlink", "KernelIO", "Conntrack", "Sockets", "Diagnosis", "Live", "Formats", "Pressure"],
            swiftSettings: sizeOptimised
        ),
        // The documented entry point of the library (its DocC catalog beside it).
        .target(
            name: "CTDoctorKit",
            dependencies: ["NetCore", "KernelIO", "Conntrack", "Sockets", "Diagnosis", "Live", "Formats", "Rendering", "Export"],
            swiftSettings: sizeOptimised
        ),
        .executableTarget(
            name: "ctdoctor",
            dependencies: [
                "NetCore", "JSON", "KernelIO", "Conntrack", "Sockets", "Diagnosis", "Live", "MeshLint", "Lab", "Formats",
                "Rendering", "Export", "Offline", "NodeSweep", "Pressure",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: sizeOptimised
        ),
        // libFuzzer targets for every parser of outside input; scripts/fuzz builds and runs them.
        .executableTarget(
            name: "ctdoctor-fuzz",
            dependencies: [
                "NetCore", "JSON", "Netlink", "Conntrack", "Sockets", "Nftables", "Diagnosis", "Live", "NodeSweep", "Formats", "Offline",
                "YAML", "MeshLint", "Pressure", "Export",
            ],
            path: "Fuzz/ctdoctor-fuzz",
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        .executableTarget(
            name: "ctdoctor-bench",
            dependencies: [
                "NetCore", "Netlink", "KernelIO", "Conntrack", "Sockets", "Nftables", "Diagnosis", "Live",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/ctdoctor-bench"
        ),
        // libnetfilter_conntrack, the tests' reference decoder for ctnetlink: the product
        // does not link it.
        .systemLibrary(
            name: "CNetfilterConntrack",
            path: "Tests/CNetfilterConntrack",
            pkgConfig: "libnetfilter_conntrack",
            providers: [.apt(["libnetfilter-conntrack-dev"])]
        ),
        .target(
            name: "TestSupport",
            dependencies: ["CNetfilterConntrack", "NetCore", "Netlink", "KernelIO", "Conntrack", "Sockets", "Live"],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "CTDoctorTests",
            dependencies: [
                "TestSupport", "NetCore", "JSON", "Netlink", "KernelIO", "Conntrack", "Sockets", "Nftables", "Diagnosis", "Live",
                "YAML", "MeshLint", "Formats", "Rendering", "Export", "Offline", "NodeSweep", "Pressure",
                .product(name: "Yams", package: "Yams"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "TestSupport", "NetCore", "JSON", "KernelIO", "Conntrack", "Sockets", "Diagnosis", "Live", "Lab", "Formats",
                "ctdoctor",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

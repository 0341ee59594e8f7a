// swift-tools-version:6.0
// A program built on CTDoctorKit, by path: it diagnoses a namespace (`leak-report 4242`,
// or its own without an argument) and prints the leaked sidecar sockets and the report's
// JSON. The tests build it against the library as it stands (ExampleTests).
import PackageDescription

let package = Package(
    name: "leak-report",
    dependencies: [.package(name: "ctdoctor", path: "../..")],
    targets: [
        .executableTarget(
            name: "leak-report",
            dependencies: [.product(name: "CTDoctorKit", package: "ctdoctor")]
        )
    ],
    swiftLanguageModes: [.v6]
)

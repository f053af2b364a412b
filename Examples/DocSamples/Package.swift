// swift-tools-version:6.2
// The Swift code samples of the README and of LeNetKit's DocC catalog,
// compiled as a user's package would compile them. Scripts/check-doc-samples
// writes each ```swift block into Sources/DocSamples/Generated/ (not in git)
// and builds this package; a sample that does not compile, or warns, fails
// the check with the file and line of its block.
import PackageDescription

let package = Package(
    name: "DocSamples",
    dependencies: [
        .package(name: "LeNetKit", path: "../.."),
    ],
    targets: [
        // A library: the samples only need to compile (many read data files
        // that CI does not have), so nothing is linked or run.
        .target(
            name: "DocSamples",
            dependencies: [.product(name: "LeNetKit", package: "LeNetKit")],
            swiftSettings: [.treatAllWarnings(as: .error)]
        ),
    ]
)

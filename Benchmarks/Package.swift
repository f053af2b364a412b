// swift-tools-version:6.1
// LeNetKit's benchmarks, a package of their own so that the main build and
// `swift test` never compile them. Run from this directory:
//   swift package benchmark
import Foundation
import PackageDescription

// A path dependency's package name is its directory's name, which depends on
// where the repository was cloned.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "LeNetKitBenchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // MARK: raw cblas_sgemm, for the wrapper's overhead
        .systemLibrary(name: "CBLASBench", pkgConfig: "openblas"),

        // MARK: benchmarks
        .executableTarget(
            name: "GEMM",
            dependencies: [
                .product(name: "LeNetKit", package: root),
                .product(name: "Benchmark", package: "benchmark"),
                "CBLASBench",
            ],
            path: "Benchmarks/GEMM",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Training",
            dependencies: [
                .product(name: "LeNetKit", package: root),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/Training",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)

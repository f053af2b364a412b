// swift-tools-version:6.1
// libFuzzer targets for LeNetKit's file readers and its network
// descriptions. Not part of the main package: build and run them with
// Scripts/fuzz, which passes
// `--sanitize fuzzer --sanitize address` so that LeNetKit itself is
// instrumented for coverage and checked for memory errors.
import PackageDescription

let package = Package(
    name: "LeNetKitFuzz",
    dependencies: [
        .package(name: "LeNetKit", path: ".."),
    ],
    targets: [
        // MARK: One executable per reader (and one for descriptions); libFuzzer supplies main()
        .executableTarget(name: "FuzzSafetensors", dependencies: [.product(name: "LeNetKit", package: "LeNetKit")],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzIDX", dependencies: [.product(name: "LeNetKit", package: "LeNetKit")],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzGzipIDX", dependencies: [.product(name: "LeNetKit", package: "LeNetKit")],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzCIFAR10", dependencies: [.product(name: "LeNetKit", package: "LeNetKit")],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzJPEG", dependencies: [.product(name: "LeNetKit", package: "LeNetKit")],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzPNG", dependencies: [.product(name: "LeNetKit", package: "LeNetKit")],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
        .executableTarget(name: "FuzzNetworkDescription", dependencies: [.product(name: "LeNetKit", package: "LeNetKit")],
                          swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ]
)

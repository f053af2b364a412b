// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "LeNetKit",
    products: [
        .library(name: "LeNetKit", targets: ["LeNetKit"]),
        .executable(name: "lenet", targets: ["lenet"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // MARK: C interop (only the kernel files import these)
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),

        // MARK: The library
        .target(
            name: "LeNetKit",
            dependencies: ["CBLAS", "CZlib"]
        ),

        // MARK: The command-line tool
        .executableTarget(
            name: "lenet",
            dependencies: [
                "LeNetKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        .testTarget(
            name: "LeNetKitTests",
            dependencies: ["LeNetKit"],
            resources: [.copy("Fixtures")]
        ),
    ]
)

// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "LeNetKit",
    products: [
        .library(name: "LeNetKit", targets: ["LeNetKit"]),
        .executable(name: "lenet", targets: ["lenet"]),
    ],
    // The BLAS behind every gemm: OpenBLAS by default; `--traits BLIS`
    // builds against BLIS instead (enable one of the two, not both).
    traits: [
        .trait(name: "OpenBLAS", description: "Link OpenBLAS (Debian's libopenblas-dev). The default."),
        .trait(name: "BLIS", description: "Link BLIS (Debian's libblis-dev) instead of OpenBLAS."),
        .default(enabledTraits: ["OpenBLAS"]),
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
        // LAPACKE, for the report's principal components (either BLAS).
        .systemLibrary(
            name: "CLAPACKE",
            pkgConfig: "lapacke",
            providers: [.apt(["liblapacke-dev"])]
        ),
        .systemLibrary(
            name: "CBLIS",
            providers: [.apt(["libblis-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // JPEG and PNG decoding (libjpeg-turbo, libpng), reached only
        // through CImageCodecs, whose C catches their longjmp errors.
        .systemLibrary(
            name: "CJPEG",
            pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg62-turbo-dev"])]
        ),
        .systemLibrary(
            name: "CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]
        ),
        .target(
            name: "CImageCodecs",
            dependencies: ["CJPEG", "CPNG"],
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]
        ),
        .systemLibrary(name: "CDispatchApply"),
        // The vector kernels that need AVX2/FMA (C can set a function's
        // target; Swift cannot without unsafe flags).
        .target(name: "CKernels"),

        // MARK: The library
        .target(
            name: "LeNetKit",
            dependencies: [
                .target(name: "CBLAS", condition: .when(traits: ["OpenBLAS"])),
                .target(name: "CBLIS", condition: .when(traits: ["BLIS"])),
                "CLAPACKE",
                "CZlib",
                "CImageCodecs",
                "CDispatchApply",
                "CKernels",
            ]
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
            dependencies: ["LeNetKit", "CKernels"],
            resources: [.copy("Fixtures")]
        ),
    ]
)

// MARK: Documentation

// The DocC plugin, only where the documentation is built: the Swift Package
// Index sets SPI_GENERATE_DOCS=1, and so does .ci/run. A package that
// depends on LeNetKit never fetches it.
if Context.environment["SPI_GENERATE_DOCS"] == "1" {
    package.dependencies.append(.package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"))
}

// swift-tools-version:6.1
// An example of using LeNetKit from another package: a small model of its
// own, trained for a few steps on generated images. Build and run from here:
//   swift run -c release TinyNet
import PackageDescription

let package = Package(
    name: "TinyNet",
    dependencies: [
        .package(name: "LeNetKit", path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "TinyNet",
            dependencies: [.product(name: "LeNetKit", package: "LeNetKit")]
        ),
    ]
)

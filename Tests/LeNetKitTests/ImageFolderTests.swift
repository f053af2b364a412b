import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Datasets from class folders of image files (torchvision's ImageFolder
/// layout): labels, decoding, the held-out split, bad files, and `lenet`
/// on such a folder giving what it gives on the same images as CIFAR-10.
struct ImageFolderTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()
    static let cifarShape = FeatureShape(channels: 3, height: 32, width: 32)

    /// Writes `dataset`'s images as PNG files, `DIR/split/<class name>/NNNN.png`
    /// (planar bytes back to interleaved), and returns the paths in order.
    @discardableResult
    static func writeFolder(_ dataset: ImageDataset, to root: URL, split: String) throws -> [String] {
        var paths: [String] = []
        for i in 0..<dataset.count {
            let folder = root.appendingPathComponent(split).appendingPathComponent(dataset.classNames[Int(dataset.labels[i])])
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let image = try PixelImage(planar: dataset.images[i * dataset.imageSize..<(i + 1) * dataset.imageSize],
                                       channels: dataset.channels, height: dataset.height, width: dataset.width)
            let url = folder.appendingPathComponent(String(format: "%04d.png", i))
            try Data(try PNG.encode(image)).write(to: url)
            paths.append(url.path)
        }
        return paths
    }

    /// A constant-colour image file of `width` × `height`.
    static func writeFlat(_ url: URL, rgb: [UInt8], width: Int = 5, height: Int = 3, format: String = "png") throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let image = try PixelImage(width: width, height: height, channels: 3,
                                   pixels: (0..<width * height).flatMap { _ in rgb })
        try Data(format == "png" ? try PNG.encode(image) : PNM.encode(image)).write(to: url)
    }

    // MARK: - Layout and labels

    @Test func testClassesAreTheSortedFoldersAndEveryFormatIsRead() throws {
        let root = try temporaryDirectory()
        let train = root.appendingPathComponent("train")
        try Self.writeFlat(train.appendingPathComponent("zebra/a.png"), rgb: [10, 20, 30])
        try Self.writeFlat(train.appendingPathComponent("zebra/nested/b.PPM"), rgb: [40, 50, 60], format: "ppm")
        try Self.writeFlat(train.appendingPathComponent("ant/c.png"), rgb: [200, 100, 0])
        let jpeg = try ImageCodecTests.fixture("baseline-420", "jpg")
        try Data(jpeg).write(to: train.appendingPathComponent("ant/d.jpeg"))
        // Ignored: other extensions, hidden files and folders.
        try Data("notes".utf8).write(to: train.appendingPathComponent("ant/readme.txt"))
        try Self.writeFlat(train.appendingPathComponent("ant/.hidden.png"), rgb: [1, 2, 3])
        try Self.writeFlat(train.appendingPathComponent(".cache/e.png"), rgb: [1, 2, 3])

        #expect(ImageFolder.looksLikeImageFolder(root.path))
        #expect(DatasetKind.detect(directory: root.path) == .folder)
        // No test/ folder: a validation fraction of 0 keeps every file for training.
        let listing = try ImageFolder.list(directory: root.path, split: .train, validationFraction: 0)
        #expect(listing.classNames == ["ant", "zebra"])
        #expect(listing.files.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["c.png", "d.jpeg", "a.png", "b.PPM"])
        #expect(listing.files.map(\.label) == [0, 0, 1, 1])

        var options = ImageFolder.Options(shape: Self.cifarShape)
        options.threads = 1
        options.validationFraction = 0
        let loaded = try ImageFolder.load(directory: root.path, split: .train, options: options)
        let data = loaded.dataset
        #expect(data.count == 4)
        #expect(data.labels == [0, 0, 1, 1])
        #expect(data.classNames == ["ant", "zebra"])
        #expect(loaded.skipped.isEmpty)
        // A flat image stays flat through the resize (5×3 → 32×32); the JPEG
        // goes through the same conversion as `PixelImage` gives it.
        func plane(_ n: Int, _ c: Int) -> ArraySlice<UInt8> {
            let start = n * data.imageSize + c * 1024
            return data.images[start..<start + 1024]
        }
        for (n, rgb) in [(0, [200, 100, 0]), (2, [10, 20, 30]), (3, [40, 50, 60])] as [(Int, [UInt8])] {
            for c in 0..<3 { #expect(plane(n, c).allSatisfy { $0 == rgb[c] }, "image \(n) channel \(c)") }
        }
        let expected = try JPEG.decode(jpeg, subject: "d.jpeg").resized(width: 32, height: 32).planar
        #expect(Array(data.images[data.imageSize..<2 * data.imageSize]) == expected)

        // As gray 8×8 for a 1-channel model: BT.601 of (200, 100, 0) is 118.6 → 119.
        options.shape = FeatureShape(channels: 1, height: 8, width: 8)
        let gray = try ImageFolder.load(directory: root.path, split: .train, options: options)
        #expect(gray.dataset.imageSize == 64)
        #expect(gray.dataset.images[0..<64].allSatisfy { $0 == 119 })
    }

    @Test func testDecodingInParallelGivesTheSameBytes() throws {
        let root = try temporaryDirectory()
        try Self.writeFolder(try TrainingTests.squares(count: 300, seed: 4), to: root, split: "train")
        var options = ImageFolder.Options(shape: Self.cifarShape)
        options.threads = 1
        options.validationFraction = 0
        let one = try ImageFolder.load(directory: root.path, split: .train, options: options).dataset
        options.threads = 3
        var reports: [(Int, Int)] = []
        let three = try ImageFolder.load(directory: root.path, split: .train, options: options) { reports.append(($0, $1)) }
        #expect(one.images == three.dataset.images)
        #expect(one.labels == three.dataset.labels)
        // Progress after each round of 256 files, ending at the total.
        #expect(reports.map { $0.0 } == [256, 300])
        #expect(reports.allSatisfy { $0.1 == 300 })
    }

    /// The PNG files hold exactly the bytes they were made from, so the
    /// folder's dataset is the original one, in class-then-path order.
    @Test func testFolderHoldsTheImagesItWasWrittenFrom() throws {
        let root = try temporaryDirectory()
        let squares = try TrainingTests.squares(count: 120, seed: 5)
        try Self.writeFolder(squares, to: root, split: "test")
        let data = try DatasetKind.folder.load(directory: root.path, split: .test)
        // Files are named by their index, so within a class the order is the original one.
        let order = (0..<squares.count).sorted { (squares.labels[$0], $0) < (squares.labels[$1], $1) }
        #expect(data.labels.map { data.classNames[Int($0)] } == order.map { squares.classNames[Int(squares.labels[$0])] })
        #expect(data.images == order.flatMap { squares.images[$0 * squares.imageSize..<($0 + 1) * squares.imageSize] })
        // test/ alone: its own folders are the classes.
        #expect(data.classNames == Array(Set(squares.labels.map { squares.classNames[Int($0)] })).sorted())
    }

    // MARK: - The held-out split

    @Test func testWithoutTestFolderAStratifiedSeededShareIsHeldOut() throws {
        let root = try temporaryDirectory()
        for i in 0..<10 { try Self.writeFlat(root.appendingPathComponent("train/a/\(i).png"), rgb: [UInt8(i), 0, 0]) }
        for i in 0..<5 { try Self.writeFlat(root.appendingPathComponent("train/b/\(i).png"), rgb: [0, UInt8(i), 0]) }
        try Self.writeFlat(root.appendingPathComponent("train/c/only.png"), rgb: [0, 0, 9])
        let all = Set(try ImageFolder.list(directory: root.path, split: .train, validationFraction: 0).files.map(\.path))
        #expect(all.count == 16)

        let train = try ImageFolder.list(directory: root.path, split: .train, validationFraction: 0.2, seed: 7)
        let test = try ImageFolder.list(directory: root.path, split: .test, validationFraction: 0.2, seed: 7)
        #expect(train.isHeldOut && test.isHeldOut)
        // Per class: round(0.2 · 10) = 2, round(0.2 · 5) = 1, and none of a class of one.
        #expect(test.files.map(\.label) == [0, 0, 1])
        #expect(train.files.count == 13)
        #expect(Set(train.files.map(\.path)).isDisjoint(with: test.files.map(\.path)))
        #expect(Set(train.files.map(\.path)).union(test.files.map(\.path)) == all)
        // The same seed, the same split; other seeds choose other files.
        #expect(try ImageFolder.list(directory: root.path, split: .test, validationFraction: 0.2, seed: 7) == test)
        let choices = Set(try (0..<8).map { try ImageFolder.list(directory: root.path, split: .test, validationFraction: 0.2,
                                                                 seed: $0).files.map(\.path) })
        #expect(choices.count > 1)
        // A small share still holds out one of every class of two or more.
        let few = try ImageFolder.list(directory: root.path, split: .test, validationFraction: 0.01)
        #expect(few.files.map(\.label) == [0, 1])

        let loaded = try ImageFolder.load(directory: root.path, split: .test, options: ImageFolder.Options(shape: Self.cifarShape))
        #expect(loaded.heldOut?.fraction == 0.1)
        #expect(loaded.dataset.count == 2)  // round(1.0) of a, round(0.5) → at least 1 of b, none of c
    }

    // MARK: - Bad files and layouts

    @Test func testABadImageStopsTheLoadOrIsSkipped() throws {
        let root = try temporaryDirectory()
        try Self.writeFlat(root.appendingPathComponent("train/a/good.png"), rgb: [1, 2, 3])
        try Self.writeFlat(root.appendingPathComponent("train/b/good.png"), rgb: [4, 5, 6])
        try Self.writeFlat(root.appendingPathComponent("test/a/good.png"), rgb: [1, 2, 3])  // so nothing is held out
        let jpeg = try ImageCodecTests.fixture("baseline-420", "jpg")
        let bad = root.appendingPathComponent("train/b/cut.jpg")
        try Data(jpeg.prefix(jpeg.count / 2)).write(to: bad)
        let empty = root.appendingPathComponent("train/a/empty.png")
        try Data().write(to: empty)

        var options = ImageFolder.Options(shape: Self.cifarShape)
        assertError(empty.path, "empty", "--skip-bad-images") {
            try ImageFolder.load(directory: root.path, split: .train, options: options)
        }
        options.skipsBadImages = true
        let loaded = try ImageFolder.load(directory: root.path, split: .train, options: options)
        #expect(loaded.dataset.count == 2)
        #expect(loaded.dataset.labels == [0, 1])
        // The good images moved over the gaps: (1, 2, 3) then (4, 5, 6), flat.
        let planes = stride(from: 0, to: loaded.dataset.images.count, by: 1024).map { loaded.dataset.images[$0..<$0 + 1024] }
        #expect(planes.map { Set($0) } == [[1], [2], [3], [4], [5], [6]])
        #expect(loaded.skipped.map(\.path) == [empty.path, bad.path])
        #expect(loaded.skipped[1].reason.contains("JPEG"))
    }

    @Test func testLayoutErrorsNameTheFolder() throws {
        let root = try temporaryDirectory()
        assertError(root.path, "no train/ or test/") { try ImageFolder.list(directory: root.path, split: .train) }
        try Self.writeFlat(root.appendingPathComponent("train/a/x.png"), rgb: [0, 0, 0])
        try FileManager.default.createDirectory(at: root.appendingPathComponent("train/empty"), withIntermediateDirectories: true)
        assertError(root.appendingPathComponent("train/empty").path, "holds no images") {
            try ImageFolder.list(directory: root.path, split: .train)
        }
        try Self.writeFlat(root.appendingPathComponent("train/empty/y.png"), rgb: [0, 0, 0])
        try Self.writeFlat(root.appendingPathComponent("test/stranger/z.png"), rgb: [0, 0, 0])
        assertError("test", "'stranger'", "no counterpart") { try ImageFolder.list(directory: root.path, split: .test) }
        assertError("validationFraction", "[0, 1)") {
            try ImageFolder.list(directory: root.path, split: .train, validationFraction: 1)
        }
    }

    // MARK: - lenet on a folder

    /// `lenet eval` on a folder of PNGs gives, to the last digit, what it
    /// gives on a CIFAR-10 binary directory of the same images: the bytes
    /// are the same, so is everything after them. Training on the folder
    /// runs, and a corrupt file stops it in one line, or is skipped and listed.
    @Test(.disabledUnderSanitizers) func testLenetOnAFolderMatchesTheSameImagesAsCIFAR() throws {
        let root = try temporaryDirectory()
        // CIFAR-10's class names, sorted, are in its label order already.
        let names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        func named(_ d: ImageDataset) throws -> ImageDataset {
            try ImageDataset(name: d.name, channels: 3, height: 32, width: 32, images: d.images, labels: d.labels, classNames: names)
        }
        let train = try named(TrainingTests.squares(count: 200, seed: 1)), test = try named(TrainingTests.squares(count: 100, seed: 2))
        let folder = root.appendingPathComponent("folder"), binary = root.appendingPathComponent("binary")
        try FileManager.default.createDirectory(at: binary, withIntermediateDirectories: true)
        try CLITests.makeCIFAR(binary)
        try Self.writeFolder(train, to: folder, split: "train")
        let testPaths = try Self.writeFolder(test, to: folder, split: "test")

        let weights = root.appendingPathComponent("w.safetensors").path
        let trained = try runLenet(["train", "--data", folder.path, "--epochs", "1", "--threads", "2", "--output", weights])
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stderr.contains("decoded 200 images from \(folder.path)/train"), "\(trained.stderr)")
        #expect(trained.stderr.contains("on image folder"), "\(trained.stderr)")

        let onFolder = try runLenet(["eval", "--data", folder.path, "--weights", weights, "--json"])
        let onBinary = try runLenet(["eval", "--data", binary.path, "--weights", weights, "--json"])
        #expect(onFolder.status == 0 && onBinary.status == 0, "\(onFolder.stderr) \(onBinary.stderr)")
        func figures(_ run: LenetRun) throws -> (counts: [String], loss: Double) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            return (["accuracy", "correct", "count"].map { "\(object[$0] ?? "missing")" }, try #require(object["loss"] as? Double))
        }
        let (a, b) = (try figures(onFolder), try figures(onBinary))
        #expect(a.counts == b.counts)
        // The folder lists its images by class, the binary file in its own
        // order: the mean loss is the same 100 terms summed in another order.
        #expect(abs(a.loss - b.loss) <= Double(ErrorBound.reduction(100, magnitude: Float(b.loss))), "\(a.loss) vs \(b.loss)")

        // A corrupt test image: one error line naming it, exit 1; then skipped and listed.
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).write(to: URL(fileURLWithPath: testPaths[7]))
        let stopped = try runLenet(["eval", "--data", folder.path, "--weights", weights])
        #expect(stopped.status == 1)
        #expect(stopped.stderr.split(separator: "\n").count == 1, "\(stopped.stderr)")
        #expect(stopped.stderr.hasPrefix("lenet: error: \(testPaths[7]): cannot decode the JPEG image"), "\(stopped.stderr)")
        let skipped = try runLenet(["eval", "--data", folder.path, "--weights", weights, "--skip-bad-images"])
        #expect(skipped.status == 0, "\(skipped.stderr)")
        #expect(skipped.stderr.contains("skipped 1 bad image(s) of 100:\n  \(testPaths[7]): "), "\(skipped.stderr)")
        #expect(skipped.stdout.contains("(99 images)"), "\(skipped.stdout)")

        let binaryFlag = try runLenet(["eval", "--data", binary.path, "--weights", weights, "--skip-bad-images"])
        #expect(binaryFlag.status == 1 && binaryFlag.stderr.contains("--skip-bad-images: applies to image folders only"),
                "\(binaryFlag.stderr)")
    }

    /// A folder of 3 classes trains a network of 3 outputs (121,182 − 7 · 85
    /// parameters), whose checkpoint `eval` and `predict` load with its class
    /// names.
    @Test(.disabledUnderSanitizers) func testAThreeClassFolder() throws {
        let root = try temporaryDirectory()
        let squares = try TrainingTests.squares(count: 300, seed: 6)
        let keep = (0..<squares.count).filter { squares.labels[$0] < 3 }
        let names = ["cat", "dog", "fox"]
        let three = try ImageDataset(name: "three", channels: 3, height: 32, width: 32,
                                     images: keep.flatMap { squares.images[$0 * 3072..<($0 + 1) * 3072] },
                                     labels: keep.map { squares.labels[$0] }, classNames: names)
        let paths = try Self.writeFolder(three, to: root, split: "train")
        let weights = root.appendingPathComponent("three.safetensors").path
        let trained = try runLenet(["train", "--data", root.path, "--epochs", "2", "--threads", "2", "--validation-split", "0.2",
                                    "--output", weights])
        #expect(trained.status == 0, "\(trained.stderr)")
        #expect(trained.stderr.contains("training cifar-lenet (120,587 parameters) on image folder"), "\(trained.stderr)")
        #expect(trained.stderr.contains("holding out 20% of each class, seed 0, of train/ as the test set"), "\(trained.stderr)")

        let loaded = try Checkpoint.loadNetwork(path: weights)
        #expect(loaded.network.outputShape.count == 3)
        #expect(loaded.network.trainableParameterCount == 121_182 - 7 * 85)
        let eval = try runLenet(["eval", "--data", root.path, "--weights", weights, "--validation-split", "0.2", "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any])
        #expect(object["class_names"] as? [String] == names)
        #expect((object["confusion"] as? [[Int]])?.map(\.count) == [3, 3, 3])
        // The held-out share: round(0.2 · n) of each class's n images.
        let held = (0..<3).map { c in Int((0.2 * Double(three.labels.filter { $0 == c }.count)).rounded()) }.reduce(0, +)
        #expect(object["count"] as? Int == held)
        let predicted = try runLenet(["predict", "--weights", weights, "--top", "3", paths[0]])
        #expect(predicted.status == 0, "\(predicted.stderr)")
        #expect(names.allSatisfy { predicted.stdout.contains("\($0) ") }, "\(predicted.stdout)")
    }
}

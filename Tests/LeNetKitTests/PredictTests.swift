import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Classifying image files: the library's `Classifier` and `lenet predict`.
struct PredictTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// A cifar-lenet trained briefly on the squares data and saved by the
    /// trainer (so with class names and normalization in its metadata), and its test set.
    func trainedCheckpoint(in dir: URL) throws -> (path: String, test: ImageDataset) {
        let train = try TrainingTests.squares(count: 400, seed: 1), test = try TrainingTests.squares(count: 12, seed: 2)
        var options = TrainingOptions()
        options.batchSize = 20
        options.epochs = 3
        options.normalization = try Normalization(mean: [0.4, 0.5, 0.6], std: [0.3, 0.5, 0.2])
        let trainer = try Trainer(network: Models.cifarLeNet(seed: 5), dataset: train, options: options)
        for _ in 0..<3 { _ = try trainer.trainEpoch() }
        let path = dir.appendingPathComponent("squares.safetensors").path
        try trainer.saveCheckpoint(to: path)
        return (path, test)
    }

    /// Test image i as the interleaved image it would be saved as.
    func image(_ test: ImageDataset, _ i: Int) throws -> PixelImage {
        try PixelImage(planar: test.images[i * test.imageSize..<(i + 1) * test.imageSize],
                       channels: test.channels, height: test.height, width: test.width)
    }

    /// The network's logits on test image i, normalized as in training.
    func logits(_ network: Network, _ test: ImageDataset, _ i: Int, _ n: Normalization) throws -> [Float] {
        guard let x = try network.input(batch: 1).baseAddress else { return [] }
        var label: Int32 = 0
        test.fill(batch: [i], normalization: n, into: x, labels: &label)
        let logits = network.forward(batch: 1)
        return (0..<10).map { logits[$0] }
    }

    /// Softmax probabilities of the network on test image i, normalized as in training.
    func probabilities(_ network: Network, _ test: ImageDataset, _ i: Int, _ n: Normalization) throws -> [Double] {
        let z = try logits(network, test, i, n).map(Double.init), zmax = z.max() ?? 0
        let e = z.map { exp($0 - zmax) }, sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    /// Nearest-neighbour 2× enlargement: area resizing takes it back exactly.
    func doubled(_ image: PixelImage) throws -> PixelImage {
        let W = image.width * 2, C = image.channels
        var pixels = [UInt8](repeating: 0, count: W * image.height * 2 * C)
        for h in 0..<image.height * 2 {
            for w in 0..<W {
                for c in 0..<C { pixels[(h * W + w) * C + c] = image.pixels[((h / 2) * image.width + w / 2) * C + c] }
            }
        }
        return try PixelImage(width: W, height: image.height * 2, channels: C, pixels: pixels)
    }

    @Test func testClassifierMatchesTheNetworkOnTrainingNormalization() throws {
        let dir = try temporaryDirectory()
        let (path, test) = try trainedCheckpoint(in: dir)
        let classifier = try Classifier(weights: path)
        #expect(classifier.classNames == test.classNames, "from the class_names metadata")
        #expect(classifier.normalization.mean == [0.4, 0.5, 0.6])
        let images = try (0..<test.count).map { try image(test, $0) }
        let results = try classifier.classify(images + [try doubled(images[0])], top: 3)
        #expect(results.count == test.count + 1)
        // The classifier runs the batch of 13, the reference one image at a
        // time: another batch size and position, so other gemm blocks and
        // roundings. Its logits (|z| ≲ 20 here) differ by at most the forward
        // chain's bound (conv1 75 + conv2 400 + fc1 800 + fc2 120 + fc3 84
        // terms), and the probabilities by half that (`ErrorBound.probability`).
        let logitBound = ErrorBound.reduction(75 + 400 + 800 + 120 + 84, magnitude: 20)
        let probabilityBound = ErrorBound.probability(fromLogitBound: logitBound)
        var right = 0
        for i in 0..<test.count {
            let p = try probabilities(classifier.network, test, i, classifier.normalization)
            let order = p.indices.sorted { p[$0] > p[$1] }
            // The order is the reference's except between two classes closer than the bound.
            for (k, s) in results[i].enumerated() where s.index != order[k] {
                #expect(abs(p[s.index] - p[order[k]]) <= 2 * probabilityBound, "image \(i), rank \(k)")
            }
            for s in results[i] {
                #expect(abs(s.probability - p[s.index]) <= probabilityBound)
                #expect(s.name == test.classNames[s.index])
            }
            let z = try logits(classifier.network, test, i, classifier.normalization)
            #expect(z.map(abs).max() ?? 0 <= 20, "the logit magnitude the bound assumes")
            if results[i][0].index == Int(test.labels[i]) { right += 1 }
        }
        #expect(right >= 10, "the trained network should know most squares")
        // The 64×64 copy is resized back to the same 32×32 bytes, so the same
        // answer up to the rounding of another batch position (positions 12
        // and 0 of the batch fall in different gemm blocks on some kernels).
        let doubledBack = try doubled(images[0]).resized(width: 32, height: 32)
        #expect(doubledBack.pixels == images[0].pixels, "area resizing undoes the 2× enlargement exactly")
        #expect(results[test.count].map(\.index) == results[0].map(\.index))
        for (a, b) in zip(results[test.count], results[0]) {
            #expect(abs(a.probability - b.probability) <= (2 * probabilityBound), "two positions, each within the bound")
        }
        assertError("classify(top:)") { try classifier.classify(images, top: 0) }
        #expect(try classifier.classify(images, top: 50)[0].count == 10)
    }

    @Test func testGrayModelTakesColorImagesAndClassNamesFallBack() throws {
        let net = try Models.lenet5(seed: 3)
        let classifier = try Classifier(network: net, normalization: .half,
                                        classNames: Checkpoint.classNames(metadata: ["dataset": "Fashion-MNIST train"], classes: 10))
        #expect(classifier.classNames[9] == "Ankle boot")
        var rng = SeededGenerator(seed: 9)
        let rgb = try PixelImage(width: 40, height: 30, channels: 3, pixels: (0..<3600).map { _ in UInt8(rng.next() % 256) })
        let gray = try rgb.converted(toChannels: 1)
        #expect(try classifier.classify([rgb]) == classifier.classify([gray]))

        #expect(Checkpoint.classNames(metadata: ["dataset": "CIFAR-10 train"], classes: 10) == CIFAR10.standardClassNames)
        #expect(Checkpoint.classNames(metadata: ["dataset": "MNIST train"], classes: 10)[7] == "7")
        #expect(Checkpoint.classNames(metadata: [:], classes: 10) == (0..<10).map(String.init))
        #expect(Checkpoint.classNames(metadata: ["class_names": "[\"x\",\"y\"]"], classes: 2) == ["x", "y"])
        // Names that do not fit the model are ignored.
        #expect(Checkpoint.classNames(metadata: ["class_names": "[\"x\"]", "dataset": "CIFAR-10 test"], classes: 10) == CIFAR10.standardClassNames)
        #expect(Checkpoint.classNames(metadata: ["class_names": "not json"], classes: 3) == ["0", "1", "2"])
        let names = ["a,b", "c\"d", "é"]
        #expect(Checkpoint.classNames(metadata: ["class_names": Checkpoint.encodeClassNames(names)], classes: 3) == names)
        assertError("2 class names") { try Classifier(network: net, normalization: .half, classNames: ["a", "b"]) }
    }

    // MARK: - lenet predict

    func lenet(_ arguments: [String]) throws -> LenetRun {
        try runLenet(arguments)
    }

    func assertFails(_ arguments: [String], mentions parts: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let run = try lenet(arguments)
        #expect(run.status == 1, "\(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.split(separator: "\n").count == 1, "one line: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("lenet: error: "), "\(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stdout == "", "no partial output", sourceLocation: sourceLocation)
        for part in parts { #expect(run.stderr.contains(part), "'\(run.stderr)' lacks '\(part)'", sourceLocation: sourceLocation) }
    }

    @Test func testPredictCommand() throws {
        let dir = try temporaryDirectory()
        let (weights, test) = try trainedCheckpoint(in: dir)
        let classifier = try Classifier(weights: weights)
        let png = dir.appendingPathComponent("zero.png").path
        let ppm = dir.appendingPathComponent("one.ppm").path
        let big = dir.appendingPathComponent("zero-64.png").path
        let gray = dir.appendingPathComponent("two.pgm").path
        try Data(PNG.encode(try image(test, 0))).write(to: URL(fileURLWithPath: png))
        try Data(PNM.encode(try image(test, 1))).write(to: URL(fileURLWithPath: ppm))
        try Data(PNG.encode(try doubled(try image(test, 0)))).write(to: URL(fileURLWithPath: big))
        let grayImage = try image(test, 2).converted(toChannels: 1)
        try Data(PNM.encode(grayImage)).write(to: URL(fileURLWithPath: gray))
        let expected = try classifier.classify([try image(test, 0), try image(test, 1), try image(test, 0), grayImage])

        let run = try lenet(["predict", "--weights", weights, "--json", png, ppm, big, gray])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let predictions = try #require(json["predictions"] as? [[String: Any]])
        #expect(predictions.map { $0["file"] as? String } == [png, ppm, big, gray])
        #expect(predictions[2]["width"] as? Int == 64)
        for (p, want) in zip(predictions, expected) {
            let top = try #require(p["top"] as? [[String: Any]])
            #expect(top.count == 3)
            #expect(top.map { $0["class"] as? String } == want.map(\.name))
            #expect(top.map { $0["index"] as? Int } == want.map(\.index))
            for (t, w) in zip(top, want) { #expect(try abs(#require(t["probability"] as? Double) - w.probability) <= 1e-12) }
        }
        #expect(expected[0][0].index == Int(test.labels[0]), "the trained network gets image 0 right")

        let text = try lenet(["predict", "--weights", weights, "--top", "2", png])
        #expect(text.status == 0, "\(text.stderr)")
        let want = expected[0].prefix(2).map { String(format: "%@ %.1f%%", $0.name, $0.probability * 100) }.joined(separator: ", ")
        #expect(text.stdout == "\(png): \(want)\n")

        // Bad files: one line naming the file and the problem, and no output for the good ones.
        let bytes = try PNG.encode(try image(test, 3))
        let truncated = dir.appendingPathComponent("cut.png").path
        try Data(bytes.prefix(bytes.count - 30)).write(to: URL(fileURLWithPath: truncated))
        try assertFails(["predict", "--weights", weights, png, truncated], mentions: ["cut.png", "truncated"])
        // Interlaced and 16-bit PNGs and a real JPEG are read (libpng, libjpeg-turbo), and predict
        // what the classifier predicts for the pixels the decoders give.
        let interlaced = dir.appendingPathComponent("interlaced.png").path
        try Data(ImageFileTests.png(width: 1, height: 1, depth: 8, color: 0, rows: [[0, 1]], interlace: 1))
            .write(to: URL(fileURLWithPath: interlaced))
        let deep = dir.appendingPathComponent("deep.png").path
        try Data(ImageFileTests.png(width: 1, height: 1, depth: 16, color: 2, rows: [[0, 1, 2, 3, 4, 5, 6]]))
            .write(to: URL(fileURLWithPath: deep))
        let photo = dir.appendingPathComponent("photo.jpg").path
        try Data(try ImageCodecTests.fixture("baseline-420", "jpg")).write(to: URL(fileURLWithPath: photo))
        let decoded = try [interlaced, deep, photo].map { try PixelImage.read(path: $0) }
        #expect(decoded.map(\.channels) == [1, 3, 3])
        let wanted = zip([interlaced, deep, photo], try classifier.classify(decoded, top: 1)).map { path, scores in
            "\(path): " + String(format: "%@ %.1f%%", scores[0].name, scores[0].probability * 100) + "\n"
        }
        let read = try lenet(["predict", "--weights", weights, "--top", "1", interlaced, deep, photo])
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdout == wanted.joined())
        let jpeg = dir.appendingPathComponent("cut.jpg").path
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).write(to: URL(fileURLWithPath: jpeg))
        try assertFails(["predict", "--weights", weights, jpeg], mentions: ["cut.jpg", "JPEG"])
        try assertFails(["predict", "--weights", weights, dir.appendingPathComponent("none.png").path], mentions: ["none.png", "missing"])
        try assertFails(["predict", "--weights", weights], mentions: ["at least one image"])
        try assertFails(["predict", "--weights", weights, "--top", "0", png], mentions: ["--top"])
        try assertFails(["predict", "--weights", dir.appendingPathComponent("nope.safetensors").path, png], mentions: ["nope.safetensors"])
    }
}

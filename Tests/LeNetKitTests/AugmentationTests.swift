import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Random crop with zero padding and horizontal flip: exact pixels, the
/// spread of the draws, and reproducible training with it.
struct AugmentationTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// `count` copies of the 1×3×3 image 1 … 9 (row by row).
    func ninePixels(count: Int) throws -> ImageDataset {
        try ImageDataset(name: "nine", channels: 1, height: 3, width: 3,
                         images: Array(repeating: Array(UInt8(1)...9), count: count).flatMap { $0 },
                         labels: [UInt8](repeating: 0, count: count), classNames: ["only"])
    }

    /// Fills a batch of every image and returns each one's bytes (undoing the
    /// identity normalization, mean 0 and std 1: x / 255) with its transform.
    func augmentedBytes(_ data: ImageDataset, _ augmentation: Augmentation, seed: UInt64, epoch: Int)
        -> [(transform: Augmentation.Transform, bytes: [Int])] {
        let n = data.count, size = data.imageSize
        var x = [Float](repeating: .nan, count: n * size)  // (N, C, H, W)
        var y = [Int32](repeating: -1, count: n)  // (N)
        let normalization = try? Normalization(mean: [0], std: [1])
        x.withUnsafeMutableBufferPointer { xs in
            y.withUnsafeMutableBufferPointer { ys in
                guard let xs = xs.baseAddress, let ys = ys.baseAddress, let normalization else { return }
                data.fill(batch: 0..<n, normalization: normalization, augmentation: augmentation, seed: seed, epoch: epoch,
                          into: xs, labels: ys)
            }
        }
        return (0..<n).map { i in
            (augmentation.transform(seed: seed, epoch: epoch, index: i),
             x[i * size..<(i + 1) * size].map { Int(($0 * 255).rounded()) })
        }
    }

    @Test func testCropAndFlipGiveTheExpectedPixels() throws {
        // With padding 1 there are 3 × 3 offsets × 2 flips = 18 transforms;
        // 300 images meet each of them.
        let results = augmentedBytes(try ninePixels(count: 300), Augmentation(padding: 1), seed: 7, epoch: 0)
        let expected: [Augmentation.Transform: [Int]] = [
            // The crop at the padded image's top-left: the image moves down and right by one.
            .init(top: 0, left: 0, flip: false): [0, 0, 0,
                                                   0, 1, 2,
                                                   0, 4, 5],
            // The centre crop is the image itself, or its mirror.
            .init(top: 1, left: 1, flip: false): [1, 2, 3, 4, 5, 6, 7, 8, 9],
            .init(top: 1, left: 1, flip: true): [3, 2, 1,
                                                  6, 5, 4,
                                                  9, 8, 7],
            // Cropped one row lower (the image moves up), then mirrored.
            .init(top: 2, left: 1, flip: true): [6, 5, 4,
                                                  9, 8, 7,
                                                  0, 0, 0],
            // One column further right: the image moves left.
            .init(top: 1, left: 2, flip: false): [2, 3, 0,
                                                   5, 6, 0,
                                                   8, 9, 0],
            // The top-right crop (down 1, left 1), then mirrored.
            .init(top: 0, left: 2, flip: true): [0, 0, 0,
                                                  0, 3, 2,
                                                  0, 6, 5],
        ]
        var seen = Set<Augmentation.Transform>()
        for (transform, bytes) in results {
            seen.insert(transform)
            if let want = expected[transform] { #expect(bytes == want, "\(transform)") }
            #expect(bytes == reference(Array(1...9), transform, padding: 1, height: 3, width: 3), "\(transform)")
        }
        #expect(seen.count == 18, "every offset and flip should occur in 300 draws")
        #expect(Set(expected.keys).isSubset(of: seen))
    }

    /// torchvision's order, written out literally: pad with zeros, crop, mirror.
    func reference(_ image: [Int], _ t: Augmentation.Transform, padding p: Int, height H: Int, width W: Int) -> [Int] {
        var padded = [Int](repeating: 0, count: (H + 2 * p) * (W + 2 * p))  // (H + 2p, W + 2p)
        for h in 0..<H { for w in 0..<W { padded[(h + p) * (W + 2 * p) + w + p] = image[h * W + w] } }
        var crop = [Int](repeating: 0, count: H * W)  // (H, W)
        for h in 0..<H { for w in 0..<W { crop[h * W + w] = padded[(t.top + h) * (W + 2 * p) + t.left + w] } }
        guard t.flip else { return crop }
        return (0..<H * W).map { crop[($0 / W) * W + (W - 1 - $0 % W)] }
    }

    @Test func testMultiChannelPaddingIsBlackAfterNormalization() throws {
        // Two channels, mean/std per channel: padding must be (0 − mean[c]) / std[c].
        let data = try ImageDataset(name: "two", channels: 2, height: 2, width: 2,
                                    images: [10, 20, 30, 40, 50, 60, 70, 80], labels: [1], classNames: ["a", "b"])
        let normalization = try Normalization(mean: [0.5, 0.25], std: [0.5, 0.25])
        let augmentation = Augmentation(padding: 2)
        // Find a seed whose transform for image 0 leaves exactly one source pixel.
        var seed: UInt64 = 0
        while augmentation.transform(seed: seed, epoch: 3, index: 0) != .init(top: 0, left: 0, flip: false) { seed += 1 }
        var x = [Float](repeating: .nan, count: 8)  // (1, 2, 2, 2)
        var y: [Int32] = [-1]
        x.withUnsafeMutableBufferPointer { xs in
            y.withUnsafeMutableBufferPointer { ys in
                guard let xs = xs.baseAddress, let ys = ys.baseAddress else { return }
                data.fill(batch: [0], normalization: normalization, augmentation: augmentation, seed: seed, epoch: 3, into: xs, labels: ys)
            }
        }
        // Offset (0, 0) with padding 2 moves the image down and right by 2: all padding.
        #expect(x == [-1, -1, -1, -1, -1, -1, -1, -1])
        #expect(y == [1])
        // The plain fill of the same image, for comparison: (10/255 − 0.5) / 0.5 …
        var plain = [Float](repeating: .nan, count: 8)
        plain.withUnsafeMutableBufferPointer { xs in
            y.withUnsafeMutableBufferPointer { ys in
                guard let xs = xs.baseAddress, let ys = ys.baseAddress else { return }
                data.fill(batch: [0], normalization: normalization, into: xs, labels: ys)
            }
        }
        #expect(abs(Double(plain[0]) - ((10.0 / 255 - 0.5) / 0.5)) <= 1e-6)
        #expect(abs(Double(plain[4]) - ((50.0 / 255 - 0.25) / 0.25)) <= 1e-6)
    }

    @Test func testDrawsAreSpreadAndDependOnSeedEpochAndIndex() {
        let a = Augmentation.cifar
        var tops = [Int](repeating: 0, count: 9), lefts = [Int](repeating: 0, count: 9), flips = 0
        let n = 18_000
        for i in 0..<n {
            let t = a.transform(seed: 0, epoch: 0, index: i)
            tops[t.top] += 1
            lefts[t.left] += 1
            if t.flip { flips += 1 }
        }
        for k in 0..<9 {
            #expect(abs(Double(tops[k]) - (Double(n) / 9)) <= 200, "top offset \(k): \(tops)")
            #expect(abs(Double(lefts[k]) - (Double(n) / 9)) <= 200, "left offset \(k): \(lefts)")
        }
        #expect(abs(Double(flips) - (Double(n) / 2)) <= 300)
        // A pure function of (seed, epoch, index) …
        #expect(a.transform(seed: 5, epoch: 2, index: 17) == a.transform(seed: 5, epoch: 2, index: 17))
        // … that changes with each of them (compared over many images).
        func draws(seed: UInt64, epoch: Int) -> [Augmentation.Transform] {
            (0..<100).map { a.transform(seed: seed, epoch: epoch, index: $0) }
        }
        #expect(draws(seed: 5, epoch: 2) != draws(seed: 6, epoch: 2))
        #expect(draws(seed: 5, epoch: 2) != draws(seed: 5, epoch: 3))
        // Flip off: never flipped; padding 0: always the identity crop.
        #expect(!((0..<1000).contains { Augmentation(padding: 4, horizontalFlip: false).transform(seed: 1, epoch: 0, index: $0).flip }))
        #expect((0..<1000).allSatisfy { Augmentation(padding: 0).transform(seed: 1, epoch: 0, index: $0).top == 0 })
    }

    @Test func testTrainingWithAugmentationIsReproducibleAndResumesExactly() throws {
        let dir = try temporaryDirectory()
        let data = try TrainingTests.squares(count: 60, seed: 1)
        var opts = TrainingOptions()
        opts.epochs = 3
        opts.batchSize = 16
        opts.seed = 11
        opts.augmentation = .cifar
        func train(_ o: TrainingOptions, epochs: Int = 3) throws -> [Float] {
            let net = try TrainingTests.smallNetwork()
            let trainer = try Trainer(network: net, dataset: data, options: o)
            for _ in 0..<epochs { _ = try trainer.trainEpoch() }
            return Array(net.parameters.values)
        }
        let a = try train(opts), b = try train(opts)
        #expect(a == b, "the same seed must give the same weights")
        var plain = opts
        plain.augmentation = nil
        #expect(try a != train(plain), "augmentation should change the weights")

        // One epoch, a checkpoint, fresh objects, two more: the same weights.
        let path = dir.appendingPathComponent("aug.safetensors").path
        let first = try TrainingTests.smallNetwork()
        let t1 = try Trainer(network: first, dataset: data, options: opts)
        _ = try t1.trainEpoch()
        try t1.saveCheckpoint(to: path)
        #expect(try SafetensorsFile.read(path: path).metadata["augmentation"] == "crop 4, flip")
        let resumed = try TrainingTests.smallNetwork(seed: 42)
        let t2 = try Trainer(network: resumed, dataset: data, options: opts)
        try t2.resume(from: path)
        for _ in 0..<2 { _ = try t2.trainEpoch() }
        #expect(Array(resumed.parameters.values) == a)
    }

    @Test func testBadPaddingIsAnError() throws {
        var opts = TrainingOptions()
        opts.augmentation = Augmentation(padding: 40)
        assertError("Augmentation.padding", "0...32") {
            try Trainer(network: try TrainingTests.smallNetwork(), dataset: try TrainingTests.squares(count: 10, seed: 1), options: opts)
        }
    }
}

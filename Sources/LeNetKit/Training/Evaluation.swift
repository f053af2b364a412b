import Dispatch
import Foundation  // libm: logf

/// How a network does on a labelled dataset.
public struct Evaluation: Sendable {
    /// Correct predictions / images.
    public var accuracy: Double { count == 0 ? 0 : Double(correct) / Double(count) }
    /// Images whose top class was their label.
    public var correct: Int
    /// Images evaluated.
    public var count: Int
    /// confusion[true][predicted] counts.
    public var confusion: [[Int]]
    /// The name of each class, by label ("class k" for classes the dataset does not name).
    public var classNames: [String]
    /// Wall-clock seconds the evaluation took.
    public var seconds: Double
    /// Mean cross-entropy over the dataset.
    public var loss: Double
    /// The first misclassified images in dataset order, up to the cap
    /// passed to `evaluate` (none by default).
    public var misclassified: [Misclassification] = []
    /// Every image's logits, (N, K) in dataset order, when `evaluate` was
    /// asked to keep them (`keepsLogits`); else empty. With test-time
    /// augmentation, the log of the views' mean probabilities (logits that
    /// give those probabilities).
    public var logits: [Float] = []

    /// Accuracy per true class (0 for a class with no images).
    public var perClass: [Double] {
        confusion.enumerated().map { i, row in
            let total = row.reduce(0, +)
            return total == 0 ? 0 : Double(row[i]) / Double(total)
        }
    }

    /// Evaluation throughput.
    public var imagesPerSecond: Double { seconds > 0 ? Double(count) / seconds : 0 }
}

/// Views of each test image whose predictions are averaged.
public enum TestTimeAugmentation: String, Sendable, CaseIterable {
    /// The image as it is.
    case none
    /// The image and its left–right mirror: the mean of the two softmax
    /// outputs is the prediction (two forward passes an image).
    case flip
}

/// One image the network got wrong.
public struct Misclassification: Sendable, Equatable {
    /// The image's index in the dataset.
    public var index: Int
    /// Its label.
    public var truth: Int
    /// The class the network ranked first.
    public var predicted: Int
    /// The softmax probability of `predicted`.
    public var probability: Float

    /// - Parameters:
    ///   - index: the image's index in the dataset.
    ///   - truth: its label.
    ///   - predicted: the class ranked first.
    ///   - probability: the softmax probability of `predicted`.
    init(index: Int, truth: Int, predicted: Int, probability: Float) {
        self.index = index
        self.truth = truth
        self.predicted = predicted
        self.probability = probability
    }
}

extension Network {
    /// Runs the network over `dataset` in batches and counts what it gets
    /// right: `DataParallel.evaluate` on a runner made for this call.
    /// - Parameters:
    ///   - dataset: images whose shape must be the network's input shape.
    ///   - normalization: as in training.
    ///   - batchSize: images per forward pass.
    ///   - threads: threads to split each batch across (default: the
    ///     network's `threads`).
    ///   - misclassifiedLimit: how many misclassified images to list in
    ///     `Evaluation.misclassified` (the first ones in dataset order).
    ///   - keepsLogits: fill `Evaluation.logits` (N·K floats), to compare
    ///     with another runtime.
    ///   - testTimeAugmentation: the views of each image whose softmax
    ///     outputs are averaged (`.flip`: the image and its mirror).
    /// - Throws: `LeNetError` when the shapes or class counts do not fit.
    public func evaluate(on dataset: ImageDataset, normalization: Normalization, batchSize: Int = 256, threads: Int? = nil,
                         misclassifiedLimit: Int = 0, keepsLogits: Bool = false,
                         testTimeAugmentation: TestTimeAugmentation = .none) throws -> Evaluation {
        try DataParallel(network: self, threads: threads ?? self.threads)
            .evaluate(on: dataset, normalization: normalization, batchSize: batchSize,
                      misclassifiedLimit: misclassifiedLimit, keepsLogits: keepsLogits,
                      testTimeAugmentation: testTimeAugmentation)
    }
}

extension DataParallel {
    /// Runs the network over `dataset` in batches, each split across
    /// `threads`, and counts what it gets right.
    /// - Parameters:
    ///   - dataset: images whose shape must be the network's input shape.
    ///   - normalization: as in training.
    ///   - batchSize: images per forward pass.
    ///   - misclassifiedLimit: how many misclassified images to list in
    ///     `Evaluation.misclassified` (the first ones in dataset order).
    ///   - keepsLogits: fill `Evaluation.logits` (N·K floats), to compare
    ///     with another runtime.
    ///   - testTimeAugmentation: the views of each image whose softmax
    ///     outputs are averaged (`.flip`: the image and its mirror).
    /// - Throws: `LeNetError` when the shapes or class counts do not fit.
    func evaluate(on dataset: ImageDataset, normalization: Normalization, batchSize: Int = 256,
                         misclassifiedLimit: Int = 0, keepsLogits: Bool = false,
                         testTimeAugmentation: TestTimeAugmentation = .none) throws -> Evaluation {
        let inputShape = network.inputShape, outputShape = network.outputShape
        try network.checkClassifies()
        let shape = FeatureShape(channels: dataset.channels, height: dataset.height, width: dataset.width)
        guard shape == inputShape else {
            throw LeNetError("its images are \(shape), the model takes \(inputShape)", subject: dataset.name)
        }
        let K = outputShape.count
        guard dataset.classNames.count <= K, !dataset.labels.contains(where: { Int($0) >= K }) else {
            throw LeNetError("it has \(dataset.classNames.count) classes, the model predicts \(K)", subject: dataset.name)
        }
        let normalization = try normalization.validated(channels: dataset.channels)
        guard batchSize > 0 else { throw LeNetError("must be > 0, got \(batchSize)", subject: "evaluate(batchSize:)") }
        let batch = min(batchSize, max(dataset.count, 1))
        // Each thread runs a contiguous part of every batch through its own
        // replica; the parts' predictions are then read back in sample order.
        let partCount = parts(batch: batch)  // a batch has at most one part per image
        let part = longestPart(batch: batch)
        let labels = try (0..<partCount).map { _ in try IndexBuffer(count: part, name: "evaluation labels") }  // each (part)
        let predicted = try (0..<partCount).map { _ in try IndexBuffer(count: part, name: "predictions") }  // each (part)
        let confidence = try (0..<partCount).map { _ in try FloatBuffer(count: part, name: "confidences") }  // each (part)
        let flips = testTimeAugmentation == .flip
        // With flip TTA: the mean of the two views' probabilities, then its log. Each (part, K)
        let views = flips ? try (0..<partCount).map { _ in try FloatBuffer(count: part * K, name: "test-time views") } : []
        try reserve(batch: batch, backward: false)
        let losses = (0..<partCount).map { _ in SoftmaxCrossEntropy(classes: K) }
        var partLoss = [Double](repeating: 0, count: partCount)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: K), count: K)
        var correct = 0, totalLoss = 0.0
        var misclassified: [Misclassification] = []
        let kept = try FloatBuffer(count: keepsLogits ? dataset.count * K : 0, name: "logits of \(dataset.count) images")  // (N, K)
        let start = DispatchTime.now().uptimeNanoseconds
        // The batches of images first..<end, in order.
        func evaluateImages(_ start: Int, _ end: Int) throws {
            var first = start
            while first < end {
                let n = min(batch, end - first)
                let offset = first
                try partLoss.withUnsafeMutableBufferPointer { partLoss in
                    try run(batch: n) { part, net, range in
                        let m = range.count, first = offset + range.lowerBound
                        let y = labels[part].pointer, loss = losses[part]
                        // Each chunk's images are normalized just before the chunk runs.
                        var logits = try net.infer(batch: m) { chunk, x in
                            dataset.fill(batch: first + chunk.lowerBound..<first + chunk.upperBound,
                                         normalization: normalization, into: x, labels: y + chunk.lowerBound)
                        }
                        if flips {
                            // Each view's softmax is the loss's, from a forward pass of it.
                            let mean = views[part].pointer
                            _ = try loss.forward(logits, y, batch: m)
                            mean.update(from: loss.lastProbabilities, count: m * K)
                            let mirrored = try net.infer(batch: m) { chunk, x in
                                dataset.fillMirrored(batch: first + chunk.lowerBound..<first + chunk.upperBound,
                                                     normalization: normalization, into: x, labels: y + chunk.lowerBound)
                            }
                            _ = try loss.forward(mirrored, y, batch: m)
                            let second = loss.lastProbabilities
                            // log of the mean: logits whose softmax is the mean (it sums to 1).
                            // (A mean that underflows to 0 is kept at the least normal float, so its log is finite.)
                            for i in 0..<m * K { mean[i] = logf(max(0.5 * (mean[i] + second[i]), .leastNormalMagnitude)) }
                            logits = UnsafePointer(mean)
                        }
                        partLoss[part] = Double(try loss.forward(logits, y, batch: m)) * Double(m)
                        if keepsLogits { (kept.pointer + (offset + range.lowerBound) * K).update(from: logits, count: m * K) }
                        for s in 0..<m {
                            let row = logits + s * K
                            let best = predictedClass(row, classes: K)
                            predicted[part].pointer[s] = Int32(best)
                            confidence[part].pointer[s] = loss.lastProbabilities[s * K + best]
                        }
                    }
                }
                let parts = parts(batch: n)
                for part in 0..<parts {
                    totalLoss += partLoss[part]
                    let range = Self.partRange(part, of: parts, batch: n)
                    for s in 0..<range.count {
                        let truth = Int(labels[part].pointer[s]), best = Int(predicted[part].pointer[s])
                        confusion[truth][best] += 1
                        if best == truth {
                            correct += 1
                        } else if misclassified.count < misclassifiedLimit {
                            misclassified.append(Misclassification(index: first + range.lowerBound + s, truth: truth, predicted: best,
                                                                   probability: confidence[part].pointer[s]))
                        }
                    }
                }
                first += n
            }
        }
        // A batch smaller than the thread count leaves threads idle between
        // its parts. At batch 1 a `WorkerTeam` keeps them awake, and the
        // inference steps split each image between them, which pays only
        // where an image is long enough to cover the hand-offs and the other
        // core is free (the CIFAR LeNet on Zen 5 with AVX-512: 59,000 images/s
        // split against 41,000 on one thread; 26,600 while OpenBLAS's idle
        // threads still spun on the other core). So the first images are
        // timed both ways and the rest run the faster way; the results are
        // the same bits either way (the steps split rows, not sums).
        var next = 0, splitsImages = false
        let warm = 4, trial = 16
        if partCount == 1 && threads > 1 && dataset.count >= 4 * (warm + 2 * trial) {
            var split: UInt64 = 0
            try WorkerTeam.run(threads: threads) {
                try evaluateImages(0, warm)  // the helpers wake up
                let t0 = DispatchTime.now().uptimeNanoseconds
                try evaluateImages(warm, warm + trial)
                split = DispatchTime.now().uptimeNanoseconds - t0
            }
            let t0 = DispatchTime.now().uptimeNanoseconds
            try evaluateImages(warm + trial, warm + 2 * trial)
            let whole = DispatchTime.now().uptimeNanoseconds - t0
            next = warm + 2 * trial
            splitsImages = split < whole
        }
        // With several parts a batch, the team's helpers take them without a wake-up.
        try WorkerTeam.run(threads: splitsImages || partCount > 1 ? threads : 1) { try evaluateImages(next, dataset.count) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        var names = dataset.classNames
        while names.count < K { names.append("class \(names.count)") }
        return Evaluation(correct: correct, count: dataset.count, confusion: confusion, classNames: names,
                          seconds: seconds, loss: dataset.count == 0 ? 0 : totalLoss / Double(dataset.count),
                          misclassified: misclassified, logits: kept.array)
    }
}

/// The index of the largest of `K` logits; ties go to the first.
@inline(__always)
func predictedClass(_ logits: UnsafePointer<Float>, classes K: Int) -> Int {
    var best = 0
    for k in 1..<K where logits[k] > logits[best] { best = k }
    return best
}


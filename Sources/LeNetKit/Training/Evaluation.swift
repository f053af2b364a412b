import Dispatch

/// How a network does on a labelled dataset.
public struct Evaluation: Sendable {
    /// Correct predictions / images.
    public var accuracy: Double { count == 0 ? 0 : Double(correct) / Double(count) }
    public var correct: Int
    public var count: Int
    /// confusion[true][predicted] counts.
    public var confusion: [[Int]]
    public var classNames: [String]
    public var seconds: Double
    /// Mean cross-entropy over the dataset.
    public var loss: Double

    /// Accuracy per true class (0 for a class with no images).
    public var perClass: [Double] {
        confusion.enumerated().map { i, row in
            let total = row.reduce(0, +)
            return total == 0 ? 0 : Double(row[i]) / Double(total)
        }
    }

    public var imagesPerSecond: Double { seconds > 0 ? Double(count) / seconds : 0 }
}

extension Network {
    /// Runs the network over `dataset` in batches and counts what it gets right.
    /// - Parameters:
    ///   - dataset: images whose shape must be the network's input shape.
    ///   - normalization: as in training.
    ///   - batchSize: images per forward pass.
    /// - Throws: `LeNetError` when the shapes or class counts do not fit.
    public func evaluate(on dataset: ImageDataset, normalization: Normalization, batchSize: Int = 256) throws -> Evaluation {
        let shape = FeatureShape(channels: dataset.channels, height: dataset.height, width: dataset.width)
        guard shape == inputShape else {
            throw LeNetError("its images are \(shape), the model takes \(inputShape)", subject: dataset.name)
        }
        let K = outputShape.count
        guard dataset.classNames.count <= K, !dataset.labels.contains(where: { Int($0) >= K }) else {
            throw LeNetError("it has \(dataset.classNames.count) classes, the model predicts \(K)", subject: dataset.name)
        }
        let normalization = try normalization.validated(channels: dataset.channels)
        guard batchSize > 0 else { throw LeNetError("must be > 0, got \(batchSize)", subject: "--batch-size") }
        let batch = min(batchSize, max(dataset.count, 1))
        let labels = IndexBuffer(count: batch)  // (N)
        let lossFunction = SoftmaxCrossEntropy(classes: K)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: K), count: K)
        var correct = 0, totalLoss = 0.0
        let start = DispatchTime.now().uptimeNanoseconds
        var first = 0
        while first < dataset.count {
            let n = min(batch, dataset.count - first)
            guard let x = input(batch: n).baseAddress else { break }
            dataset.fill(batch: first..<first + n, normalization: normalization, into: x, labels: labels.pointer)
            let logits = forward(batch: n)
            totalLoss += Double(try lossFunction.forward(logits, labels.pointer, batch: n)) * Double(n)
            for s in 0..<n {
                let row = logits + s * K
                var best = 0
                for k in 1..<K where row[k] > row[best] { best = k }
                let truth = Int(labels.pointer[s])
                confusion[truth][best] += 1
                if best == truth { correct += 1 }
            }
            first += n
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        var names = dataset.classNames
        while names.count < K { names.append("class \(names.count)") }
        return Evaluation(correct: correct, count: dataset.count, confusion: confusion, classNames: names,
                          seconds: seconds, loss: dataset.count == 0 ? 0 : totalLoss / Double(dataset.count))
    }
}

import Foundation  // libm (expf, logf, …) on every platform
// Classifying a user's own images with a trained checkpoint: each image is
// brought to the model's channels and size, stored as the same (C, H, W)
// bytes a dataset holds, and normalized by the same code and values that
// training used, so a photo and a test image reach the network alike.

/// A class and the probability the network gives it.
public struct ClassScore: Sendable, Equatable {
    /// The class index (the label).
    public var index: Int
    /// The class name.
    public var name: String
    /// The softmax probability, 0...1.
    public var probability: Double

    /// - Parameters:
    ///   - index: the class index.
    ///   - name: the class name.
    ///   - probability: its softmax probability.
    public init(index: Int, name: String, probability: Double) {
        self.index = index
        self.name = name
        self.probability = probability
    }
}

/// A trained network with what it needs to classify new images: its
/// normalization and class names.
///
/// ```swift
/// let classifier = try Classifier(weights: "cifar.safetensors")
/// let image = try PixelImage.read(path: "cat.png")
/// for score in try classifier.classify([image])[0] { print(score.name, score.probability) }
/// ```
public final class Classifier {
    /// The network, loaded from the checkpoint.
    public let network: Network
    /// The normalization the network was trained with.
    public let normalization: Normalization
    /// The name of each output class.
    public let classNames: [String]

    /// - Parameters:
    ///   - network: a trained network.
    ///   - normalization: as in training; must fit the network's input channels.
    ///   - classNames: one per output class.
    /// - Throws: `LeNetError` when the normalization or the names do not fit the network.
    public init(network: Network, normalization: Normalization, classNames: [String]) throws {
        try network.checkClassifies()
        guard classNames.count == network.outputShape.count else {
            throw LeNetError("\(classNames.count) class names for a network with \(network.outputShape.count) outputs", subject: "classifier")
        }
        self.network = network
        self.normalization = try normalization.validated(channels: network.inputShape.channels)
        self.classNames = classNames
    }

    /// A classifier from a checkpoint: its model, normalization and class
    /// names (see `Checkpoint.classNames(metadata:classes:)`).
    /// - Parameters:
    ///   - path: a safetensors file from `lenet train` or PyTorch.
    ///   - description: the network, overriding what the file says.
    /// - Throws: `LeNetError` naming the file when it cannot be loaded.
    public convenience init(weights path: String, description: NetworkDescription? = nil) throws {
        let loaded = try Checkpoint.loadNetwork(path: path, description: description)
        try self.init(network: loaded.network, normalization: loaded.normalization,
                      classNames: Checkpoint.classNames(metadata: loaded.metadata, classes: loaded.network.outputShape.count))
    }

    /// The `top` most probable classes of each image, most probable first.
    ///
    /// Each image is converted to the network's channels (alpha over black;
    /// gray ↔ RGB) and resized to its input size (area average when
    /// shrinking, bilinear when growing) with `PixelImage`, then normalized
    /// exactly as the training data were.
    /// - Parameters:
    ///   - images: any sizes and channel counts.
    ///   - top: how many classes to return per image (at most the number of classes).
    /// - Throws: `LeNetError` when `top` is not positive.
    public func classify(_ images: [PixelImage], top: Int = 3) throws -> [[ClassScore]] {
        guard top > 0 else { throw LeNetError("must be > 0, got \(top)", subject: "classify(top:)") }
        guard !images.isEmpty else { return [] }
        let shape = network.inputShape
        guard shape.channels == 1 || shape.channels == 3 else {
            throw LeNetError("the network takes \(shape.channels) channels; images have 1 or 3", subject: "classifier")
        }
        var bytes: [UInt8] = []  // (N, C, H, W)
        bytes.reserveCapacity(images.count * shape.count)
        for image in images {
            bytes += try image.converted(toChannels: shape.channels)
                .resized(width: shape.width, height: shape.height).planar
        }
        // Labels are not used; the dataset is the path to the training normalization.
        let dataset = try ImageDataset(name: "images", channels: shape.channels, height: shape.height, width: shape.width,
                                       images: bytes, labels: [UInt8](repeating: 0, count: images.count),
                                       classNames: ["image"])
        let K = network.outputShape.count
        let batch = 64
        try network.reserve(batch: min(images.count, batch), backward: false)
        let labels = try IndexBuffer(count: min(images.count, batch), name: "labels")  // (N)
        var results: [[ClassScore]] = []
        var first = 0
        while first < images.count {
            let n = min(batch, images.count - first)
            let logits = try network.infer(batch: n) { chunk, x in  // (N, K)
                dataset.fill(batch: first + chunk.lowerBound..<first + chunk.upperBound, normalization: normalization,
                             into: x, labels: labels.pointer + chunk.lowerBound)
            }
            for s in 0..<n {
                let row = logits + s * K
                var zmax = row[0]
                for k in 1..<K { zmax = max(zmax, row[k]) }
                var sum = 0.0
                var p = [Double](repeating: 0, count: K)  // (K)
                for k in 0..<K { p[k] = exp(Double(row[k] - zmax)); sum += p[k] }
                let order = (0..<K).sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
                results.append(order.prefix(top).map { ClassScore(index: $0, name: classNames[$0], probability: p[$0] / sum) })
            }
            first += n
        }
        return results
    }
}


import Dispatch
import Foundation

/// How to train: the seed's recipe by default (Adam 1e-3, batch 36, 10 epochs).
public struct TrainingOptions: Sendable {
    public enum OptimizerKind: String, Sendable, CaseIterable { case adam, adamw, sgd }

    /// How the learning rate changes over training, step by step.
    public enum Schedule: String, Sendable, CaseIterable {
        /// The same rate throughout (the seed's recipe).
        case constant
        /// Multiplied by `stepGamma` every `stepEpochs` epochs.
        case step
        /// Cosine annealing from the rate to 0 over all epochs' steps:
        /// lr·½(1 + cos(π·t/T)).
        case cosine
    }

    public var epochs = 10
    public var batchSize = 36
    public var optimizer = OptimizerKind.adam
    public var learningRate: Float = 1e-3
    public var momentum: Float = 0.9
    public var weightDecay: Float = 0
    public var seed: UInt64 = 0
    public var normalization = Normalization.half
    public var schedule = Schedule.constant
    public var stepEpochs = 10
    public var stepGamma: Float = 0.1

    public init() {}

    /// The learning rate for optimizer step `t` (from 0) of a run with
    /// `stepsPerEpoch` steps per epoch. It depends on nothing else, so a
    /// resumed run follows the same schedule.
    public func learningRate(atStep t: Int, stepsPerEpoch: Int) -> Float {
        switch schedule {
        case .constant:
            return learningRate
        case .step:
            let epoch = t / max(stepsPerEpoch, 1)
            return learningRate * pow(stepGamma, Float(epoch / max(stepEpochs, 1)))
        case .cosine:
            let total = Double(max(epochs * stepsPerEpoch, 1))
            return Float(Double(learningRate) * 0.5 * (1 + cos(Double.pi * min(Double(t), total) / total)))
        }
    }

    /// Checks every value, naming the flag that sets it.
    public func validate() throws {
        guard epochs > 0 else { throw LeNetError("must be > 0, got \(epochs)", subject: "--epochs") }
        guard batchSize > 0 else { throw LeNetError("must be > 0, got \(batchSize)", subject: "--batch-size") }
        guard learningRate.isFinite, learningRate > 0 else {
            throw LeNetError("must be a positive number, got \(learningRate)", subject: "--lr")
        }
        guard momentum.isFinite, momentum >= 0, momentum < 1 else {
            throw LeNetError("must be in [0, 1), got \(momentum)", subject: "--momentum")
        }
        guard weightDecay.isFinite, weightDecay >= 0 else {
            throw LeNetError("must be ≥ 0, got \(weightDecay)", subject: "--weight-decay")
        }
        guard stepEpochs > 0 else { throw LeNetError("must be > 0, got \(stepEpochs)", subject: "--step-epochs") }
        guard stepGamma.isFinite, stepGamma > 0, stepGamma <= 1 else {
            throw LeNetError("must be in (0, 1], got \(stepGamma)", subject: "--step-gamma")
        }
    }
}

/// What one epoch of training did.
public struct EpochResult: Sendable {
    /// The epoch just finished, counting from 1.
    public var epoch: Int
    /// Mean training loss over the epoch's batches, weighted by batch size.
    public var loss: Double
    public var images: Int
    public var seconds: Double
    public var imagesPerSecond: Double { seconds > 0 ? Double(images) / seconds : 0 }
}

/// Where an epoch is, for a progress display.
public struct StepProgress: Sendable {
    public var epoch: Int
    public var step: Int
    public var steps: Int
    /// Mean loss of the epoch so far.
    public var runningLoss: Double
    public var imagesPerSecond: Double
    public var secondsElapsed: Double
    public var secondsRemaining: Double { step > 0 ? secondsElapsed / Double(step) * Double(steps - step) : 0 }
}

/// Trains a network on a dataset: shuffled mini-batches from a seeded
/// generator, softmax cross-entropy, Adam or SGD. Each step reads top to
/// bottom: fill the batch, forward, loss, backward, optimizer step.
///
/// The same seed and thread count give bitwise the same weights, and a run
/// resumed from a checkpoint ends where an uninterrupted one does.
public final class Trainer {
    public let network: Network
    public let model: ModelKind?
    public let options: TrainingOptions
    public let optimizer: any Optimizer
    public let loss: SoftmaxCrossEntropy
    public let dataset: ImageDataset
    /// Epochs completed.
    public private(set) var epoch = 0
    /// Training images processed so far.
    public private(set) var imagesSeen = 0
    private var order: BatchOrder
    private let labels: IndexBuffer  // (N)

    /// - Parameters:
    ///   - network: initialized (or loaded) network.
    ///   - model: the model's name for checkpoints, if it is a known one.
    ///   - dataset: the training images; their shape must be the network's input.
    /// - Throws: `LeNetError` for bad options or a dataset that does not fit.
    public init(network: Network, model: ModelKind? = nil, dataset: ImageDataset, options: TrainingOptions) throws {
        try options.validate()
        let shape = FeatureShape(channels: dataset.channels, height: dataset.height, width: dataset.width)
        guard shape == network.inputShape else {
            throw LeNetError("its images are \(shape), the model takes \(network.inputShape)", subject: dataset.name)
        }
        guard dataset.classNames.count <= network.outputShape.count,
              !dataset.labels.contains(where: { Int($0) >= network.outputShape.count }) else {
            throw LeNetError("it has \(dataset.classNames.count) classes, the model predicts \(network.outputShape.count)", subject: dataset.name)
        }
        self.network = network
        self.model = model
        self.dataset = dataset
        var checked = options
        checked.normalization = try options.normalization.validated(channels: dataset.channels)
        self.options = checked
        switch options.optimizer {
        case .adam, .adamw:
            optimizer = Adam(parameters: network.parameters, learningRate: options.learningRate,
                             weightDecay: options.weightDecay, decoupled: options.optimizer == .adamw)
        case .sgd:
            optimizer = SGD(parameters: network.parameters, learningRate: options.learningRate,
                            momentum: options.momentum, weightDecay: options.weightDecay)
        }
        loss = SoftmaxCrossEntropy(classes: network.outputShape.count)
        order = try BatchOrder(count: dataset.count, batchSize: options.batchSize, seed: options.seed &+ 0x5EED)
        labels = IndexBuffer(count: options.batchSize)
        network.reserve(batch: min(options.batchSize, dataset.count))
    }

    /// One optimizer step on the images at `indices`.
    /// - Returns: the batch's mean loss.
    @discardableResult
    public func step<C: Collection<Int>>(_ indices: C) throws -> Float {
        let n = indices.count
        guard let x = network.input(batch: n).baseAddress else { return 0 }
        dataset.fill(batch: indices, normalization: options.normalization, into: x, labels: labels.pointer)
        let logits = network.forward(batch: n)
        let value = try loss.forward(logits, labels.pointer, batch: n)
        network.parameters.zeroGradients()
        loss.backward(network.outputGradient(batch: n))
        network.backward(batch: n)
        optimizer.learningRate = options.learningRate(atStep: optimizer.stepCount, stepsPerEpoch: order.batchCount)
        optimizer.step()
        imagesSeen += n
        return value
    }

    /// Trains one epoch over a fresh shuffle.
    /// - Parameter progress: called after each step.
    /// - Throws: `LeNetError` when the loss stops being finite, naming the
    ///   epoch and step; the network then holds the diverged weights, and
    ///   the caller keeps its last checkpoint.
    public func trainEpoch(progress: ((StepProgress) -> Void)? = nil) throws -> EpochResult {
        order.shuffle()
        let steps = order.batchCount
        let start = DispatchTime.now().uptimeNanoseconds
        var total = 0.0, images = 0
        for b in 0..<steps {
            let batch = order[batch: b]
            let value = try step(batch)
            guard value.isFinite else {
                throw LeNetError("the loss became \(value) at epoch \(epoch + 1), step \(b + 1) of \(steps); lower --lr", subject: "training")
            }
            total += Double(value) * Double(batch.count)
            images += batch.count
            if let progress {
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                progress(StepProgress(epoch: epoch + 1, step: b + 1, steps: steps, runningLoss: total / Double(images),
                                      imagesPerSecond: elapsed > 0 ? Double(images) / elapsed : 0, secondsElapsed: elapsed))
            }
        }
        epoch += 1
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return EpochResult(epoch: epoch, loss: total / Double(max(images, 1)), images: images, seconds: seconds)
    }

    // MARK: - Checkpoints

    /// The metadata written with every checkpoint.
    public var metadata: [String: String] {
        var meta: [String: String] = [
            Checkpoint.Key.epoch: "\(epoch)",
            Checkpoint.Key.imagesSeen: "\(imagesSeen)",
            Checkpoint.Key.normalizationMean: Checkpoint.formatFloats(options.normalization.mean),
            Checkpoint.Key.normalizationStd: Checkpoint.formatFloats(options.normalization.std),
            Checkpoint.Key.seed: "\(options.seed)",
            Checkpoint.Key.dataset: dataset.name,
        ]
        if let model { meta[Checkpoint.Key.model] = model.rawValue }
        return meta
    }

    /// Writes the training state to `<path>.state`, then the weights to
    /// `path`, each atomically. The state goes first: a crash between the two
    /// leaves a state one epoch ahead of the weights, which `resume` refuses
    /// rather than mixing.
    public func saveCheckpoint(to path: String) throws {
        var meta = metadata
        meta["optimizer"] = options.optimizer.rawValue
        let s = order.generator.state
        meta["shuffle_state"] = [s.0, s.1, s.2, s.3].map { String($0, radix: 16) }.joined(separator: ",")
        let state = optimizer.stateTensors().map { SafetensorsTensor(name: $0.name, shape: $0.shape, values: $0.values) }
        try SafetensorsFile(tensors: state, metadata: meta).write(path: Checkpoint.statePath(for: path))
        try Checkpoint.saveWeights(network, to: path, metadata: metadata)
    }

    /// Restores weights, optimizer state, epoch count and the shuffling
    /// generator from a checkpoint written by `saveCheckpoint(to:)`.
    /// - Throws: `LeNetError` naming the file when either part is missing,
    ///   damaged, from another model or optimizer, or the two disagree.
    public func resume(from path: String) throws {
        let weights = try SafetensorsFile.read(path: path)
        let statePath = Checkpoint.statePath(for: path)
        let state = try SafetensorsFile.read(path: statePath)
        if let m = weights.metadata[Checkpoint.Key.model], let model, m != model.rawValue {
            throw LeNetError("holds a '\(m)' model, this run trains '\(model.rawValue)'", subject: path)
        }
        guard let epochText = weights.metadata[Checkpoint.Key.epoch], let savedEpoch = Int(epochText),
              let seenText = weights.metadata[Checkpoint.Key.imagesSeen], let seen = Int(seenText) else {
            throw LeNetError("has no epoch / images_seen metadata; was it written by `lenet train`?", subject: path)
        }
        guard state.metadata[Checkpoint.Key.epoch] == epochText else {
            throw LeNetError("is from epoch \(state.metadata[Checkpoint.Key.epoch] ?? "?"), the weights from epoch \(epochText)", subject: statePath)
        }
        guard state.metadata["optimizer"] == options.optimizer.rawValue else {
            throw LeNetError("was written with optimizer '\(state.metadata["optimizer"] ?? "?")', this run uses '\(options.optimizer.rawValue)'", subject: statePath)
        }
        let words = (state.metadata["shuffle_state"] ?? "").split(separator: ",").compactMap { UInt64($0, radix: 16) }
        guard words.count == 4 else { throw LeNetError("has no valid shuffle_state", subject: statePath) }
        try Checkpoint.load(weights, into: network, source: path)
        do {
            try optimizer.loadState { state[$0]?.values }
        } catch let error as LeNetError {
            throw LeNetError(error.message, subject: statePath)
        }
        order = try BatchOrder(count: dataset.count, batchSize: options.batchSize,
                               generator: SeededGenerator(state: (words[0], words[1], words[2], words[3])))
        epoch = savedEpoch
        imagesSeen = seen
    }
}

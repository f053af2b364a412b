import Dispatch
import Foundation

/// Trains a network on a dataset: shuffled mini-batches from a seeded
/// generator, softmax cross-entropy, Adam or SGD. Each step reads top to
/// bottom: fill the batch, forward, loss, backward, optimizer step.
///
/// The same seed and thread count give bitwise the same weights, and a run
/// resumed from a checkpoint ends where an uninterrupted one does.
public final class Trainer {
    /// The network being trained (its weights change with every step).
    public let network: Network
    /// The options, with the normalization checked against the data.
    let options: TrainingOptions
    /// The optimizer chosen by `options.optimizer`; its state goes into checkpoints.
    let optimizer: any Optimizer
    /// With `options.ema`: the moving average of the weights, updated after
    /// every step; `fit` evaluates it and checkpoints save it as the weights.
    let weightAverage: WeightAverage?
    /// The training images.
    let dataset: ImageDataset
    /// Splits every step, and the evaluation inside `fit`, across
    /// `options.threads` threads, or as many as a batch has images if fewer.
    let dataParallel: DataParallel
    /// Epochs completed.
    public private(set) var epoch = 0
    /// Training images processed so far.
    public private(set) var imagesSeen = 0
    private var order: BatchOrder
    /// Batches of the current epoch already trained: 0 between epochs, k
    /// after `trainEpoch` stopped early before its (k+1)-th step.
    public private(set) var stepInEpoch = 0
    /// With `options.timeBudget`: the schedule's length in steps, as `fit`
    /// last fitted it to the budget (nil before, and without a budget).
    var scheduleSteps: Int?
    /// With `options.timeBudget`: the budget's seconds spent so far, by this
    /// trainer and the runs it resumed.
    var budgetSecondsUsed = 0.0
    /// With `options.timeBudget`: the seconds the budget kept for the last
    /// evaluation when the seconds spent were last recorded. Saved, so that
    /// a resumed run stops where this one did instead of taking a step
    /// before it has timed an evaluation of its own.
    var budgetReserve: Double?
    /// Whether `order` holds the current epoch's shuffle (drawn, epoch not finished).
    private var epochDrawn = false
    /// The current epoch's running figures, kept across an early stop and in checkpoints.
    private var epochLossSum = 0.0, epochImages = 0, epochCorrect = 0, epochSeconds = 0.0
    /// What each data-parallel part of a step keeps: its loss, its labels.
    private final class PartState {
        let loss: SoftmaxCrossEntropy
        private(set) var labels: IndexBuffer  // (N)
        var lossSum = 0.0
        var correct = 0
        init(classes: Int, batch: Int, smoothing: Float, mapConstant: Float?) throws {
            loss = SoftmaxCrossEntropy(classes: classes, smoothing: smoothing, mapConstant: mapConstant)
            labels = try IndexBuffer(count: batch, name: "training labels")
        }
        /// Room for `n` labels (a step may be given more images than the batch size).
        func reserve(_ n: Int) throws {
            if labels.count < n { labels = try IndexBuffer(count: n, name: "training labels") }
        }
    }
    // One per part a step can have (min(threads, batch size)), fixed when the trainer is made.
    private let parts: [PartState]
    /// `optimizer`, whose state the checkpoints save.
    let checkpointed: any CheckpointedOptimizer
    /// `optimizer`, when its update can be split across the step's parts.
    private let partitioned: (any PartitionedOptimizer)?
    /// `optimizer`, when it is SDLM: its curvature is estimated before each epoch.
    private let sdlm: SDLM?
    /// Whether a partitioned optimizer updates inside the step's parallel
    /// region; tests turn it off to compare with the update after it.
    var updatesInParts = true
    /// Steps whose update ran inside the parallel region (not the fallback
    /// after it): tests check that the path they compare really ran.
    private(set) var stepsUpdatedInParts = 0
    /// How many images of the last `step` the network classified right.
    private(set) var lastStepCorrect = 0

    /// - Parameters:
    ///   - network: initialized (or loaded) network; its description goes
    ///     into every checkpoint.
    ///   - dataset: the training images; their shape must be the network's input.
    ///   - options: the batch size, optimizer, schedule, threads, seed, ….
    /// - Throws: `LeNetError` for bad options or a dataset that does not fit.
    public init(network: Network, dataset: ImageDataset, options: TrainingOptions) throws {
        try options.validate()
        try network.checkClassifies()
        let shape = FeatureShape(channels: dataset.channels, height: dataset.height, width: dataset.width)
        guard shape == network.inputShape else {
            throw LeNetError("its images are \(shape), the model takes \(network.inputShape)", subject: dataset.name)
        }
        guard dataset.classNames.count <= network.outputShape.count,
              !dataset.labels.contains(where: { Int($0) >= network.outputShape.count }) else {
            throw LeNetError("it has \(dataset.classNames.count) classes, the model predicts \(network.outputShape.count)", subject: dataset.name)
        }
        self.network = network
        self.dataset = dataset
        var checked = options
        checked.normalization = try options.normalization.validated(channels: dataset.channels)
        self.options = checked
        try options.augmentation?.validate(height: dataset.height, width: dataset.width)
        var sdlm: SDLM?
        let made: any CheckpointedOptimizer
        switch options.optimizer {
        case .adam, .adamw:
            made = try Adam(parameters: network.parameters, learningRate: options.learningRate,
                            weightDecay: options.weightDecay, decoupled: options.optimizer == .adamw)
        case .sgd:
            made = try SGD(parameters: network.parameters, learningRate: options.learningRate,
                           momentum: options.momentum, weightDecay: options.weightDecay)
        case .sdlm:
            try network.checkCurvature()
            let chosen = try SDLM(parameters: network.parameters, learningRate: options.learningRate,
                                  mu: options.sdlmMu, weightDecay: options.weightDecay)
            sdlm = chosen
            made = chosen
        }
        optimizer = made
        checkpointed = made
        self.sdlm = sdlm
        partitioned = optimizer as? any PartitionedOptimizer
        weightAverage = try options.ema.map { try WeightAverage(parameters: network.parameters, decay: $0) }
        order = try BatchOrder(count: dataset.count, batchSize: options.batchSize, seed: options.seed &+ 0x5EED)
        // A step has at most one part per image, whatever the thread count,
        // and each part's network holds only its part of the batch. All of
        // it is allocated here: a configuration that does not fit fails
        // before the first step, with the buffer named.
        let batch = min(options.batchSize, max(dataset.count, 1))
        try Self.checkPartSizes(network: network, images: dataset.count, batch: batch, threads: min(options.threads, batch))
        dataParallel = try DataParallel(network: network, threads: min(options.threads, batch))
        let largest = dataParallel.longestPart(batch: batch)
        parts = try (0..<dataParallel.parts(batch: batch)).map { _ in
            try PartState(classes: network.outputShape.count, batch: largest, smoothing: options.labelSmoothing,
                          mapConstant: options.mapConstant)
        }
        try dataParallel.reserve(batch: batch)
    }

    /// Throws when a step's smallest data-parallel part would have fewer
    /// samples than a layer's training pass needs (`minimumTrainingSamples`).
    static func checkPartSizes(network: Network, images: Int, batch: Int, threads: Int) throws {
        let batches = [batch] + (images % batch > 0 && images > batch ? [images % batch] : [])
        let smallest = batches.map { $0 / max(1, min(threads, $0)) }.min() ?? batch
        var input = network.inputShape
        for (layer, output) in zip(network.layers, network.shapes) {
            let needed = layer.minimumTrainingSamples(input: input)
            if smallest < needed {
                throw LeNetError("a training pass needs \(needed) samples here, and a step would give it \(smallest) "
                                 + "(batches of \(batch) over \(images) images, split across up to \(threads) threads); "
                                 + "raise TrainingOptions.batchSize, lower TrainingOptions.threads, or drop images to fill the last batch",
                                 subject: layer.name)
            }
            input = output
        }
    }

    /// One optimizer step on the images at `indices`.
    /// - Returns: the batch's mean loss.
    @discardableResult
    public func step<C: Collection<Int>>(_ indices: C) throws -> Float {
        // One non-generic path: called from another module, a generic step
        // ran unspecialized and allocated for every image it filled.
        if let loss = try indices.withContiguousStorageIfAvailable({ try step(contiguous: $0) }) { return loss }
        return try Array(indices).withUnsafeBufferPointer { try step(contiguous: $0) }
    }

    private func step(contiguous indices: UnsafeBufferPointer<Int>) throws -> Float {
        let n = indices.count
        let classes = network.outputShape.count
        optimizer.learningRate = options.learningRate(atStep: optimizer.stepCount, stepsPerEpoch: order.batchCount,
                                                      totalSteps: scheduleSteps ?? options.epochs * order.batchCount)
        // Each thread takes a contiguous part of the batch through its own
        // replica of the network; the parts' gradients are then added up
        // and the optimizer steps. With a partitioned optimizer (Adam, SGD)
        // the parts do that too, each adding up and updating its own slice
        // of the parameters in the same parallel region.
        let used = dataParallel.parts(batch: n)  // at most parts.count: the runner has as many threads
        let step = optimizer.stepCount
        func body(part: Int, net: Network, range: Range<Int>) throws {
            let state = parts[part]
            let m = range.count
            let slice = UnsafeBufferPointer(rebasing: indices[range])
            try state.reserve(m)
            guard let x = try net.input(batch: m).baseAddress else { return }
            net.trainingPass = step  // what the pass draws (dropout) follows the step, across a resume too
            if let augmentation = options.augmentation {
                dataset.fill(batch: slice, normalization: options.normalization, augmentation: augmentation,
                             seed: options.seed, epoch: epoch, into: x, labels: state.labels.pointer)
            } else {
                dataset.fill(batch: slice, normalization: options.normalization, into: x, labels: state.labels.pointer)
            }
            let logits = net.forward(batch: m)
            state.lossSum = Double(try state.loss.forward(logits, state.labels.pointer, batch: m)) * Double(m)
            state.correct = countCorrect(logits, state.labels.pointer, batch: m, classes: classes)
            net.parameters.zeroGradients()
            state.loss.backward(try net.outputGradient(batch: m), meanOver: n)
            net.backward(batch: m)
        }
        var updated = false
        let dataParallel = dataParallel
        if let partitioned, updatesInParts {
            updated = try dataParallel.run(batch: n, body(part:net:range:)) { part, parts in
                partitioned.update(part: part, of: parts) { dataParallel.gatherGradients(parts: parts, range: $0) }
            }
        } else {
            try dataParallel.run(batch: n, body(part:net:range:))
        }
        if updated {
            partitioned?.finishStep()
            stepsUpdatedInParts += 1
        } else {
            dataParallel.gatherGradients(parts: used)
            ThreadBudget.with(dataParallel.threads) { optimizer.step() }
        }
        weightAverage?.update()
        var lossSum = 0.0
        lastStepCorrect = 0
        for state in parts.prefix(used) {
            lossSum += state.lossSum
            lastStepCorrect += state.correct
        }
        imagesSeen += n
        return Float(lossSum / Double(max(n, 1)))
    }

    /// The images SDLM's curvature estimate runs through the network at a time.
    static let curvatureChunk = 100

    /// SDLM's curvature for the epoch about to start, estimated on the first
    /// `options.curvatureSamples` images of its shuffle, as the network is
    /// now (the paper's 500 samples before each pass), unaugmented.
    private func estimateCurvature(for sdlm: SDLM) throws {
        let count = min(options.curvatureSamples, order.indices.count)
        let chunk = Self.curvatureChunk, classes = network.outputShape.count, P = network.parameters.count
        let sum = try FloatBuffer(count: P, name: "SDLM curvature sum")
        let outputCurvature = try FloatBuffer(count: chunk * classes, name: "SDLM output curvature")
        let labels = try IndexBuffer(count: chunk, name: "SDLM labels")
        let loss = SoftmaxCrossEntropy(classes: classes, smoothing: options.labelSmoothing, mapConstant: options.mapConstant)
        for start in stride(from: 0, to: count, by: chunk) {
            let indices = Array(order.indices[start..<min(start + chunk, count)])
            let m = indices.count
            guard let x = try network.input(batch: m).baseAddress else { continue }
            dataset.fill(batch: indices, normalization: options.normalization, into: x, labels: labels.pointer)
            network.trainingPass = optimizer.stepCount
            let logits = network.forward(batch: m)
            _ = try loss.forward(logits, labels.pointer, batch: m)
            loss.backward(try network.outputGradient(batch: m), meanOver: 1)
            loss.curvature(into: outputCurvature.pointer)
            try network.accumulateCurvature(batch: m, outputCurvature: outputCurvature.pointer, into: sum.pointer,
                                            grouping: options.curvatureGrouping)
        }
        let scale = 1 / Float(max(count, 1))
        for k in 0..<P { sum.pointer[k] *= scale }
        sdlm.setCurvature(UnsafeBufferPointer(start: sum.pointer, count: P), samples: count)
    }

    /// Trains one epoch over a fresh shuffle, or the rest of an epoch that
    /// `shouldStop` ended early (in this trainer, or in the one that wrote
    /// the checkpoint it resumed from).
    /// - Parameters:
    ///   - progress: called after each step.
    ///   - shouldStop: asked before each step. When it returns true the epoch
    ///     stops there: `stepInEpoch` says how many steps are done, the result
    ///     has `isComplete == false`, `saveCheckpoint(to:)` saves the position,
    ///     and the next `trainEpoch` continues with the next step, giving
    ///     bitwise the weights an uninterrupted epoch would.
    /// - Returns: the epoch's loss, accuracy, images and seconds, counting
    ///   the steps before an early stop too.
    /// - Throws: `LeNetError` when the loss stops being finite, naming the
    ///   epoch and step; the network then holds the diverged weights, and
    ///   the caller keeps its last checkpoint.
    public func trainEpoch(progress: ((EpochResult) -> Void)? = nil, shouldStop: (() -> Bool)? = nil) throws -> EpochResult {
        if !epochDrawn {
            order.shuffle()
            epochDrawn = true
            // A fresh epoch's curvature; an interrupted one's was saved with it.
            if stepInEpoch == 0, let sdlm { try estimateCurvature(for: sdlm) }
        }
        let steps = order.batchCount
        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        // `epoch` counts finished epochs: the one running is epoch + 1.
        func result() -> EpochResult {
            EpochResult(epoch: epoch + 1, step: stepInEpoch, steps: steps, loss: epochLossSum / Double(max(epochImages, 1)),
                        images: epochImages, seconds: epochSeconds + elapsed(), correct: epochCorrect)
        }
        // The steps run inside a worker team: its helpers stay awake between
        // steps, so handing each step's parts to them costs no thread
        // wake-up, which Dispatch took on every step (docs/PERFORMANCE.md).
        let stopped: EpochResult? = try WorkerTeam.run(threads: dataParallel.threads) {
            for b in stepInEpoch..<steps {
                if let shouldStop, shouldStop() {
                    let stopped = result()
                    epochSeconds = stopped.seconds
                    return stopped
                }
                let batch = order[batch: b]
                let value = try step(batch)
                guard value.isFinite else {
                    throw LeNetError("the loss became \(value) at epoch \(epoch + 1), step \(b + 1) of \(steps); lower TrainingOptions.learningRate", subject: "training")
                }
                epochLossSum += Double(value) * Double(batch.count)
                epochImages += batch.count
                epochCorrect += lastStepCorrect
                stepInEpoch = b + 1
                progress?(result())
            }
            return nil
        }
        if let stopped { return stopped }
        let finished = result()
        epoch += 1
        stepInEpoch = 0
        epochDrawn = false
        (epochLossSum, epochImages, epochCorrect, epochSeconds) = (0, 0, 0, 0)
        return finished
    }

    /// How many of the n rows of `logits` (N, K) rank their label first.
    private func countCorrect(_ logits: UnsafePointer<Float>, _ labels: UnsafePointer<Int32>, batch n: Int, classes K: Int) -> Int {
        var correct = 0
        for s in 0..<n {
            if predictedClass(logits + s * K, classes: K) == Int(labels[s]) { correct += 1 }
        }
        return correct
    }

    /// Runs `body` with the network holding what this training yields:
    /// with `options.ema`, the averaged weights (put back to the trained
    /// ones after, bitwise); otherwise the weights as they are. `fit`
    /// evaluates in it, and `saveCheckpoint` saves what it sees.
    public func withAveragedWeights<R>(_ body: () throws -> R) rethrows -> R {
        guard let weightAverage else { return try body() }
        return try weightAverage.withAverageInPlace(body)
    }

    // MARK: - Checkpoints

    /// The metadata written with every checkpoint.
    var metadata: [String: String] {
        var meta: [String: String] = [
            Checkpoint.Key.epoch: "\(epoch)",
            Checkpoint.Key.imagesSeen: "\(imagesSeen)",
            Checkpoint.Key.normalizationMean: Checkpoint.formatFloats(options.normalization.mean),
            Checkpoint.Key.normalizationStd: Checkpoint.formatFloats(options.normalization.std),
            Checkpoint.Key.seed: "\(options.seed)",
            Checkpoint.Key.dataset: dataset.name,
            Checkpoint.Key.classNames: Checkpoint.encodeClassNames(dataset.classNames),
            Checkpoint.Key.preprocessing: Checkpoint.preprocessing(trainedOn: dataset.name).rawValue,
        ]
        meta[Checkpoint.Key.network] = network.descriptionJSON
        // `model` names a built-in network only when this is that network
        // (an edited copy of its description keeps its name, not its layers).
        if let name = network.networkDescription.name, !NetworkDescription.builtInNames.contains(name)
            || (try? NetworkDescription.builtIn(name, classes: network.outputShape.count).json()) == network.descriptionJSON {
            meta[Checkpoint.Key.model] = name
        }
        if let ema = options.ema { meta[Checkpoint.Key.ema] = "\(ema)" }
        if stepInEpoch > 0 { meta[Checkpoint.Key.epochStep] = "\(stepInEpoch)" }
        if let a = options.augmentation {
            meta[Checkpoint.Key.augmentation] = "crop \(a.padding)" + (a.horizontalFlip ? ", flip" : "") + (a.affine != nil ? ", affine" : "")
        }
        return meta
    }

    /// Writes the training state to `<path>.state` (the optimizer's tensors,
    /// and the rest as one JSON value, docs/CHECKPOINTS.md), then the
    /// weights to `path`, each atomically, after renaming the previous state to
    /// `<path>.state.prev`. A crash at any moment leaves weights on disk and
    /// a state file that belongs with them (see `Checkpoint.matchingState`),
    /// so `resume` continues exactly. Between epochs, or after `trainEpoch`
    /// stopped early: the position within the epoch is saved too. With
    /// `options.ema` the weights file holds the average (the model to
    /// evaluate and deploy), and the state the trained weights
    /// (`training.<name>`) with the average's count.
    /// - Parameter path: the weights file; the state goes to `Checkpoint.statePath(for: path)`.
    /// - Throws: `LeNetError` naming the file that could not be written; the
    ///   previous checkpoint then still resumes.
    /// Inside `withAveragedWeights` (`fit`'s `epochEnd`) it saves the same.
    public func saveCheckpoint(to path: String) throws {
        // Read from the average's own values, not by swapping it in: the
        // same files whether the network holds the average now or not.
        let weights = weightAverage.map { Checkpoint.tensors(of: network, values: $0.values) } ?? Checkpoint.tensors(of: network)
        let trained = weightAverage.map { Checkpoint.tensors(of: network, values: $0.trainedValues) } ?? []
        let statePath = Checkpoint.statePath(for: path)
        // Made before anything is renamed: a state that would not resume leaves the previous checkpoint as it was.
        let json = try trainingState(digest: Checkpoint.weightsDigest(weights.map(\.values))).json(source: statePath)
        var state = checkpointed.stateTensors().map { SafetensorsTensor(name: $0.name, shape: $0.shape, values: $0.values) }
        if let weightAverage {
            state += weightAverage.stateTensors().map { SafetensorsTensor(name: $0.name, shape: $0.shape, values: $0.values) }
            state += trained.map { SafetensorsTensor(name: Checkpoint.trainedPrefix + $0.name, shape: $0.shape, values: $0.values) }
        }
        let hadCheckpoint = FileManager.default.fileExists(atPath: path)
        do {
            try Checkpoint.keepPreviousState(for: path)
            try SafetensorsFile(tensors: state, metadata: [Checkpoint.Key.format: Checkpoint.format, TrainingState.metadataKey: json])
                .write(path: statePath)
            try Checkpoint.saveWeights(weights, to: path, metadata: metadata)
        } catch let error as LeNetError where hadCheckpoint {
            throw LeNetError(error.message + "; \(path) still holds the previous checkpoint, which a resume continues from",
                             subject: error.subject)
        }
    }

    /// What a checkpoint's state file holds besides tensors, as the trainer
    /// stands now, with `digest` the weights file's `Checkpoint.weightsDigest`.
    func trainingState(digest: String) -> TrainingState {
        // An epoch under way is redrawn from the generator as it was at its start.
        let s = epochDrawn ? order.epochStart.state : order.generator.state
        return TrainingState(
            epoch: epoch, imagesSeen: imagesSeen, epochStep: stepInEpoch, optimizer: options.optimizer,
            shuffleState: [s.0, s.1, s.2, s.3], weightsDigest: digest, ema: options.ema,
            interruptedEpoch: stepInEpoch == 0 ? nil : TrainingState.InterruptedEpoch(
                batchSize: options.batchSize, examples: dataset.count, lossSum: epochLossSum, images: epochImages,
                correct: epochCorrect, seconds: epochSeconds),
            timeBudget: options.timeBudget == nil ? nil : TrainingState.BudgetAccount(
                scheduleSteps: scheduleSteps, secondsUsed: budgetSecondsUsed, reserve: budgetReserve))
    }

    /// Restores weights, optimizer state, epoch count, the position within
    /// an interrupted epoch and the shuffling generator from a checkpoint
    /// written by `saveCheckpoint(to:)`.
    /// Checkpoints of the `lenetkit-1` format, whose state files hold flat
    /// metadata instead of one JSON value, resume too.
    /// - Parameter path: the weights file written by `saveCheckpoint(to:)`;
    ///   its `.state` (or `.state.prev`) file must be beside it.
    /// - Throws: `LeNetError` naming the file when either part is missing,
    ///   damaged (naming the field), from another model or optimizer, or the two disagree; or
    ///   when an interrupted epoch is resumed with another batch size or
    ///   number of training images; or inside `withAveragedWeights`.
    public func resume(from path: String) throws {
        // Loading into a network that holds the average would leave the put-aside weights to be swapped back over it.
        guard weightAverage?.isSwapped != true else {
            throw LeNetError("cannot resume inside withAveragedWeights (the network holds the weight average)", subject: path)
        }
        let weights = try SafetensorsFile.read(path: path)
        try Checkpoint.checkSameNetwork(weights.metadata, as: network, source: path)
        guard let epochText = weights.metadata[Checkpoint.Key.epoch],
              let seenText = weights.metadata[Checkpoint.Key.imagesSeen] else {
            throw LeNetError("has no epoch / images_seen metadata; was it written by `lenet train`?", subject: path)
        }
        guard let savedEpoch = WholeNumber.count(epochText) else {
            throw LeNetError("has epoch '\(epochText)', expected a whole number from 0 to \(WholeNumber.maximumCount)", subject: path)
        }
        guard let seen = WholeNumber.count(seenText, maximum: WholeNumber.maximumImages) else {
            throw LeNetError("has images_seen '\(seenText)', expected a whole number from 0 to \(WholeNumber.maximumImages)", subject: path)
        }
        let stepText = weights.metadata[Checkpoint.Key.epochStep] ?? "0"
        guard let savedStep = WholeNumber.count(stepText) else {
            throw LeNetError("has epoch_step '\(stepText)', expected a whole number of steps", subject: path)
        }
        // Over the tensors as `Checkpoint.tensors(of:)` writes them: the parameters, then the buffers.
        let digest = Checkpoint.weightsDigest((network.parameters.entries + network.buffers.entries).map { weights[$0.name]?.values ?? [] })
        let (state, saved, statePath) = try Checkpoint.matchingState(for: path, epoch: savedEpoch, step: savedStep,
                                                                     imagesSeen: seen, digest: digest)
        guard saved.optimizer == options.optimizer else {
            throw LeNetError("was written with optimizer '\(saved.optimizer.rawValue)', this run uses '\(options.optimizer.rawValue)'", subject: statePath)
        }
        if let running = saved.interruptedEpoch {
            // The rest of an interrupted epoch is only the same epoch with the same batches.
            let batches = (dataset.count + options.batchSize - 1) / options.batchSize
            guard running.batchSize == options.batchSize, running.examples == dataset.count, saved.epochStep < batches else {
                throw LeNetError("was interrupted \(saved.epochStep) steps into an epoch of batch size \(running.batchSize) "
                    + "over \(running.examples) images; resume it with the same TrainingOptions.batchSize and training images "
                    + "(this run: batch size \(options.batchSize), \(dataset.count) images)", subject: statePath)
            }
        }
        guard let generator = saved.generator else {
            throw LeNetError("training state field 'shuffle_state' has \(saved.shuffleState.count) words, expected 4", subject: statePath)
        }
        let trained = try trainedWeights(in: state, savedEMA: saved.ema, path: statePath)
        try Checkpoint.load(weights, into: network, source: path)
        do {
            try checkpointed.loadState { state[$0]?.values }
            if let weightAverage, let trained {
                try weightAverage.load(average: Array(network.parameters.values)) { state[$0]?.values }
                _ = network.parameters.values.update(from: trained)
            }
        } catch let error as LeNetError {
            throw LeNetError(error.message, subject: statePath)
        }
        order = try BatchOrder(count: dataset.count, batchSize: options.batchSize, generator: generator)
        // trainEpoch redraws the interrupted epoch's order from its starting
        // generator, then skips the steps already done.
        epochDrawn = false
        stepInEpoch = saved.epochStep
        let running = saved.interruptedEpoch
        (epochLossSum, epochImages, epochCorrect, epochSeconds) = (running?.lossSum ?? 0, running?.images ?? 0,
                                                                   running?.correct ?? 0, running?.seconds ?? 0)
        epoch = saved.epoch
        imagesSeen = saved.imagesSeen
        let budget = options.timeBudget == nil ? nil : saved.timeBudget
        (scheduleSteps, budgetSecondsUsed, budgetReserve) = (budget?.scheduleSteps, budget?.secondsUsed ?? 0, budget?.reserve)
    }

    /// With `options.ema`: the trained weights a checkpoint's state keeps
    /// (its weights file holds the average), in the store's layout, each
    /// tensor checked; nil without. A state written with EMA is refused
    /// without it, and one written without, with it.
    private func trainedWeights(in state: SafetensorsFile, savedEMA saved: Double?, path: String) throws -> [Float]? {
        guard let ema = options.ema else {
            if let saved {
                throw LeNetError("was written with weight averaging (ema \(saved)); resume with TrainingOptions.ema \(saved)", subject: path)
            }
            return nil
        }
        guard saved != nil else {
            throw LeNetError("was written without weight averaging; resume without TrainingOptions.ema (this run: \(ema))", subject: path)
        }
        return try Checkpoint.parameterValues(in: state, of: network, prefix: Checkpoint.trainedPrefix,
                                              what: "the trained weights beside the average", source: path)
    }
}

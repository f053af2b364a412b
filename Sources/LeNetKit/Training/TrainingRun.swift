import Dispatch
import Foundation

/// A whole training run, as `lenet train` makes one: the files it writes
/// checked first, the data read, the network built (or resumed), the
/// memory checked before anything large is allocated, then `fit` with a
/// checkpoint, a JSON line and an HTML report after every epoch.
@_spi(CLI) public final class TrainingRun {
    /// What to train, on what, and where the results go.
    public struct Configuration: Sendable {
        /// The dataset.
        public var data: DatasetLocation
        /// A built-in network's name or a JSON description file; nil: the
        /// resumed checkpoint's network, else `recipe`'s, else the dataset's default.
        public var model: String?
        /// The recipe the options came from, if any: its network is the default.
        public var recipe: TrainingRecipe?
        /// How a new network draws its weights; nil: as `recipe` says, else PyTorch's way.
        public var initialization: WeightInitialization?
        /// How to train. Its augmentation never mirrors MNIST's digits (a
        /// mirrored digit is another symbol, or none).
        public var options: TrainingOptions
        /// The seed; nil: the resumed checkpoint's (augmentation and dropout
        /// draw from it), else 0. Replaces `options.seed`.
        public var seed: UInt64?
        /// Whether `options.threads` was chosen rather than left at the cores
        /// (a memory error then may blame the threads).
        public var threadsChosen = false
        /// The batch size a memory error compares `options.batchSize` with.
        public var defaultBatchSize = TrainingOptions().batchSize
        /// Train on the first `limit` training images only.
        public var limit: Int?
        /// A checkpoint written by a run with `output`, to continue from.
        public var resume: String?
        /// The checkpoint written after every epoch (its state beside it).
        public var output: String?
        /// A file that gets one JSON object per epoch (`EpochRecord`) appended.
        public var logJSON: String?
        /// A directory that gets the HTML report after every epoch.
        public var report: String?

        /// `initialization`, else the recipe's, else PyTorch's.
        var weightInitialization: WeightInitialization { initialization ?? recipe?.initialization ?? .pytorch }

        public init(data: DatasetLocation, options: TrainingOptions = TrainingOptions()) {
            self.data = data
            self.options = options
        }
    }

    /// The configuration, with the seed and augmentation settled.
    public let configuration: Configuration
    /// The dataset's directory and kind, found.
    public let data: (directory: String, kind: DatasetKind)
    /// The trainer (resumed, when the configuration says so).
    public let trainer: Trainer
    /// The training and test sets.
    public let train: ImageDataset, test: ImageDataset
    /// The memory checked before the trainer allocated; `report` for the last line.
    public let plan: MemoryPlan
    /// The images and what the trainer and the evaluations allocate.
    public let memory: MemoryEstimate

    /// Checks the outputs, reads the data, builds the network, checks the
    /// memory, makes the trainer and resumes it.
    /// - Parameters:
    ///   - configuration: the run.
    ///   - log: lines for a person (an image folder's decoding).
    ///   - decoding: an image folder's decoding progress.
    /// - Throws: `LeNetError` naming the option or file at fault.
    public init(_ configuration: Configuration, log: (String) -> Void = { _ in },
                decoding: ((_ what: String, _ done: Int, _ total: Int) -> Void)? = nil) throws {
        var configuration = configuration
        var options = configuration.options
        options.seed = try configuration.seed ?? configuration.resume.map { try Checkpoint.seed(path: $0) } ?? 0
        try options.validate()
        if let padding = options.augmentation?.padding, padding < 0 {
            throw LeNetError("must be ≥ 0, got \(padding)", option: .cropPadding)
        }
        if let limit = configuration.limit, limit <= 0 { throw LeNetError("must be > 0, got \(limit)", option: .limit) }
        for (path, option) in [(configuration.output, LeNetError.Option.output), (configuration.logJSON, .logJSON)] {
            if let path { try OutputPath.checkFile(path, option: option) }
        }
        if let report = configuration.report { try OutputPath.checkDirectory(report, option: .report) }
        let data = try configuration.data.resolved()
        if data.kind == .mnist { options.augmentation?.horizontalFlip = false }
        configuration.data.directory = data.directory
        configuration.data.kind = data.kind
        configuration.options = options
        self.configuration = configuration
        self.data = data

        // The network: the model asked for, else the resumed checkpoint's, else the recipe's or the dataset's.
        let location = configuration.data
        let named = configuration.model ?? (configuration.resume == nil
            ? configuration.recipe?.model ?? ModelKind.default(for: data.kind).rawValue : nil)
        var description = try named.map { try Self.description($0) } ?? Checkpoint.networkDescription(path: configuration.resume ?? "")
        var train = try location.load(.train, shape: description.inputShape, threads: options.threads, log: log, progress: decoding)
        if let limit = configuration.limit { train = train.prefix(limit) }
        let test = try location.load(.test, shape: description.inputShape, threads: options.threads, log: log, progress: decoding)
        // A built-in network gets one output per class: 10 for CIFAR-10 and
        // MNIST, a folder's own count. A description file keeps its own.
        if let named, NetworkDescription.builtInNames.contains(named) {
            description = try Self.description(named, classes: train.classNames.count)
        }
        let network = try Network(description, seed: options.seed,
                                  initialization: configuration.weightInitialization, naming: named)
        // What the trainer and the evaluation after each epoch will
        // allocate, checked before they do (the images are loaded already).
        plan = MemoryPlan(batchSize: options.batchSize, defaultBatchSize: configuration.defaultBatchSize,
                          threads: options.threads, threadsChosen: configuration.threadsChosen) { batch, threads in
            var asked = options
            asked.batchSize = batch
            var estimate = Trainer.memoryEstimate(network: network, images: train.count, options: asked, threads: threads)
            let evaluation = network.evaluationMemoryEstimate(images: test.count, batchSize: batch, threads: threads,
                                                              testTimeAugmentation: options.testTimeAugmentation)
            estimate.add("evaluation buffers", bytes: evaluation["evaluation buffers"])
            return estimate
        }
        try plan.check()
        var memory = MemoryEstimate()
        memory.add("images", bytes: train.bytes + test.bytes)
        memory.add(plan.remaining)
        self.memory = memory
        (self.train, self.test) = (train, test)
        trainer = try Trainer(network: network, dataset: train, options: options)
        if let resume = configuration.resume { try trainer.resume(from: resume) }
    }

    /// `NetworkDescription.named`, an error that names no file naming the model option.
    static func description(_ model: String, classes: Int = 10) throws -> NetworkDescription {
        try LeNetError.aboutModel { try NetworkDescription.named(model, classes: classes) }
    }

    /// Whether the resumed checkpoint has every epoch asked for already.
    public var isFinished: Bool {
        configuration.options.timeBudget == nil && trainer.epoch >= configuration.options.epochs
    }

    /// One line for the start of the run: the network, the data, the
    /// options in words, the BLAS, the threads, the memory, where it resumes.
    public var summary: String {
        let network = trainer.network
        var parts = [configuration.options.summary(initialization: configuration.weightInitialization),
                     BLASThreads.summary, "\(configuration.options.threads) thread(s)", "memory \(memory)"]
        if trainer.stepInEpoch > 0 {
            parts.append("resuming epoch \(trainer.epoch + 1) after step \(trainer.stepInEpoch)")
        } else if trainer.epoch > 0 {
            parts.append("resuming after epoch \(trainer.epoch)")
        }
        return "training \(network.displayName) (\(grouped(network.trainableParameterCount)) parameters) "
            + "on \(data.kind.displayName) from \(data.directory): \(grouped(train.count)) training images, "
            + "\(grouped(test.count)) test images, " + parts.joined(separator: ", ")
    }

    /// Trains to the end (`Trainer.fit`), writing the checkpoint, the JSON
    /// line and the report after every epoch.
    /// - Parameters:
    ///   - progress: called after every step.
    ///   - epochEnd: called with each epoch's record, after the files are written.
    ///   - shouldStop: asked before every step (a Ctrl-C flag).
    /// - Returns: how `fit` ended.
    @discardableResult
    public func run(progress: ((EpochResult) -> Void)? = nil, epochEnd: ((EpochRecord) -> Void)? = nil,
                    shouldStop: (() -> Bool)? = nil) throws -> FitOutcome {
        let start = DispatchTime.now().uptimeNanoseconds
        let report = configuration.report, logJSON = configuration.logJSON, options = configuration.options
        var reported: [TrainingReport.EpochRecord] = []
        return try trainer.fit(
            epochs: options.epochs, test: test, checkpoint: configuration.output,
            misclassifiedLimit: report == nil ? 0 : TrainingReport.defaultSampleCount, progress: progress,
            epochEnd: { [trainer, test] epoch in
                let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                let record = EpochRecord(epoch, trainer: trainer, epochs: options.epochs, wallSeconds: wall)
                if let report, let evaluation = epoch.evaluation {
                    reported.append(TrainingReport.EpochRecord(result: epoch, evaluation: evaluation, wallSeconds: wall))
                    try TrainingReport(trainer: trainer, test: test, epochs: reported, evaluation: evaluation).write(directory: report)
                }
                if let logJSON { try OutputPath.appendLine(try record.json(), to: logJSON) }
                epochEnd?(record)
            },
            shouldStop: shouldStop)
    }

    /// Where training stands, for a person: "in epoch 3 after step 12 of
    /// 1,389", "after epoch 2", "before the first step".
    public var position: String {
        let batch = max(configuration.options.batchSize, 1)
        let steps = (train.count + batch - 1) / batch
        return trainer.stepInEpoch > 0 ? "in epoch \(trainer.epoch + 1) after step \(trainer.stepInEpoch) of \(steps)"
            : trainer.epoch > 0 ? "after epoch \(trainer.epoch)" : "before the first step"
    }
}

/// One epoch of a `TrainingRun`: what `lenet train --log-json` writes, one
/// JSON object a line (snake_case keys, sorted).
@_spi(CLI) public struct EpochRecord: Codable, Sendable, Equatable {
    /// The epoch, counting from 1.
    public var epoch: Int
    /// The epoch's mean training loss and running training accuracy.
    public var trainLoss: Double, trainAccuracy: Double
    /// The test set's accuracy and mean loss after the epoch (0 without a test set).
    public var testAccuracy: Double, testLoss: Double
    /// Training throughput and seconds of the epoch.
    public var imagesPerSecond: Double, seconds: Double
    /// Training images processed in all epochs so far.
    public var imagesSeen: Int
    /// Seconds since the run began, evaluations included: time to accuracy.
    public var wallSeconds: Double
    /// The epochs the run trains to; nil with a time budget.
    var epochs: Int?
    /// The steps done of a time budget's last, partial epoch (nil when whole).
    var stepsOfPartialEpoch: Int?
    /// With a time budget: the budget and its seconds spent.
    var timeBudget: Double?, budgetSecondsSpent: Double?

    enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", trainAccuracy = "train_accuracy", testAccuracy = "test_accuracy"
        case testLoss = "test_loss", imagesPerSecond = "images_per_second", seconds, imagesSeen = "images_seen"
        case wallSeconds = "wall_seconds"
        // `epochs` and the budget's fields are for `line` only: the JSON
        // keeps the figures of the epoch.
    }

    init(epoch: Int, trainLoss: Double, trainAccuracy: Double, testAccuracy: Double, testLoss: Double, imagesPerSecond: Double,
         seconds: Double, imagesSeen: Int, wallSeconds: Double, epochs: Int?, stepsOfPartialEpoch: Int?, timeBudget: Double?,
         budgetSecondsSpent: Double?) {
        (self.epoch, self.trainLoss, self.trainAccuracy, self.testAccuracy, self.testLoss) = (epoch, trainLoss, trainAccuracy, testAccuracy, testLoss)
        (self.imagesPerSecond, self.seconds, self.imagesSeen, self.wallSeconds) = (imagesPerSecond, seconds, imagesSeen, wallSeconds)
        (self.epochs, self.stepsOfPartialEpoch, self.timeBudget, self.budgetSecondsSpent) = (epochs, stepsOfPartialEpoch, timeBudget, budgetSecondsSpent)
    }

    init(_ result: EpochResult, trainer: Trainer, epochs: Int, wallSeconds: Double) {
        let budget = trainer.options.timeBudget
        epoch = result.epoch
        (trainLoss, trainAccuracy) = (result.loss, result.accuracy)
        (testAccuracy, testLoss) = (result.evaluation?.accuracy ?? 0, result.evaluation?.loss ?? 0)
        (imagesPerSecond, seconds) = (result.imagesPerSecond, result.seconds)
        imagesSeen = trainer.imagesSeen
        self.wallSeconds = wallSeconds
        self.epochs = budget == nil ? epochs : nil
        stepsOfPartialEpoch = result.isComplete ? nil : trainer.stepInEpoch
        timeBudget = budget
        budgetSecondsSpent = budget == nil ? nil : trainer.budgetSecondsUsed
    }

    /// The record as one line of JSON.
    /// - Throws: `LeNetError` when a figure cannot be written in JSON (not finite).
    public func json() throws -> String { try JSONLine.encode(self) }

    /// "epoch 3/10  train loss 1.2345  train accuracy 55.10%  test accuracy
    /// 56.20%  8123 images/s  6.2 s": the line `lenet train` prints.
    public var line: String {
        let position = epochs.map { "\(epoch)/\($0)" } ?? stepsOfPartialEpoch.map { "\(epoch) (\($0) steps)" } ?? "\(epoch)"
        var spent = ""
        if let budgetSecondsSpent, let timeBudget { spent = String(format: "  %.1f of %g s spent", budgetSecondsSpent, timeBudget) }
        return String(format: "epoch %@  train loss %.4f  train accuracy %.2f%%  test accuracy %.2f%%  %.0f images/s  %.1f s",
                      position, trainLoss, trainAccuracy * 100, testAccuracy * 100, imagesPerSecond, seconds) + spent
    }
}

extension BLASThreads {
    /// "OpenBLAS (Haswell kernels)", "BLIS": the BLAS and, for OpenBLAS, the
    /// kernels it runs (set by OPENBLAS_CORETYPE, or its choice for the CPU).
    static var summary: String { library + (coreName.map { " (\($0) kernels)" } ?? "") }
}

extension TrainingOptions {
    /// The options in words, as a run's first line gives them: "batch 64,
    /// adamw lr 0.003 (onecycle), label smoothing 0.1, augmented (crop 1,
    /// flip), flip test-time augmentation".
    /// - Parameter initialization: how the network's weights were drawn
    ///   (named when not PyTorch's).
    @_spi(CLI) public func summary(initialization: WeightInitialization = .pytorch) -> String {
        var parts = ["batch \(batchSize), \(optimizer.rawValue)" + (optimizer == .sdlm ? " (μ \(sdlmMu))" : "")
            + " lr \(learningRate)" + (schedule == .constant ? "" : " (\(schedule.rawValue))")]
        if warmupEpochs > 0 { parts.append("\(warmupEpochs) warm-up epoch(s)") }
        if labelSmoothing > 0 { parts.append("label smoothing \(labelSmoothing)") }
        if let a = augmentation, a.padding > 0 || a.horizontalFlip {
            parts.append("augmented (" + [a.padding > 0 ? "crop \(a.padding)" : nil, a.horizontalFlip ? "flip" : nil]
                .compactMap { $0 }.joined(separator: ", ") + ")")
        }
        if augmentation?.affine != nil { parts.append("affine distortions") }
        if let mapConstant { parts.append("MAP loss (j \(mapConstant))") }
        if initialization == .lecun { parts.append("LeCun initialization") }
        if testTimeAugmentation == .flip { parts.append("flip test-time augmentation") }
        if let ema { parts.append("weight average (EMA \(ema))") }
        if let timeBudget { parts.append(String(format: "a time budget of %g s", timeBudget)) }
        if weightDecay > 0 { parts.append("weight decay \(weightDecay)") }
        if normalization != .half {
            parts.append("inputs normalized by mean \(normalization.mean.map { "\($0)" }.joined(separator: ",")), "
                + "std \(normalization.std.map { "\($0)" }.joined(separator: ","))")
        }
        return parts.joined(separator: ", ")
    }
}

extension TrainingRecipe {
    /// The recipe in words: its epochs, network and options
    /// (`TrainingOptions.summary`).
    @_spi(CLI) public var summary: String {
        "\(options.epochs) epochs" + (model.map { " of \($0)" } ?? "") + ", " + options.summary(initialization: initialization)
    }
}

extension Normalization {
    /// The normalization written as text: one value, or one per channel,
    /// comma-separated ("0.5", "0.49,0.48,0.45").
    /// - Throws: `LeNetError` naming the mean or std when it is not a list
    ///   of numbers, or the values are not a normalization.
    @_spi(CLI) public init(mean: String, std: String) throws {
        func numbers(_ text: String, _ option: LeNetError.Option, example: String) throws -> [Float] {
            let parts = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else {
                throw LeNetError("expected numbers like 0.5 or \(example), got '\(text)'", option: option)
            }
            return parts.compactMap { $0 }
        }
        try self.init(mean: numbers(mean, .normalizationMean, example: "0.49,0.48,0.45"),
                      std: numbers(std, .normalizationStd, example: "0.25,0.24,0.26"))
    }
}

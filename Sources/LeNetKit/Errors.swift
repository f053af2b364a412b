/// An error a person can act on: what went wrong, and where (a file, a flag,
/// a tensor), in one line.
///
/// LeNetKit never traps on input that comes from a file or the command line;
/// it throws a `LeNetError` instead, and `lenet` prints its `description` on
/// stderr and exits non-zero.
public struct LeNetError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file, directory, flag or tensor the problem is in, if any.
    public var subject: String?
    /// What was expected and what was found.
    public var message: String

    /// The setting whose value is the problem, when it is one: a caller
    /// that took the value from elsewhere (`lenet` from a flag) names that
    /// instead of `subject`.
    @_spi(CLI) public var option: Option?

    /// - Parameters:
    ///   - message: what was expected and what was found.
    ///   - subject: the file, directory, flag or tensor it concerns.
    @_spi(CLI) public init(_ message: String, subject: String? = nil) {
        self.subject = subject
        self.message = message
    }

    /// An error in the value of `option`; `value`, when given, follows the
    /// option's name in `subject` (`TrainingOptions.batchSize 1000000`).
    @_spi(CLI) public init(_ message: String, option: Option, value: String? = nil) {
        self.init(message, subject: option.rawValue + (value.map { " " + $0 } ?? ""))
        self.option = option
    }

    /// The settings a `LeNetError` can concern, by the name a library user
    /// sets them by.
    @_spi(CLI) public enum Option: String, Sendable, CaseIterable {
        case epochs = "TrainingOptions.epochs", batchSize = "TrainingOptions.batchSize"
        case learningRate = "TrainingOptions.learningRate", momentum = "TrainingOptions.momentum"
        case weightDecay = "TrainingOptions.weightDecay", stepEpochs = "TrainingOptions.stepEpochs"
        case stepGamma = "TrainingOptions.stepGamma", warmupEpochs = "TrainingOptions.warmupEpochs"
        case timeBudget = "TrainingOptions.timeBudget", labelSmoothing = "TrainingOptions.labelSmoothing"
        case ema = "TrainingOptions.ema", sdlmMu = "TrainingOptions.sdlmMu"
        case curvatureSamples = "TrainingOptions.curvatureSamples", mapConstant = "TrainingOptions.mapConstant"
        case threads = "TrainingOptions.threads", cropPadding = "Augmentation.padding"
        case normalizationMean = "Normalization.mean", normalizationStd = "Normalization.std"
        /// The images a training run takes from its dataset (`TrainingRun.Configuration.limit`).
        case limit = "TrainingRun.Configuration.limit"
        case validationSplit = "ImageFolder.Options.validationFraction"
        case skipBadImages = "ImageFolder.Options.skipsBadImages"
        /// Where a run reads its data (`DatasetLocation`).
        case data = "DatasetLocation.directory"
        /// The network a run trains, a built-in name or a description file.
        case model = "TrainingRun.Configuration.model"
        /// Files and directories a run writes.
        case output = "TrainingRun.Configuration.output", logJSON = "TrainingRun.Configuration.logJSON"
        case report = "TrainingRun.Configuration.report", logits = "EvaluationRun.logits"
        case evaluationBatchSize = "evaluate(batchSize:)", top = "classify(top:)"
    }

    /// `subject: message`, or the message alone.
    public var description: String {
        if let subject { return "\(subject): \(message)" }
        return message
    }

    /// `description` with every setting it names (`option`, and those the
    /// message refers to, such as "lower TrainingOptions.learningRate")
    /// called by `name`: `lenet` passes its flags.
    @_spi(CLI) public func description(naming name: (Option) -> String) -> String {
        // Longest first, so that no name is replaced inside a longer one.
        Option.allCases.sorted { $0.rawValue.count > $1.rawValue.count }.reduce(description) { line, option in line.replacingOccurrences(of: option.rawValue, with: name(option)) }
    }
}

/// Checked conversions of numbers read from files (optimizer states,
/// checkpoint metadata) into counts: each returns nil instead of trapping
/// on a value that is not finite, not whole, negative or too large, so the
/// reader can throw a `LeNetError` that names the file and the value.
enum WholeNumber {
    /// The largest step count or epoch a state may hold: far beyond any
    /// run, and small enough that counting on from it cannot overflow.
    static let maximumCount = 1_000_000_000
    /// The largest number of images seen a checkpoint may record.
    static let maximumImages = 1 << 50

    /// `value` as an Int when it is a whole number in 0...maximum.
    static func count(_ value: Float, maximum: Int = maximumCount) -> Int? {
        guard value.isFinite, value >= 0, value <= Float(maximum), let n = Int(exactly: value), n <= maximum else { return nil }
        return n
    }

    /// `text` (decimal digits) as an Int in 0...maximum.
    static func count(_ text: String, maximum: Int = maximumCount) -> Int? {
        guard let n = Int(text), n >= 0, n <= maximum else { return nil }
        return n
    }
}

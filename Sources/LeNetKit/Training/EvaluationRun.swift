import Foundation

/// A checkpoint evaluated on a test set, as `lenet eval` does it: the
/// outputs checked, the network loaded, the memory checked, then the
/// evaluation, and optionally every logit in a safetensors file and an
/// HTML report.
@_spi(CLI) public struct EvaluationRun {
    /// What to evaluate, on what, and what to write.
    public struct Configuration: Sendable {
        /// The weights (safetensors), from `TrainingRun` or PyTorch's state_dict.
        public var weights: String
        /// A built-in network's name or a JSON description, overriding the file's.
        public var model: String?
        /// The dataset; its test split is evaluated.
        public var data: DatasetLocation
        /// Images per forward pass.
        public var batchSize = Configuration.defaultBatchSize
        /// The batch size a memory error compares `batchSize` with.
        static let defaultBatchSize = 256
        /// Threads each batch is split across, and whether they were chosen
        /// (a memory error then may blame them).
        public var threads = ProcessInfo.processInfo.activeProcessorCount, threadsChosen = false
        /// The views each prediction averages.
        public var testTimeAugmentation = TestTimeAugmentation.none
        /// A safetensors file for every test image's logits and label.
        public var logits: String?
        /// A directory for the HTML report.
        public var report: String?
        /// Whether the network may run Winograd's kernels (`Network.allowsWinograd`).
        public var allowsWinograd = true

        public init(weights: String, data: DatasetLocation) {
            self.weights = weights
            self.data = data
        }
    }

    /// The network, as the checkpoint holds it.
    public let network: Network
    /// The test set.
    public let test: ImageDataset
    /// The result.
    public let evaluation: Evaluation

    /// Runs the evaluation and writes what the configuration asks for.
    /// - Throws: `LeNetError` naming the option or file at fault.
    public init(_ c: Configuration, log: (String) -> Void = { _ in },
                decoding: ((_ what: String, _ done: Int, _ total: Int) -> Void)? = nil) throws {
        guard c.batchSize > 0 else { throw LeNetError("must be > 0, got \(c.batchSize)", option: .evaluationBatchSize) }
        if let report = c.report { try OutputPath.checkDirectory(report, option: .report) }
        if let logits = c.logits { try OutputPath.checkFile(logits, option: .logits) }
        let loaded = try Checkpoint.loadNetwork(path: c.weights, model: c.model)
        network = loaded.network
        network.allowsWinograd = c.allowsWinograd
        // Found once: the kind names the dataset in the record and the table.
        let found = try c.data.resolved()
        var location = c.data
        (location.directory, location.kind) = (found.directory, found.kind)
        test = try location.load(.test, shape: network.inputShape, threads: c.threads, log: log, progress: decoding)
        let (network, test, keepsLogits) = (network, test, c.logits != nil)
        try MemoryPlan(batchSize: c.batchSize, defaultBatchSize: Configuration.defaultBatchSize,
                       threads: c.threads, threadsChosen: c.threadsChosen) { batch, threads in
            network.evaluationMemoryEstimate(images: test.count, batchSize: batch, keepsLogits: keepsLogits, threads: threads,
                                             testTimeAugmentation: c.testTimeAugmentation)
        }.check()
        let result = try network.evaluate(on: test, normalization: loaded.normalization, batchSize: c.batchSize, threads: c.threads,
                                          misclassifiedLimit: c.report == nil ? 0 : TrainingReport.defaultSampleCount,
                                          keepsLogits: keepsLogits, testTimeAugmentation: c.testTimeAugmentation)
        evaluation = result
        if let logits = c.logits {
            try SafetensorsFile(tensors: [
                SafetensorsTensor(name: "logits", shape: [test.count, network.outputShape.count], values: result.logits),
                SafetensorsTensor(name: "labels", shape: [test.count], values: test.labels.map(Float.init)),
            ], metadata: ["weights": c.weights, "dataset": test.name]).write(path: logits)
        }
        if let report = c.report {
            let map = try FeatureMap(network: network, dataset: test, normalization: loaded.normalization,
                                     highlighting: Array(result.misclassified.prefix(TrainingReport.highlightedCount)),
                                     batchSize: c.batchSize)
            let inside = test.count > 0 ? try ActivationMaps(network: network, dataset: test, normalization: loaded.normalization) : nil
            try TrainingReport(weights: c.weights, model: network.displayName, metadata: loaded.metadata, test: test,
                               evaluation: result, featureMap: map, activationMaps: inside).write(directory: report)
            log("wrote \(report)/index.html")
        }
        let kind = found.kind
        record = EvaluationRecord(result, model: network.displayName, dataset: kind.rawValue)
        datasetName = kind.displayName
    }

    /// What `lenet eval --json` prints.
    public let record: EvaluationRecord
    private let datasetName: String

    /// The accuracy line, the per-class accuracy and the confusion matrix,
    /// as `lenet eval` prints them.
    public var table: String {
        let e = evaluation
        var lines = [String(format: "%@ on %@ test (%@ images): accuracy %.2f%%  loss %.4f  %.0f images/s",
                            network.displayName, datasetName, grouped(e.count), e.accuracy * 100, e.loss, e.imagesPerSecond)]
        lines.append("\nper-class accuracy:")
        let width = e.classNames.map(\.count).max() ?? 5
        func padded(_ name: String) -> String { name.padding(toLength: width, withPad: " ", startingAt: 0) }
        for (name, accuracy) in zip(e.classNames, e.perClass) { lines.append("  " + padded(name) + String(format: "  %6.2f%%", accuracy * 100)) }
        lines.append("\nconfusion matrix (rows: true class, columns: predicted):")
        let cell = max(5, String(e.confusion.flatMap { $0 }.max() ?? 0).count + 1)
        func right(_ text: String) -> String { String(repeating: " ", count: max(cell - text.count, 0)) + text }
        lines.append("  " + String(repeating: " ", count: width) + e.classNames.map { right(String($0.prefix(cell - 1))) }.joined())
        for (name, row) in zip(e.classNames, e.confusion) { lines.append("  " + padded(name) + row.map { right(String($0)) }.joined()) }
        return lines.joined(separator: "\n")
    }
}

/// An evaluation as `lenet eval --json` prints it (snake_case keys, sorted).
@_spi(CLI) public struct EvaluationRecord: Codable, Sendable, Equatable {
    var accuracy: Double, correct: Int, count: Int, loss: Double
    /// Accuracy by class name.
    var perClass: [String: Double]
    var classNames: [String]
    /// Rows: true class; columns: predicted.
    var confusion: [[Int]]
    var imagesPerSecond: Double
    /// The network's name, and the dataset's kind (`cifar10`, `mnist`, …).
    var model: String, dataset: String

    enum CodingKeys: String, CodingKey {
        case accuracy, correct, count, loss, perClass = "per_class", classNames = "class_names", confusion
        case imagesPerSecond = "images_per_second", model, dataset
    }

    init(_ e: Evaluation, model: String, dataset: String) {
        (accuracy, correct, count, loss) = (e.accuracy, e.correct, e.count, e.loss)
        perClass = Dictionary(zip(e.classNames, e.perClass), uniquingKeysWith: { first, _ in first })
        (classNames, confusion, imagesPerSecond) = (e.classNames, e.confusion, e.imagesPerSecond)
        (self.model, self.dataset) = (model, dataset)
    }

    /// The record as one line of JSON.
    /// - Throws: `LeNetError` when a figure cannot be written in JSON (not finite).
    public func json() throws -> String { try JSONLine.encode(self) }
}

/// One line of JSON with sorted keys: the records `lenet` prints and logs.
enum JSONLine {
    /// - Throws: `LeNetError` when `value` holds what JSON cannot (a number
    ///   that is not finite), naming it.
    static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw LeNetError("cannot be written as JSON: \(error)", subject: "\(T.self)")
        }
    }
}

extension Network {
    /// What a network is called in a person's lines: its description's name.
    @_spi(CLI) public var displayName: String { networkDescription.name ?? "a custom network" }
}

extension Checkpoint {
    /// `loadNetwork(path:description:)` with the network `model` names
    /// (`networkDescription(path:named:)`), or the file's own when nil; an
    /// error about `model` that names no file names the model option.
    static func loadNetwork(path: String, model: String?) throws
        -> (network: Network, metadata: [String: String], normalization: Normalization) {
        try loadNetwork(path: path, description: networkDescription(path: path, model: model))
    }

    /// `networkDescription(path:named:)` of `model`, or nil (the file's own)
    /// when nil; an error about `model` that names no file names the model option.
    static func networkDescription(path: String, model: String?) throws -> NetworkDescription? {
        try model.map { name in try LeNetError.aboutModel { try networkDescription(path: path, named: name) } }
    }
}

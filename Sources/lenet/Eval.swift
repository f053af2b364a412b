import ArgumentParser
import Foundation
import LeNetKit

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on the test split: accuracy, per-class accuracy, confusion matrix.")

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "The weights (safetensors), from `lenet train --output` or PyTorch's state_dict.")
    var weights: String

    @Option(help: "The network (a built-in name or a JSON description), overriding the file's (default: its 'network' metadata, else its model's name or tensor names).")
    var model: String?

    @Option(name: .customLong("batch-size"), help: "Images per forward pass.")
    var batchSize = 256

    @Flag(help: "Print one JSON object instead of tables.")
    var json = false

    @Option(help: "Also write every test image's logits (tensor 'logits', N×classes) and label ('labels') to this safetensors file, to compare with another runtime.")
    var logits: String?

    @Option(help: "Test-time augmentation: none, or flip (the mean of each image's and its mirror's softmax).")
    var tta: TestTimeAugmentation = .none

    @Option(help: "Also write an HTML report (confusion matrix, per-class accuracy, misclassified images) to DIR/index.html.")
    var report: String?

    func run() throws {
        let threads = try dataOptions.resolvedThreads()
        guard batchSize > 0 else { throw LeNetError("must be > 0, got \(batchSize)", subject: "--batch-size") }
        if let report { try checkReportDirectory(report, flag: "--report") }
        if let logits {
            try checkWritable(logits, flag: "--logits")
            try checkNotDirectory(logits, flag: "--logits")
        }
        let loaded = try Checkpoint.loadNetwork(path: weights, description: model.map { try modelDescription($0, forCheckpoint: weights) })
        let (directory, kind) = try DataLocation.resolve(directory: dataOptions.data, kind: dataOptions.dataset)
        let test = try dataOptions.load(kind, from: directory, split: .test, shape: loaded.network.inputShape, threads: threads)
        let network = loaded.network, keepsLogits = logits != nil
        let plan = MemoryPlan(remaining: network.evaluationMemoryEstimate(images: test.count, batchSize: batchSize,
                                                                          keepsLogits: keepsLogits, threads: threads,
                                                                          testTimeAugmentation: tta),
                              culprit: MemoryPlan.culprit(batchSize: (batchSize, 256), threads: dataOptions.threads) {
                                  network.evaluationMemoryEstimate(images: test.count, batchSize: $0, keepsLogits: keepsLogits,
                                                                   threads: $1, testTimeAugmentation: tta).bytes
                              })
        try plan.check()
        let result = try loaded.network.evaluate(on: test, normalization: loaded.normalization, batchSize: batchSize, threads: threads,
                                                 misclassifiedLimit: report == nil ? 0 : TrainingReport.defaultSampleCount,
                                                 keepsLogits: logits != nil, testTimeAugmentation: tta)
        if let logits {
            let K = loaded.network.outputShape.count
            try SafetensorsFile(tensors: [
                SafetensorsTensor(name: "logits", shape: [test.count, K], values: result.logits),
                SafetensorsTensor(name: "labels", shape: [test.count], values: test.labels.map(Float.init)),
            ], metadata: ["weights": weights, "dataset": test.name]).write(path: logits)
        }
        if let report {
            let map = try FeatureMap(network: loaded.network, dataset: test, normalization: loaded.normalization,
                                     highlighting: Array(result.misclassified.prefix(TrainingReport.highlightedCount)),
                                     batchSize: batchSize)
            let inside = test.count > 0 ? try ActivationMaps(network: loaded.network, dataset: test, normalization: loaded.normalization) : nil
            try TrainingReport(weights: weights, model: displayName(loaded.network), metadata: loaded.metadata, test: test,
                               evaluation: result, featureMap: map, activationMaps: inside).write(directory: report)
            printError("wrote \(report)/index.html")
        }
        if json {
            let object: [String: Any] = [
                "accuracy": result.accuracy,
                "correct": result.correct,
                "count": result.count,
                "loss": result.loss,
                "per_class": Dictionary(uniqueKeysWithValues: zip(result.classNames, result.perClass)),
                "class_names": result.classNames,
                "confusion": result.confusion,
                "images_per_second": result.imagesPerSecond,
                "model": displayName(loaded.network),
                "dataset": kind.rawValue,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print(String(format: "%@ on %@ test (%@ images): accuracy %.2f%%  loss %.4f  %.0f images/s",
                     displayName(loaded.network), kind.displayName, grouped(result.count), result.accuracy * 100,
                     result.loss, result.imagesPerSecond))
        print("\nper-class accuracy:")
        let width = result.classNames.map(\.count).max() ?? 5
        for (name, acc) in zip(result.classNames, result.perClass) {
            print("  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + String(format: "  %6.2f%%", acc * 100))
        }
        print("\nconfusion matrix (rows: true class, columns: predicted):")
        let cell = max(5, String(result.confusion.flatMap { $0 }.max() ?? 0).count + 1)
        let short = result.classNames.map { String($0.prefix(cell - 1)) }
        print("  " + String(repeating: " ", count: width) + short.map { String(repeating: " ", count: cell - $0.count) + $0 }.joined())
        for (name, row) in zip(result.classNames, result.confusion) {
            let cells = row.map { v -> String in let s = String(v); return String(repeating: " ", count: cell - s.count) + s }
            print("  " + name.padding(toLength: width, withPad: " ", startingAt: 0) + cells.joined())
        }
    }
}

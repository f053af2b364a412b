import ArgumentParser
import Foundation
@_spi(CLI) import LeNetKit

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on the test split: accuracy, per-class accuracy, confusion matrix.")

    @OptionGroup var dataOptions: DataOptions
    @OptionGroup var checkpoint: CheckpointOptions
    @Option(name: .customLong("batch-size"), help: "Images per forward pass.") var batchSize = 256
    @Flag(help: "Print one JSON object instead of tables.") var json = false
    @Option(help: "Also write every test image's logits (tensor 'logits', N×classes) and label ('labels') to this safetensors file, to compare with another runtime.") var logits: String?
    @Option(help: "Test-time augmentation: none, or flip (the mean of each image's and its mirror's softmax).") var tta: TestTimeAugmentation = .none
    @Option(help: "Also write an HTML report (confusion matrix, per-class accuracy, misclassified images) to DIR/index.html.") var report: String?
    @OptionGroup var kernelOptions: KernelOptions

    func run() throws {
        var c = EvaluationRun.Configuration(weights: checkpoint.weights, data: dataOptions.location)
        c.allowsWinograd = !kernelOptions.noWinograd
        (c.model, c.batchSize, c.testTimeAugmentation, c.logits, c.report) = (checkpoint.model, batchSize, tta, logits, report)
        (c.threads, c.threadsChosen) = (try dataOptions.threadOptions.resolved(), dataOptions.threadOptions.threads != nil)
        let run = try EvaluationRun(c, log: printError, decoding: ProgressDisplay().update)
        print(json ? try run.record.json() : run.table)
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify your own images (JPEG, PNG, PPM, PGM) with a checkpoint: the top classes and their probabilities.",
        discussion: "A checkpoint trained on MNIST finds the digit in each image and lays it out as MNIST's are; others resize "
            + "each image to the input. Class names come from the checkpoint. docs/TRAINING.md and docs/DIGITS.md.")

    @OptionGroup var checkpoint: CheckpointOptions
    @Option(help: "How many classes to print per image (per digit with --number).") var top = 3
    @Option(help: "digit (find the digit, MNIST's layout) or resize (the whole image) (default: the checkpoint's; digit for MNIST).") var preprocess: ImagePreprocessing?
    @Flag(help: "Read each image as a row of digits (a zip code, an amount) and print the number.") var number = false
    @Option(help: "Write what the network saw for each image (each digit with --number) as PNG files in this directory.") var show: String?
    @Flag(help: "Print one JSON object instead of lines.") var json = false
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var kernelOptions: KernelOptions
    @Argument(help: "Image files: JPEG (baseline, progressive; colour, gray, CMYK), PNG (any colour type and bit depth, interlaced or not), PPM or PGM (P2, P3, P5, P6).") var images: [String] = []

    func run() throws {
        let classifier = try Classifier(weights: checkpoint.weights, model: checkpoint.model)
        classifier.network.threads = try threadOptions.resolved()
        classifier.network.allowsWinograd = !kernelOptions.noWinograd
        if let preprocess { classifier.preprocessing = preprocess }
        let run = try PredictionRun(classifier: classifier, weights: checkpoint.weights, files: images, top: top,
                                    number: number, show: show)
        print(json ? try run.json() : run.lines.joined(separator: "\n"))
    }
}

struct Time: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time each layer's forward and backward pass (medians), like `caffe time`.")

    @OptionGroup var networkOptions: NetworkOptions
    @Option(name: .customLong("batch-size"), help: "Images per pass.") var batchSize = 36
    @Option(help: "Timed passes (after two warm-up passes).") var iterations = 50
    @Flag(help: "Time the forward-only path that eval and predict run, step by step, instead of training's layers.") var inference = false
    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var kernelOptions: KernelOptions

    func run() throws {
        let threads = try threadOptions.resolved()
        guard iterations > 0 else { throw LeNetError("must be > 0, got \(iterations)", subject: "--iterations") }
        let network = try networkOptions.network()
        network.threads = threads
        network.allowsWinograd = !kernelOptions.noWinograd
        print(try network.timingTable(batch: batchSize, iterations: iterations, inference: inference))
    }
}

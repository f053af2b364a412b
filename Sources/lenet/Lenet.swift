import ArgumentParser
import Foundation
@_spi(CLI) import LeNetKit

@main
struct Lenet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lenet", abstract: "Train and evaluate LeNet convolutional networks on the CPU (OpenBLAS).",
        version: LeNetKitVersion.string, subcommands: [Train.self, Eval.self, Predict.self, Export.self, Summary.self, Time.self])

    /// Parses, runs, and turns an error into one line on stderr and exit 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as LeNetError {
            printError("lenet: error: " + error.description(naming: flag))
            Foundation.exit(1)
        } catch {
            // --help and --version print as usual; a usage error becomes one line, like every other error.
            guard exitCode(for: error) != .success else { exit(withError: error) }
            var line = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            if line.hasPrefix("Error: ") { line.removeFirst("Error: ".count) }
            printError("lenet: error: \(line) (see 'lenet --help')")
            Foundation.exit(1)
        }
    }
}

/// The flag that sets a library option on the command line.
func flag(_ option: LeNetError.Option) -> String {
    switch option {
    case .epochs: "--epochs"
    case .batchSize, .evaluationBatchSize: "--batch-size"
    case .learningRate: "--lr"
    case .momentum: "--momentum"
    case .weightDecay: "--weight-decay"
    case .stepEpochs: "--step-epochs"
    case .stepGamma: "--step-gamma"
    case .warmupEpochs: "--warmup-epochs"
    case .timeBudget: "--time-budget"
    case .labelSmoothing: "--label-smoothing"
    case .ema: "--ema"
    case .sdlmMu: "--sdlm-mu"
    case .curvatureSamples: "--curvature-samples"
    case .mapConstant: "--map-constant"
    case .threads: "--threads"
    case .cropPadding: "--crop-padding"
    case .normalizationMean: "--mean"
    case .normalizationStd: "--std"
    case .limit: "--limit"
    case .validationSplit: "--validation-split"
    case .skipBadImages: "--skip-bad-images"
    case .data: "--data"
    case .model: "--model"
    case .output: "--output"
    case .logJSON: "--log-json"
    case .report: "--report"
    case .logits: "--logits"
    case .top: "--top"
    }
}

/// A line on stdout or stderr, written at once (not held in a buffer when piped).
func printNow(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
func printError(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

extension DatasetKind: ExpressibleByArgument {}
extension TrainingOptions.OptimizerKind: ExpressibleByArgument {}
extension TrainingOptions.Schedule: ExpressibleByArgument {}
extension TestTimeAugmentation: ExpressibleByArgument {}
extension TrainingRecipe: ExpressibleByArgument {}
extension WeightInitialization: ExpressibleByArgument {}
extension CurvatureGrouping: ExpressibleByArgument {}
extension ImagePreprocessing: ExpressibleByArgument {}

/// `--threads`, for every command.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads that run parts of each batch at once, each with its own copy of the network's buffers (default: all cores).") var threads: Int?

    /// The thread count asked for, or every core.
    func resolved() throws -> Int {
        guard let threads else { return ProcessInfo.processInfo.activeProcessorCount }
        guard threads > 0 else { throw LeNetError("must be > 0, got \(threads)", option: .threads) }
        return threads
    }
}

/// Options every command that reads data shares.
struct DataOptions: ParsableArguments {
    @Option(help: "The dataset directory (default: ./data).") var data: String?
    @Option(help: "cifar10, mnist, fashion-mnist or folder (class folders of images under train/ and test/; default: detected from the files).") var dataset: DatasetKind?
    @Flag(name: .customLong("skip-bad-images"), help: "Image folders: skip files that cannot be decoded (counted and listed) instead of stopping at the first.") var skipBadImages = false
    @Option(name: .customLong("validation-split"), help: "Image folders without a test/ folder: the share of each class of train/ held out as the test set (seeded, the same in every run).") var validationSplit: Double?
    @OptionGroup var threadOptions: ThreadOptions

    var location: DatasetLocation {
        var location = DatasetLocation(directory: data, kind: dataset)
        location.skipsBadImages = skipBadImages
        location.validationFraction = validationSplit
        return location
    }
}

/// `--weights` and `--model` as eval, predict and export take them.
struct CheckpointOptions: ParsableArguments {
    @Option(help: "The weights (safetensors), from `lenet train --output` or PyTorch's state_dict.") var weights: String
    @Option(help: "The network (a built-in name or a JSON description), overriding the file's (default: its 'network' metadata, else its model's name or tensor names).") var model: String?
}

/// `--no-winograd`, for the commands that run the forward-only path.
struct KernelOptions: ParsableArguments {
    @Flag(help: "Run every convolution directly, without Winograd's F(2×2, 5×5) for conv2-like layers (docs/WINOGRAD.md).") var noWinograd = false
}

/// `--model` and `--weights` as summary and time take them: a built-in
/// name or a JSON description, or a checkpoint's network.
struct NetworkOptions: ParsableArguments {
    @Option(help: "The network: \(NetworkDescription.builtInNames.joined(separator: ", ")), or a JSON description file (default: cifar-lenet, or --weights's).") var model: String?
    @Option(help: "A checkpoint (safetensors) whose network to use, instead of --model.") var weights: String?

    func network() throws -> Network {
        guard model == nil || weights == nil else { throw LeNetError("give --model or --weights, not both", subject: "--weights") }
        return try Network.named(model ?? "cifar-lenet", weights: weights)
    }
}

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each layer's shapes, kernel, parameters and connections, and the totals; --json: the network's description.")

    @OptionGroup var networkOptions: NetworkOptions
    @Flag(help: "Print the network's description as JSON (what `lenet train --model FILE.json` reads) instead of the table.") var json = false

    func run() throws {
        let network = try networkOptions.network()
        if json { return print(network.networkDescription.json(pretty: true)) }
        print("\(network.displayName): input \(network.inputShape), \(network.outputShape.count) classes")
        print(network.summaryTable())
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint as an ONNX model (opset \(ONNXExport.opset)) for ONNX Runtime and other runtimes.",
        discussion: "It takes the normalized (N, C, H, W) tensor and gives the logits (N, classes); docs/ONNX.md.")

    @OptionGroup var checkpoint: CheckpointOptions
    @Option(help: "The ONNX file to write.") var output: String

    func run() throws {
        print(try ONNXExport.write(checkpoint: checkpoint.weights, model: checkpoint.model, to: output))
    }
}

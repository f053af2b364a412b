import ArgumentParser
import Foundation
import LeNetKit

@main
struct Lenet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lenet",
        abstract: "Train and evaluate LeNet convolutional networks on the CPU (OpenBLAS).",
        version: LeNetKitVersion.string,
        subcommands: [Train.self, Eval.self, Predict.self, Export.self, Summary.self, Time.self]
    )

    /// Parses, runs, and turns a LeNetError into one line on stderr and exit 1.
    static func main() {
        do {
            var command = try parseAsRoot(expandingRecipe(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch let error as LeNetError {
            printError("lenet: error: \(namingFlags(error))")
            Foundation.exit(1)
        } catch {
            // --help and --version print as usual; a usage error becomes
            // one line, like every other error.
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }
            var line = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            if line.hasPrefix("Error: ") { line.removeFirst("Error: ".count) }
            printError("lenet: error: \(line) (see 'lenet --help')")
            Foundation.exit(1)
        }
    }
}

/// The library's errors name the option a bad value was given in
/// (`TrainingOptions.batchSize`); on the command line that value came from
/// a flag, so the line names the flag.
let flagsOfOptions: [(option: String, flag: String)] = [
    ("TrainingOptions.epochs", "--epochs"), ("TrainingOptions.batchSize", "--batch-size"),
    ("TrainingOptions.learningRate", "--lr"), ("TrainingOptions.momentum", "--momentum"),
    ("TrainingOptions.weightDecay", "--weight-decay"), ("TrainingOptions.stepEpochs", "--step-epochs"),
    ("TrainingOptions.stepGamma", "--step-gamma"), ("Augmentation.padding", "--crop-padding"),
    ("TrainingOptions.warmupEpochs", "--warmup-epochs"), ("TrainingOptions.timeBudget", "--time-budget"), ("TrainingOptions.labelSmoothing", "--label-smoothing"),
    ("TrainingOptions.ema", "--ema"), ("TrainingOptions.sdlmMu", "--sdlm-mu"),
    ("TrainingOptions.curvatureSamples", "--curvature-samples"), ("TrainingOptions.mapConstant", "--map-constant"),
    ("evaluate(batchSize:)", "--batch-size"), ("classify(top:)", "--top"),
]

/// `error` with each option it names replaced by its flag.
func namingFlags(_ error: LeNetError) -> String {
    flagsOfOptions.reduce(error.description) { line, pair in line.replacingOccurrences(of: pair.option, with: pair.flag) }
}

/// "OpenBLAS (Haswell kernels)", "BLIS": the BLAS and, for OpenBLAS, the
/// kernels it runs (set by OPENBLAS_CORETYPE, or its choice for the CPU).
var blasDescription: String {
    BLASThreads.library + (BLASThreads.coreName.map { " (\($0) kernels)" } ?? "")
}

/// A line on stdout, written at once (not held in a buffer when piped).
func printNow(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

extension DatasetKind: ExpressibleByArgument {}
extension TrainingOptions.OptimizerKind: ExpressibleByArgument {}
extension TrainingOptions.Schedule: ExpressibleByArgument {}
extension TestTimeAugmentation: ExpressibleByArgument {}

/// What `--threads` does, for every command's help.
let threadsDiscussion = """
    Each batch is split into at most min(threads, batch size) parts, one thread and one copy of the \
    network's buffers each; OpenBLAS runs single-threaded inside them. More threads than cores are \
    allowed but make nothing faster: they time-share the cores, and threads beyond the batch's parts \
    cost no memory.
    """

/// Options every command that reads data shares.
struct DataOptions: ParsableArguments {
    @Option(help: "The dataset directory (default: ./data).")
    var data: String?

    @Option(help: "cifar10, mnist, fashion-mnist or folder (class folders of images under train/ and test/; default: detected from the files).")
    var dataset: DatasetKind?

    @Flag(name: .customLong("skip-bad-images"),
          help: "Image folders: skip files that cannot be decoded (counted and listed) instead of stopping at the first.")
    var skipBadImages = false

    @Option(name: .customLong("validation-split"),
            help: "Image folders without a test/ folder: the share of each class of train/ held out as the test set (seeded, the same in every run).")
    var validationSplit: Double?

    @Option(help: ArgumentHelp("Threads that run parts of each batch at once (default: all cores).",
                               discussion: threadsDiscussion))
    var threads: Int?

    /// The thread count asked for, or every core.
    func resolvedThreads() throws -> Int { try checkThreads(threads) }
}

/// `--threads`, checked: the count asked for, or every core.
func checkThreads(_ threads: Int?) throws -> Int {
    guard let threads else { return ProcessInfo.processInfo.activeProcessorCount }
    guard threads > 0 else { throw LeNetError("must be > 0, got \(threads)", subject: "--threads") }
    return threads
}

/// `--model` and `--weights` as commands that show a network take them:
/// a built-in name or a JSON description, or a checkpoint's network.
struct NetworkOptions: ParsableArguments {
    @Option(help: "The network: \(NetworkDescription.builtInNames.joined(separator: ", ")), or a JSON description file (default: cifar-lenet, or --weights's).")
    var model: String?

    @Option(help: "A checkpoint (safetensors) whose network to use, instead of --model.")
    var weights: String?

    /// The network asked for, freshly initialized (or with the checkpoint's weights).
    func network() throws -> Network {
        if let weights {
            guard model == nil else { throw LeNetError("give --model or --weights, not both", subject: "--weights") }
            return try Checkpoint.loadNetwork(path: weights).network
        }
        let model = model ?? "cifar-lenet"
        return try buildNetwork(modelDescription(model), seed: 0, model: model)
    }
}

/// What a network is called in the tool's lines: its description's name.
func displayName(_ network: Network) -> String { network.networkDescription.name ?? "a custom network" }

/// `Network(description, seed:)`, its errors naming the description file
/// `--model` gave (a shape that does not chain is found only here).
func buildNetwork(_ description: NetworkDescription, seed: UInt64, model: String?,
                  initialization: WeightInitialization = .pytorch) throws -> Network {
    do {
        return try Network(description, seed: seed, initialization: initialization)
    } catch let error as LeNetError {
        guard let model, !NetworkDescription.builtInNames.contains(model) else { throw error }
        throw LeNetError(error.description, subject: model)
    }
}

/// `--model NAME|FILE`: a built-in network with `classes` outputs (the
/// checkpoint's, given `weights`), or a JSON description file (its own
/// outputs). An error that names no file names the flag.
func modelDescription(_ model: String, classes: Int = 10, forCheckpoint weights: String? = nil) throws -> NetworkDescription {
    do {
        if let weights { return try Checkpoint.networkDescription(path: weights, named: model) }
        return try NetworkDescription.named(model, classes: classes)
    } catch let error as LeNetError where error.subject == nil {
        throw LeNetError(error.message, subject: "--model")
    }
}

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print each layer's shapes, kernel, parameters and connections, and the totals; --json: the network's description.")

    @OptionGroup var networkOptions: NetworkOptions

    @Flag(help: "Print the network's description as JSON (what `lenet train --model FILE.json` reads) instead of the table.")
    var json = false

    func run() throws {
        let network = try networkOptions.network()
        if json { return print(network.networkDescription.json(pretty: true)) }
        print("\(displayName(network)): input \(network.inputShape), \(network.outputShape.count) classes")
        print(network.summaryTable())
    }
}

import ArgumentParser
import Foundation
import LeNetKit

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model; write a checkpoint after every epoch.",
        discussion: "Defaults are the baseline recipe: cifar-lenet, Adam, lr 1e-3, batch 36, 10 epochs.")

    @OptionGroup var dataOptions: DataOptions

    @Option(help: ArgumentHelp("A named recipe of training flags (fast and best, made for cifar-lenet on CIFAR-10; lenet5-fashion, made for lenet5 on Fashion-MNIST; lenet5-1998, the 1998 paper's training of lenet5-rbf on MNIST; lenet5-mnist, lenet5 on MNIST): its flags come first, and flags given here override them.",
                               discussion: recipesDiscussion))
    var recipe: TrainingRecipe?

    @Option(help: "The network: \(NetworkDescription.builtInNames.joined(separator: ", ")), or a JSON description file (`lenet summary --json` writes one; default: --resume's network, else cifar-lenet for CIFAR-10 and image folders, lenet5 for MNIST and Fashion-MNIST).")
    var model: String?

    @Option(help: "Epochs to train (in all, counting those a resumed checkpoint already did).")
    var epochs = 10

    @Option(name: .customLong("batch-size"), help: "Images per step.")
    var batchSize = 36

    @Option(help: "Learning rate.")
    var lr: Float = 1e-3

    @Option(help: "adam, adamw (decoupled weight decay), sgd, or sdlm (LeCun et al. 1998's stochastic diagonal Levenberg–Marquardt: each weight's rate lr/(--sdlm-mu + its curvature), the curvature estimated on --curvature-samples images before each epoch).")
    var optimizer: TrainingOptions.OptimizerKind = .adam

    @Option(name: .customLong("sdlm-mu"), help: "With --optimizer sdlm: μ, added to every curvature (the paper's 0.02).")
    var sdlmMu: Float = 0.02

    @Option(name: .customLong("curvature-samples"), help: "With --optimizer sdlm: the training images the curvature is estimated on before each epoch (the paper's 500).")
    var curvatureSamples = 500

    @Option(help: "With --optimizer sdlm: divide each weight's rate by its own curvature (connection, the paper's) or by its unit's (unit: the sum over the weights and bias feeding the same unit or map).")
    var curvature: CurvatureGrouping = .connection

    @Option(help: "The training loss: cross-entropy, or map (LeCun et al. 1998's MAP loss for the RBF output, with --map-constant j).")
    var loss: LossChoice = .crossEntropy

    @Option(name: .customLong("map-constant"), help: "With --loss map: j, the penalty of the rubbish class (docs/LENET5.md).")
    var mapConstant: Float?

    @Option(help: "How a new network's weights are drawn: pytorch (uniform in ±1/√fan-in) or lecun (±2.4/fan-in, the paper's).")
    var `init`: WeightInitialization = .pytorch

    @Option(help: "Distort every training image anew each time it is seen: affine (random translation, scaling, squeezing and horizontal shearing, the paper's; the digit kept inside the field).")
    var distort: DistortionChoice?

    @Option(help: "Learning-rate schedule: constant, step (×--step-gamma every --step-epochs epochs), cosine (to 0 over all epochs) or onecycle (up from lr/25 to lr over 30% of the steps, then down to lr/250000: PyTorch's OneCycleLR).")
    var schedule: TrainingOptions.Schedule = .constant

    @Option(name: .customLong("warmup-epochs"), help: "Epochs of linear warm-up to lr before the schedule (not with onecycle).")
    var warmupEpochs = 0

    @Option(name: .customLong("label-smoothing"), help: "Label smoothing α: train toward (1 − α)·one-hot + α/classes (PyTorch's CrossEntropyLoss(label_smoothing=α)).")
    var labelSmoothing: Float = 0

    @Option(help: "Weight averaging: evaluate and save an exponential moving average of the weights with this decay, updated every step (PyTorch's AveragedModel with get_ema_multi_avg_fn(DECAY)); 0.999 averages about the last thousand steps.")
    var ema: Double?

    @Option(name: .customLong("time-budget"), help: "Train for this many seconds (evaluations and checkpoints included) instead of --epochs: the schedule is fitted to the budget, and training stops within it with a last evaluation and checkpoint.")
    var timeBudget: Double?

    @Option(help: "Test-time augmentation of the evaluation after each epoch: none, or flip (the mean of each test image's and its mirror's softmax).")
    var tta: TestTimeAugmentation = .none

    @Option(name: .customLong("step-epochs"), help: "Epochs between decays of the step schedule.")
    var stepEpochs = 10

    @Option(name: .customLong("step-gamma"), help: "Factor of each decay of the step schedule.")
    var stepGamma: Float = 0.1

    @Option(help: "SGD momentum.")
    var momentum: Float = 0.9

    @Option(name: .customLong("weight-decay"), help: "L2 weight decay (added to the gradient, as PyTorch does).")
    var weightDecay: Float = 0

    @Option(help: "Seed for initialization, shuffling, augmentation and dropout (default: 0, or --resume's checkpoint's).")
    var seed: UInt64?

    @Option(help: "Use only the first N training images.")
    var limit: Int?

    @Option(help: "Normalization mean, one value or one per channel (comma-separated).")
    var mean = "0.5"

    @Option(help: "Normalization std, one value or one per channel (comma-separated).")
    var std = "0.5"

    @Option(help: "Checkpoint file (safetensors), written after every epoch; training state goes to FILE.state.")
    var output: String?

    @Option(help: "Resume from a checkpoint written by --output.")
    var resume: String?

    @Option(name: .customLong("log-json"), help: "Append one JSON object per epoch to this file.")
    var logJSON: String?

    @Flag(help: "Augment the training images: random crop after --crop-padding pixels of black padding, and random horizontal flip, never on MNIST (seeded by --seed).")
    var augment = false

    @Option(name: .customLong("crop-padding"), help: "With --augment: pixels of black padding around each image before the random crop (0: flip only; default 4).")
    var cropPadding: Int?

    @Option(help: "Write an HTML report (curves, confusion matrix, per-class accuracy, misclassified images) to DIR/index.html after every epoch.")
    var report: String?

    func run() throws {
        var options = TrainingOptions()
        options.threads = try dataOptions.resolvedThreads()
        options.epochs = epochs
        options.batchSize = batchSize
        options.learningRate = lr
        options.optimizer = optimizer
        options.momentum = momentum
        options.sdlmMu = sdlmMu
        options.curvatureSamples = curvatureSamples
        options.curvatureGrouping = curvature
        guard loss == .map || mapConstant == nil else {
            throw LeNetError("sets the MAP loss's j; add --loss map", subject: "--map-constant")
        }
        options.mapConstant = loss == .map ? mapConstant ?? TrainingOptions.paperMapConstant : nil
        options.weightDecay = weightDecay
        // A resumed run goes on with its checkpoint's seed unless told otherwise:
        // augmentation and dropout draw from it.
        let seed = try seed ?? resume.map { try Checkpoint.seed(path: $0) } ?? 0
        options.seed = seed
        options.schedule = schedule
        options.stepEpochs = stepEpochs
        options.stepGamma = stepGamma
        options.warmupEpochs = warmupEpochs
        options.labelSmoothing = labelSmoothing
        options.testTimeAugmentation = tta
        options.timeBudget = timeBudget
        options.ema = ema
        let padding = cropPadding ?? Augmentation.cifar.padding
        guard let meanValues = Checkpoint.parseFloats(mean) else { throw LeNetError("expected numbers like 0.5 or 0.49,0.48,0.45, got '\(mean)'", subject: "--mean") }
        guard let stdValues = Checkpoint.parseFloats(std) else { throw LeNetError("expected numbers like 0.5 or 0.25,0.24,0.26, got '\(std)'", subject: "--std") }
        options.normalization = try Normalization(mean: meanValues, std: stdValues)
        try options.validate()
        guard padding >= 0 else { throw LeNetError("must be ≥ 0, got \(padding)", subject: "--crop-padding") }
        guard augment || cropPadding == nil else {
            throw LeNetError("pads the random crop of --augment; add --augment", subject: "--crop-padding")
        }
        if let limit, limit <= 0 { throw LeNetError("must be > 0, got \(limit)", subject: "--limit") }
        if let output {
            try checkWritable(output, flag: "--output")
            try checkNotDirectory(output, flag: "--output")
        }
        if let logJSON {
            try checkWritable(logJSON, flag: "--log-json")
            try checkNotDirectory(logJSON, flag: "--log-json")
        }
        if let report { try checkReportDirectory(report, flag: "--report") }

        let (directory, kind) = try DataLocation.resolve(directory: dataOptions.data, kind: dataOptions.dataset)
        // A mirrored digit is another symbol (or none): digits are never flipped.
        let flips = kind != .mnist
        options.augmentation = augment ? Augmentation(padding: padding, horizontalFlip: flips) : nil
        if distort == .affine {
            var augmentation = options.augmentation ?? Augmentation(padding: 0, horizontalFlip: false)
            augmentation.affine = AffineDistortion()
            options.augmentation = augmentation
        }

        // The network: --model's, else the resumed checkpoint's, else the dataset's default.
        let named = model ?? (resume == nil ? ModelKind.default(for: kind).rawValue : nil)
        var description = try named.map { try modelDescription($0) } ?? Checkpoint.networkDescription(path: resume ?? "")
        var train = try dataOptions.load(kind, from: directory, split: .train, shape: description.inputShape, threads: options.threads)
        if let limit { train = train.prefix(limit) }
        let test = try dataOptions.load(kind, from: directory, split: .test, shape: description.inputShape, threads: options.threads)

        // A built-in network gets one output per class: 10 for CIFAR-10 and
        // MNIST, a folder's own count. A description file keeps its own.
        if let named, NetworkDescription.builtInNames.contains(named) {
            description = try modelDescription(named, classes: train.classNames.count)
        }
        let network = try buildNetwork(description, seed: seed, model: model, initialization: `init`)
        // What the trainer and the evaluation after each epoch will
        // allocate, checked before they do (the images are loaded already).
        func needs(batch: Int, threads: Int) -> MemoryEstimate {
            var asked = options
            asked.batchSize = batch
            var estimate = Trainer.memoryEstimate(network: network, images: train.count, options: asked, threads: threads)
            let evaluation = network.evaluationMemoryEstimate(images: test.count, batchSize: batch, threads: threads,
                                                              testTimeAugmentation: options.testTimeAugmentation)
            estimate.add("evaluation buffers", bytes: evaluation["evaluation buffers"])
            return estimate
        }
        let plan = MemoryPlan(remaining: needs(batch: batchSize, threads: options.threads),
                              culprit: MemoryPlan.culprit(batchSize: (batchSize, 36), threads: dataOptions.threads) {
                                  needs(batch: $0, threads: $1).bytes
                              })
        try plan.check()
        var memory = MemoryEstimate()
        memory.add("images", bytes: train.bytes + test.bytes)
        memory.add(plan.remaining)
        let trainer = try Trainer(network: network, dataset: train, options: options)
        if let resume { try trainer.resume(from: resume) }
        let interrupt = Interrupt()
        printError("training \(description.name ?? "a custom network") (\(grouped(network.trainableParameterCount)) parameters) on \(kind.displayName) "
            + "from \(directory): \(grouped(train.count)) training images, \(grouped(test.count)) test images, "
            + "batch \(batchSize), \(optimizer.rawValue) lr \(lr)" + (schedule == .constant ? "" : " (\(schedule.rawValue))")
            + (warmupEpochs > 0 ? ", \(warmupEpochs) warm-up epoch(s)" : "")
            + (labelSmoothing > 0 ? ", label smoothing \(labelSmoothing)" : "")
            + (augment ? (padding > 0 ? ", augmented (crop \(padding)\(flips ? ", flip" : ""))" : flips ? ", augmented (flip)" : "") : "")
            + (distort == .affine ? ", affine distortions" : "")
            + (options.mapConstant.map { ", MAP loss (j \($0))" } ?? "")
            + (`init` == .lecun ? ", LeCun initialization" : "")
            + (tta == .flip ? ", flip test-time augmentation" : "")
            + (ema.map { ", weight average (EMA \($0))" } ?? "")
            + (timeBudget.map { String(format: ", a time budget of %g s", $0) } ?? "")
            + ", \(blasDescription), \(options.threads) thread(s), memory \(memory)"
            + (trainer.stepInEpoch > 0 ? ", resuming epoch \(trainer.epoch + 1) after step \(trainer.stepInEpoch)"
                : trainer.epoch > 0 ? ", resuming after epoch \(trainer.epoch)" : ""))
        if timeBudget == nil && trainer.epoch >= epochs {
            printError("the checkpoint already has \(trainer.epoch) epochs; nothing to do (raise --epochs)")
            return
        }

        let progress = ProgressDisplay()
        let runStart = DispatchTime.now().uptimeNanoseconds
        var records: [TrainingReport.EpochRecord] = []
        let outcome = try trainer.fit(
            epochs: epochs, test: test, checkpoint: output,
            misclassifiedLimit: report == nil ? 0 : TrainingReport.defaultSampleCount,
            progress: progress.update,
            epochEnd: { epoch in
                let result = epoch.result, accuracy = epoch.evaluation?.accuracy ?? 0
                // With a time budget: the epoch (a partial last one with its steps) and the seconds spent.
                let position = timeBudget == nil ? "\(result.epoch)/\(epochs)"
                    : result.isComplete ? "\(result.epoch)" : "\(result.epoch) (\(trainer.stepInEpoch) steps)"
                let spent = timeBudget.map { String(format: "  %.1f of %g s spent", trainer.budgetSecondsUsed, $0) } ?? ""
                printNow(String(format: "epoch %@  train loss %.4f  train accuracy %.2f%%  test accuracy %.2f%%  %.0f images/s  %.1f s",
                                position, result.loss, result.accuracy * 100, accuracy * 100,
                                result.imagesPerSecond, result.seconds) + spent)
                if let report, let evaluation = epoch.evaluation {
                    records.append(TrainingReport.EpochRecord(result: result, evaluation: evaluation,
                                                              wallSeconds: Double(DispatchTime.now().uptimeNanoseconds - runStart) / 1e9))
                    try TrainingReport(trainer: trainer, test: test, epochs: records, evaluation: evaluation).write(directory: report)
                }
                if let logJSON {
                    let record: [String: Any] = [
                        "epoch": result.epoch, "train_loss": result.loss, "train_accuracy": result.accuracy,
                        "test_accuracy": accuracy,
                        "test_loss": epoch.evaluation?.loss ?? 0, "images_per_second": result.imagesPerSecond,
                        "seconds": result.seconds, "images_seen": trainer.imagesSeen,
                        // Wall-clock seconds since this run began, evaluations included: time to accuracy.
                        "wall_seconds": Double(DispatchTime.now().uptimeNanoseconds - runStart) / 1e9,
                    ]
                    try appendJSONLine(record, to: logJSON)
                }
            },
            shouldStop: { interrupt.isRequested })
        if outcome == .stopped { stopped(trainer) }
        if let output { printError("wrote \(output) (and \(Checkpoint.statePath(for: output)))") }
        if let report { printError("wrote \(report)/index.html") }
        printError(plan.report)
    }

    /// After Ctrl-C (`fit` has saved the position to --output): says where
    /// training stopped and how to resume, and exits with status 130.
    private func stopped(_ trainer: Trainer) -> Never {
        let steps = (trainer.dataset.count + batchSize - 1) / batchSize
        let position = trainer.stepInEpoch > 0
            ? "in epoch \(trainer.epoch + 1) after step \(trainer.stepInEpoch) of \(steps)"
            : trainer.epoch > 0 ? "after epoch \(trainer.epoch)" : "before the first step"
        if let output {
            printError("interrupted \(position); wrote \(output) (and \(Checkpoint.statePath(for: output))). To resume:")
            printError("  " + resumeCommand(output: output))
        } else {
            printError("interrupted \(position); nothing was saved (no --output)")
        }
        Foundation.exit(130)
    }
}

/// Fails before training starts when `path` cannot be created: its
/// directory is missing or not writable.
func checkWritable(_ path: String, flag: String) throws {
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw LeNetError("directory \(directory) does not exist", subject: "\(flag) \(path)")
    }
    // access(2) says yes to root everywhere, even where no file can be
    // created (a read-only mount, /proc), so create one.
    let probe = (directory as NSString).appendingPathComponent(".lenet-write-check-\(getpid())")
    let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
        throw LeNetError("directory \(directory) is not writable", subject: "\(flag) \(path)")
    }
    close(fd)
    unlink(probe)
}

/// Fails before training starts when `path`, which names a file to be
/// written, is an existing directory.
func checkNotDirectory(_ path: String, flag: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw LeNetError("is a directory; expected a file name", subject: "\(flag) \(path)")
    }
}

/// A report directory: refused before any work when `path` is a file.
func checkReportDirectory(_ path: String, flag: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
        throw LeNetError("is a file; expected a directory for index.html", subject: "\(flag) \(path)")
    }
    try checkWritable(path, flag: flag)
}

func appendJSONLine(_ record: [String: Any], to path: String) throws {
    let data: Data
    do {
        data = try JSONSerialization.data(withJSONObject: record, options: [.sortedKeys])
    } catch {
        throw LeNetError("cannot encode the log record: \(error)", subject: path)
    }
    if !FileManager.default.fileExists(atPath: path) {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw LeNetError("cannot create the file", subject: path)
        }
    }
    guard let handle = FileHandle(forWritingAtPath: path) else { throw LeNetError("cannot open for writing", subject: path) }
    defer { try? handle.close() }
    do {
        try handle.seekToEnd()
        try handle.write(contentsOf: data + Data("\n".utf8))
    } catch {
        throw LeNetError("cannot write: \(error.localizedDescription)", subject: path)
    }
}

/// `--loss`.
enum LossChoice: String, ExpressibleByArgument, CaseIterable {
    case crossEntropy = "cross-entropy", map
}

/// `--distort`.
enum DistortionChoice: String, ExpressibleByArgument, CaseIterable {
    case affine
}

extension WeightInitialization: ExpressibleByArgument {}
extension CurvatureGrouping: ExpressibleByArgument {}

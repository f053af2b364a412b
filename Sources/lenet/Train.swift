import ArgumentParser
import Foundation
@_spi(CLI) import LeNetKit

private let defaults = TrainingOptions()

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model; write a checkpoint after every epoch.",
        discussion: "Defaults are the baseline recipe: cifar-lenet, Adam, lr 1e-3, batch 36, 10 epochs. A recipe's options are the "
            + "defaults instead, and flags given override them. Recipes: "
            + TrainingRecipe.allCases.map { "\($0.rawValue): \($0.summary)" }.joined(separator: "; ") + ".")

    @OptionGroup var dataOptions: DataOptions
    @Option(help: "A named recipe (fast and best, made for cifar-lenet on CIFAR-10; lenet5-fashion, for lenet5 on Fashion-MNIST; lenet5-1998, the 1998 paper's training of lenet5-rbf on MNIST; lenet5-mnist, lenet5 on MNIST): its options replace the defaults, and flags given here override them.") var recipe: TrainingRecipe?
    @Option(help: "The network: \(NetworkDescription.builtInNames.joined(separator: ", ")), or a JSON description file (`lenet summary --json` writes one; default: --resume's network, else the recipe's, else cifar-lenet for CIFAR-10 and image folders, lenet5 for MNIST and Fashion-MNIST).") var model: String?
    @Option(help: "Epochs to train (in all, counting those a resumed checkpoint already did; default \(defaults.epochs)).") var epochs: Int?
    @Option(name: .customLong("batch-size"), help: "Images per step (default \(defaults.batchSize)).") var batchSize: Int?
    @Option(help: "Learning rate (default \(defaults.learningRate)).") var lr: Float?
    @Option(help: "adam (the default), adamw (decoupled weight decay), sgd, or sdlm (LeCun et al. 1998's stochastic diagonal Levenberg–Marquardt: each weight's rate lr/(--sdlm-mu + its curvature), the curvature estimated on --curvature-samples images before each epoch).") var optimizer: TrainingOptions.OptimizerKind?
    @Option(name: .customLong("sdlm-mu"), help: "With --optimizer sdlm: μ, added to every curvature (default \(defaults.sdlmMu), the paper's).") var sdlmMu: Float?
    @Option(name: .customLong("curvature-samples"), help: "With --optimizer sdlm: the training images the curvature is estimated on before each epoch (default \(defaults.curvatureSamples), the paper's).") var curvatureSamples: Int?
    @Option(help: "With --optimizer sdlm: divide each weight's rate by its own curvature (connection, the paper's and the default) or by its unit's (unit: the sum over the weights and bias feeding the same unit or map).") var curvature: CurvatureGrouping?
    @Option(help: "The training loss: cross-entropy (the default), or map (LeCun et al. 1998's MAP loss for the RBF output, with --map-constant j).") var loss: LossChoice?
    @Option(name: .customLong("map-constant"), help: "With --loss map: j, the penalty of the rubbish class (default \(TrainingOptions.paperMapConstant); docs/LENET5.md).") var mapConstant: Float?
    @Option(help: "How a new network's weights are drawn: pytorch (uniform in ±1/√fan-in, the default) or lecun (±2.4/fan-in, the paper's).") var `init`: WeightInitialization?
    @Option(help: "Distort every training image anew each time it is seen: affine (random translation, scaling, squeezing and horizontal shearing, the paper's; the digit kept inside the field).") var distort: DistortionChoice?
    @Option(help: "Learning-rate schedule: constant (the default), step (×--step-gamma every --step-epochs epochs), cosine (to 0 over all epochs), onecycle (up from lr/25 to lr over 30% of the steps, then down to lr/250000: PyTorch's OneCycleLR) or lecun-1998 (the paper's steps).") var schedule: TrainingOptions.Schedule?
    @Option(name: .customLong("warmup-epochs"), help: "Epochs of linear warm-up to lr before the schedule (not with onecycle).") var warmupEpochs: Int?
    @Option(name: .customLong("label-smoothing"), help: "Label smoothing α: train toward (1 − α)·one-hot + α/classes (PyTorch's CrossEntropyLoss(label_smoothing=α)).") var labelSmoothing: Float?
    @Option(help: "Weight averaging: evaluate and save an exponential moving average of the weights with this decay, updated every step (PyTorch's AveragedModel with get_ema_multi_avg_fn(DECAY)); 0.999 averages about the last thousand steps.") var ema: Double?
    @Option(name: .customLong("time-budget"), help: "Train for this many seconds (evaluations and checkpoints included) instead of --epochs: the schedule is fitted to the budget, and training stops within it with a last evaluation and checkpoint.") var timeBudget: Double?
    @Option(help: "Test-time augmentation of the evaluation after each epoch: none, or flip (the mean of each test image's and its mirror's softmax).") var tta: TestTimeAugmentation?
    @Option(name: .customLong("step-epochs"), help: "Epochs between decays of the step schedule (default \(defaults.stepEpochs)).") var stepEpochs: Int?
    @Option(name: .customLong("step-gamma"), help: "Factor of each decay of the step schedule (default \(defaults.stepGamma)).") var stepGamma: Float?
    @Option(help: "SGD momentum (default \(defaults.momentum)).") var momentum: Float?
    @Option(name: .customLong("weight-decay"), help: "L2 weight decay (added to the gradient, as PyTorch does; AdamW's decoupled decay).") var weightDecay: Float?
    @Option(help: "Seed for initialization, shuffling, augmentation and dropout (default: 0, or --resume's checkpoint's).") var seed: UInt64?
    @Option(help: "Use only the first N training images.") var limit: Int?
    @Option(help: "Normalization mean, one value or one per channel (comma-separated; default 0.5).") var mean: String?
    @Option(help: "Normalization std, one value or one per channel (comma-separated; default 0.5).") var std: String?
    @Option(help: "Checkpoint file (safetensors), written after every epoch; training state goes to FILE.state.") var output: String?
    @Option(help: "Resume from a checkpoint written by --output.") var resume: String?
    @Option(name: .customLong("log-json"), help: "Append one JSON object per epoch to this file.") var logJSON: String?
    @Flag(help: "Augment the training images: random crop after --crop-padding pixels of black padding, and random horizontal flip, never on MNIST (seeded by --seed).") var augment = false
    @Option(name: .customLong("crop-padding"), help: "With --augment: pixels of black padding around each image before the random crop (0: flip only; default 4).") var cropPadding: Int?
    @Option(help: "Write an HTML report (curves, confusion matrix, per-class accuracy, misclassified images) to DIR/index.html after every epoch.") var report: String?

    /// The recipe's options (or the defaults), with every flag given in place of its value.
    func options() throws -> TrainingOptions {
        var o = recipe?.options ?? TrainingOptions()
        func set<T>(_ field: WritableKeyPath<TrainingOptions, T>, _ value: T?) { if let value { o[keyPath: field] = value } }
        set(\.epochs, epochs); set(\.batchSize, batchSize); set(\.learningRate, lr); set(\.optimizer, optimizer)
        set(\.sdlmMu, sdlmMu); set(\.curvatureSamples, curvatureSamples); set(\.curvatureGrouping, curvature)
        set(\.schedule, schedule); set(\.warmupEpochs, warmupEpochs); set(\.labelSmoothing, labelSmoothing)
        set(\.testTimeAugmentation, tta); set(\.stepEpochs, stepEpochs); set(\.stepGamma, stepGamma)
        set(\.momentum, momentum); set(\.weightDecay, weightDecay); set(\.threads, try dataOptions.threadOptions.resolved())
        if let timeBudget { o.timeBudget = timeBudget }
        if let ema { o.ema = ema }
        if let loss { o.mapConstant = loss == .map ? mapConstant ?? TrainingOptions.paperMapConstant : nil }
        if let mapConstant {
            guard o.mapConstant != nil else { throw LeNetError("sets the MAP loss's j; add --loss map", subject: "--map-constant") }
            o.mapConstant = mapConstant
        }
        if mean != nil || std != nil {
            let list = { (values: [Float]) in values.map { "\($0)" }.joined(separator: ",") }
            o.normalization = try Normalization(mean: mean ?? list(o.normalization.mean), std: std ?? list(o.normalization.std))
        }
        if augment {
            o.augmentation = Augmentation(padding: cropPadding ?? Augmentation.cifar.padding, horizontalFlip: true,
                                          affine: o.augmentation?.affine)
        } else if let cropPadding {
            guard o.augmentation.map({ $0.padding > 0 || $0.horizontalFlip }) == true else {
                throw LeNetError("pads the random crop of --augment; add --augment", subject: "--crop-padding")
            }
            o.augmentation?.padding = cropPadding
        }
        if distort == .affine {
            o.augmentation = o.augmentation ?? Augmentation(padding: 0, horizontalFlip: false)
            o.augmentation?.affine = AffineDistortion()
        }
        return o
    }

    func run() throws {
        var c = TrainingRun.Configuration(data: dataOptions.location, options: try options())
        (c.model, c.recipe, c.seed, c.limit, c.initialization) = (model, recipe, seed, limit, `init`)
        c.threadsChosen = dataOptions.threadOptions.threads != nil
        (c.resume, c.output, c.logJSON, c.report) = (resume, output, logJSON, report)
        let run = try TrainingRun(c, log: printError, decoding: ProgressDisplay().update)
        let interrupt = Interrupt()
        printError(run.summary)
        if run.isFinished {
            return printError("the checkpoint already has \(run.trainer.epoch) epochs; nothing to do (raise --epochs)")
        }
        let outcome = try run.run(progress: ProgressDisplay().update, epochEnd: { printNow($0.line) },
                                  shouldStop: { interrupt.isRequested })
        if outcome == .stopped {
            guard let output else { printError("interrupted \(run.position); nothing was saved (no --output)"); Foundation.exit(130) }
            printError("interrupted \(run.position); wrote \(output) (and \(output).state). To resume:")
            printError("  " + resumeCommand(output: output))
            Foundation.exit(130)
        }
        if let output { printError("wrote \(output) (and \(output).state)") }
        if let report { printError("wrote \(report)/index.html") }
        printError(run.plan.report)
    }
}

/// `--loss` and `--distort`.
enum LossChoice: String, ExpressibleByArgument, CaseIterable { case crossEntropy = "cross-entropy", map }
enum DistortionChoice: String, ExpressibleByArgument, CaseIterable { case affine }

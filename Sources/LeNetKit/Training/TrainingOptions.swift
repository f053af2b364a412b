import Foundation

/// How to train: the baseline recipe by default (Adam 1e-3, batch 36, 10 epochs).
public struct TrainingOptions: Sendable {
    /// The optimizer: `Adam` with L2 weight decay (`adam`), `Adam` with decoupled
    /// weight decay, as `torch.optim.AdamW` (`adamw`), `SGD` with momentum (`sgd`), or
    /// the stochastic diagonal Levenberg–Marquardt method of LeCun et al. 1998 (`sdlm`, `SDLM`).
    public enum OptimizerKind: String, Sendable, CaseIterable { case adam, adamw, sgd, sdlm }

    /// How the learning rate changes over training, step by step.
    public enum Schedule: String, Sendable, CaseIterable {
        /// The same rate throughout (the baseline recipe).
        case constant
        /// Multiplied by `stepGamma` every `stepEpochs` epochs.
        case step
        /// Cosine annealing from the rate to 0 over all epochs' steps:
        /// lr·½(1 + cos(π·t/T)).
        case cosine
        /// The one-cycle policy (Smith & Topin 2018), as PyTorch's
        /// `OneCycleLR(max_lr: lr, total_steps: T)` with its defaults and
        /// `cycle_momentum=False`: from lr/25 up to lr over the first 30%
        /// of the steps, then down to lr/250,000, each half of a cosine.
        case onecycle
        /// The steps of LeCun et al. 1998's LeNet-5 training, by epoch, as
        /// multiples of the rate (0.0005 in the paper): ×1 for epochs 1–2,
        /// ×0.4 for 3–5, ×0.2 for 6–8, ×0.1 for 9–12, ×0.02 after.
        case lecun1998 = "lecun-1998"
    }

    /// Epochs to train in all (a resumed run counts the ones already done).
    public var epochs = 10
    /// Images per optimizer step.
    public var batchSize = 36
    /// Which optimizer updates the weights.
    public var optimizer = OptimizerKind.adam
    /// The learning rate at step 0; `schedule` changes it from there.
    public var learningRate: Float = 1e-3
    /// SGD's momentum (ignored by Adam and AdamW).
    public var momentum: Float = 0.9
    /// SDLM's μ, added to every parameter's curvature: no rate exceeds lr/μ.
    public var sdlmMu: Float = 0.02
    /// The training images SDLM estimates the curvature on before each epoch
    /// (the first of the epoch's shuffle; the paper's 500).
    public var curvatureSamples = 500
    /// Whose curvature SDLM divides each rate by: the parameter's own (the
    /// paper's) or its unit's (`CurvatureGrouping`).
    public var curvatureGrouping = CurvatureGrouping.connection
    /// The MAP loss of LeCun et al. 1998 with this j (`SoftmaxCrossEntropy`)
    /// in place of the cross-entropy, or nil. Made for the RBF output.
    public var mapConstant: Float? = nil
    /// The j LeNetKit's `--loss map` takes: a quarter of the smallest squared
    /// distance between two digit prototypes (`RBF.digitBitmaps`, 56), the
    /// squared distance from either to the point halfway between them. A
    /// wrong class further from F6's output than that is pushed no further.
    @_spi(CLI) public static let paperMapConstant: Float = 14
    /// L2 weight decay added to the gradient (Adam, SGD), or AdamW's decoupled decay.
    public var weightDecay: Float = 0
    /// Fixes the shuffling of every epoch and the augmentation of every image.
    public var seed: UInt64 = 0
    /// How bytes become the network's input: `(x/255 − mean[c]) / std[c]`.
    public var normalization = Normalization.half
    /// How the learning rate changes over training.
    public var schedule = Schedule.constant
    /// For `.step`: epochs between decays.
    public var stepEpochs = 10
    /// For `.step`: the factor of each decay.
    public var stepGamma: Float = 0.1
    /// Epochs of linear warm-up before `schedule` (not with `.onecycle`,
    /// which warms up on its own): over its W steps the rate is
    /// lr·(t + 1)/W, as PyTorch's `LinearLR(start_factor: 1/W,
    /// total_iters: W − 1)`; then `.cosine` anneals over the steps left,
    /// and `.constant` and `.step` go on as without it.
    public var warmupEpochs = 0
    /// Random crop and flip of each training image (`--augment`), or nil for none.
    public var augmentation: Augmentation? = nil
    /// Label smoothing α in [0, 1): the training loss's target is
    /// (1 − α)·one-hot + α/K (`SoftmaxCrossEntropy`). The test loss stays
    /// the plain cross-entropy.
    public var labelSmoothing: Float = 0
    /// Weight averaging: the decay of an exponential moving average of the
    /// weights, updated after every step (`WeightAverage`, as PyTorch's
    /// `AveragedModel` with `get_ema_multi_avg_fn(decay)`), or nil for
    /// none. `fit` evaluates the average, and checkpoints save it as the
    /// weights (the trained ones go to the state file, for resuming).
    /// Over the last 1/(1 − decay) steps or so: 0.999 averages about a
    /// thousand.
    public var ema: Double? = nil
    /// The views whose predictions `fit`'s evaluation after each epoch
    /// averages (`.flip`: each test image and its mirror).
    public var testTimeAugmentation = TestTimeAugmentation.none
    /// A wall-clock budget in seconds for `fit` (training, the evaluation
    /// after each epoch and the checkpoints), in place of `epochs`: the
    /// schedule's length is fitted to the steps that fit in it (estimated
    /// from the steps and evaluations timed so far, again after every
    /// epoch), and `fit` stops at the budget, mid-epoch if need be, with a
    /// last evaluation and checkpoint. A run so fitted depends on the
    /// machine's speed, so two runs differ; a resumed one goes on with the
    /// budget left.
    public var timeBudget: Double? = nil
    /// Threads each step is split across (`DataParallel`): at most one part
    /// per image of a batch. The same seed and thread count give bitwise
    /// the same weights; another thread count rounds differently.
    /// Default: the active cores.
    public var threads = ProcessInfo.processInfo.activeProcessorCount

    /// The baseline recipe: Adam 1e-3, batch 36, 10 epochs, constant rate, no augmentation.
    public init() {}

    /// The learning rate for optimizer step `t` (from 0) of a run with
    /// `stepsPerEpoch` steps per epoch. It depends on nothing else, so a
    /// resumed run follows the same schedule.
    /// - Parameters:
    ///   - t: optimizer steps taken before this one.
    ///   - stepsPerEpoch: batches per epoch.
    func learningRate(atStep t: Int, stepsPerEpoch: Int) -> Float {
        learningRate(atStep: t, stepsPerEpoch: stepsPerEpoch, totalSteps: epochs * stepsPerEpoch)
    }

    /// `learningRate(atStep:stepsPerEpoch:)` for a schedule of `totalSteps`
    /// steps in place of `epochs` epochs' (a time budget's fitted length).
    func learningRate(atStep t: Int, stepsPerEpoch: Int, totalSteps: Int) -> Float {
        let total = max(totalSteps, 1)
        let warmup = schedule == .onecycle ? 0 : min(warmupEpochs * stepsPerEpoch, total)
        if t < warmup { return Float(Double(learningRate) * Double(t + 1) / Double(warmup)) }
        switch schedule {
        case .constant:
            return learningRate
        case .step:
            let epoch = t / max(stepsPerEpoch, 1)
            return learningRate * pow(stepGamma, Float(epoch / max(stepEpochs, 1)))
        case .cosine:
            let span = Double(max(total - warmup, 1))
            return Float(Double(learningRate) * 0.5 * (1 + cos(Double.pi * min(Double(t - warmup), span) / span)))
        case .onecycle:
            return Float(Self.oneCycle(step: t, total: total, peak: Double(learningRate)))
        case .lecun1998:
            let epoch = t / max(stepsPerEpoch, 1)
            let factor: Float = epoch < 2 ? 1 : epoch < 5 ? 0.4 : epoch < 8 ? 0.2 : epoch < 12 ? 0.1 : 0.02
            return learningRate * factor
        }
    }

    /// PyTorch's `OneCycleLR` rate at step `t` of `total` (its defaults:
    /// `pct_start` 0.3, `div_factor` 25, `final_div_factor` 10⁴, cosine):
    /// two phases, ending at steps 0.3·T − 1 and T − 1, each half a cosine
    /// between its two rates; past the end it stays at the last.
    static func oneCycle(step t: Int, total: Int, peak: Double) -> Double {
        let initial = peak / 25, final = initial / 1e4
        let firstEnd = 0.3 * Double(total) - 1, lastEnd = Double(total - 1)
        func anneal(_ from: Double, _ to: Double, _ pct: Double) -> Double { to + (from - to) / 2 * (cos(Double.pi * pct) + 1) }
        let s = min(Double(t), lastEnd)
        if s <= firstEnd { return anneal(initial, peak, firstEnd > 0 ? s / firstEnd : 1) }
        return anneal(peak, final, lastEnd > firstEnd ? (s - firstEnd) / (lastEnd - firstEnd) : 1)
    }

    /// Checks every value, naming the option (`TrainingOptions.batchSize`);
    /// `lenet` reports its own flag for it instead.
    public func validate() throws {
        guard epochs > 0 else { throw LeNetError("must be > 0, got \(epochs)", option: .epochs) }
        guard batchSize > 0 else { throw LeNetError("must be > 0, got \(batchSize)", option: .batchSize) }
        guard learningRate.isFinite, learningRate > 0 else {
            throw LeNetError("must be a positive number, got \(learningRate)", option: .learningRate)
        }
        guard momentum.isFinite, momentum >= 0, momentum < 1 else {
            throw LeNetError("must be in [0, 1), got \(momentum)", option: .momentum)
        }
        guard weightDecay.isFinite, weightDecay >= 0 else {
            throw LeNetError("must be ≥ 0, got \(weightDecay)", option: .weightDecay)
        }
        guard sdlmMu.isFinite, sdlmMu > 0 else { throw LeNetError("must be a positive number, got \(sdlmMu)", option: .sdlmMu) }
        guard curvatureSamples > 0 else {
            throw LeNetError("must be > 0, got \(curvatureSamples)", option: .curvatureSamples)
        }
        if let j = mapConstant {
            guard j.isFinite, j > 0 else { throw LeNetError("must be a positive number, got \(j)", option: .mapConstant) }
            guard labelSmoothing == 0 else {
                throw LeNetError("the MAP loss has no label smoothing; leave TrainingOptions.labelSmoothing at 0", option: .mapConstant)
            }
        }
        guard threads > 0 else { throw LeNetError("must be > 0, got \(threads)", option: .threads) }
        guard labelSmoothing.isFinite, labelSmoothing >= 0, labelSmoothing < 1 else {
            throw LeNetError("must be in [0, 1), got \(labelSmoothing)", option: .labelSmoothing)
        }
        guard stepEpochs > 0 else { throw LeNetError("must be > 0, got \(stepEpochs)", option: .stepEpochs) }
        guard warmupEpochs >= 0 else { throw LeNetError("must be ≥ 0, got \(warmupEpochs)", option: .warmupEpochs) }
        guard warmupEpochs == 0 || schedule != .onecycle else {
            throw LeNetError("the onecycle schedule warms up on its own; leave warm-up at 0", option: .warmupEpochs)
        }
        if let ema, !(ema.isFinite && ema > 0 && ema < 1) {
            throw LeNetError("must be in (0, 1), got \(ema)", option: .ema)
        }
        if let timeBudget, !(timeBudget.isFinite && timeBudget > 0) {
            throw LeNetError("must be a positive number of seconds, got \(timeBudget)", option: .timeBudget)
        }
        guard warmupEpochs < epochs || warmupEpochs == 0 || timeBudget != nil else {
            throw LeNetError("must be fewer than the \(epochs) epochs, got \(warmupEpochs)", option: .warmupEpochs)
        }
        guard stepGamma.isFinite, stepGamma > 0, stepGamma <= 1 else {
            throw LeNetError("must be in (0, 1], got \(stepGamma)", option: .stepGamma)
        }
    }
}

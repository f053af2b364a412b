/// An exponential moving average of a network's weights (EMA, "weight
/// averaging"), as PyTorch's `AveragedModel(model,
/// multi_avg_fn: get_ema_multi_avg_fn(decay))`: the first update copies
/// the weights, and each one after moves the average toward them,
///
/// ```
/// a ← p                       (first update)
/// a ← a + (1 − decay)·(p − a)  (after: torch.lerp)
/// ```
///
/// so after n updates the average weighs the weights of k updates ago by
/// (1 − decay)·decayᵏ. `Trainer` updates it after every optimizer step
/// and evaluates and saves the average (`TrainingOptions.ema`).
final class WeightAverage {
    /// How much of the average each update keeps, in (0, 1): a Double, as
    /// the Python float PyTorch is given, so that 1 − decay is its weight.
    let decay: Double
    /// Updates so far (0: the average is not yet made, and the weights
    /// themselves stand for it).
    private(set) var updates = 0
    /// The store whose values are averaged.
    let parameters: ParameterStore
    private let average: FloatBuffer  // (P), the store's layout; the trained weights while swapped
    /// Whether `withAverageInPlace` has the average in the store now.
    private(set) var isSwapped = false

    /// - Parameters:
    ///   - parameters: the weights to average.
    ///   - decay: in (0, 1).
    /// - Throws: `LeNetError` when `decay` is out of range or the average
    ///   cannot be allocated.
    init(parameters: ParameterStore, decay: Double) throws {
        guard decay.isFinite, decay > 0, decay < 1 else {
            throw LeNetError("must be in (0, 1), got \(decay)", subject: "WeightAverage.decay")
        }
        self.parameters = parameters
        self.decay = decay
        average = try FloatBuffer(count: parameters.count, name: "weight average")
    }

    /// Moves the average toward the store's values (copies them the first
    /// time). Not inside `withAverageInPlace`, where the store holds the average.
    func update() {
        precondition(!isSwapped, "WeightAverage.update() inside withAverageInPlace")
        let a = average.pointer, p = UnsafePointer(parameters.values.baseAddress)
        guard let p else { return }
        if updates == 0 {
            a.update(from: p, count: parameters.count)
        } else {
            // PyTorch's lerp gets 1 − decay as a double and rounds it to float.
            // Not fused like PyTorch's vector lerp: without FMA in the
            // target, Float.addingProduct is a libm call per weight, which
            // made a step of the CIFAR LeNet 50% slower; unfused, the loop
            // vectorizes, and the two differ by a rounding per update.
            let w = Float(1 - decay)
            for i in 0..<parameters.count { a[i] += w * (p[i] - a[i]) }
        }
        updates += 1
    }

    /// The averaged values, in the store's layout (the store's own values
    /// before the first update), inside `withAverageInPlace` or not.
    var values: [Float] { updates == 0 || isSwapped ? Array(parameters.values) : average.array }

    /// The trained weights, in the store's layout: the store's values, or
    /// inside `withAverageInPlace`, the ones it put aside.
    var trainedValues: [Float] { isSwapped ? average.array : Array(parameters.values) }

    /// Runs `body` with the average in the store in place of the weights
    /// (every network sharing the store, replicas included, sees it), and
    /// puts the weights back after, bitwise, even when `body` throws.
    /// Before the first update `body` sees the weights themselves; called
    /// inside another `withAverageInPlace`, it runs `body` as it is.
    func withAverageInPlace<R>(_ body: () throws -> R) rethrows -> R {
        guard updates > 0, !isSwapped else { return try body() }
        exchange()
        isSwapped = true
        defer {
            exchange()
            isSwapped = false
        }
        return try body()
    }

    /// Swaps the average and the store's values.
    private func exchange() {
        guard let p = parameters.values.baseAddress else { return }
        let a = average.pointer
        for i in 0..<parameters.count { (a[i], p[i]) = (p[i], a[i]) }
    }

    /// The state a checkpoint keeps beside the average it saves as the
    /// weights: the decay and the update count.
    func stateTensors() -> [(name: String, shape: [Int], values: [Float])] {
        // decay is stored as a Float: it only has to match this run's.
        // As Adam's step count, a Float: past 2²⁴ it rounds, but only
        // whether there was an update changes what `update` does.
        [("ema.decay", [1], [Float(decay)]), ("ema.updates", [1], [Float(updates)])]
    }

    /// Restores a checkpoint's average: `weights` are the averaged values
    /// (the checkpoint's weights file), `lookup` finds `stateTensors()`.
    /// Not inside `withAverageInPlace` (`Trainer.resume` checks first).
    /// - Throws: `LeNetError` when a tensor is missing, the decay is not
    ///   this one, or the count is not a whole number.
    func load(average weights: [Float], _ lookup: (String) -> [Float]?) throws {
        guard let d = lookup("ema.decay"), d.count == 1, let n = lookup("ema.updates"), n.count == 1 else {
            throw LeNetError("says it was written with weight averaging, but has no ema.decay and ema.updates tensors")
        }
        guard d[0] == Float(decay) else {
            throw LeNetError("was written with TrainingOptions.ema \(d[0]); this run averages with \(decay)")
        }
        guard let count = WholeNumber.count(n[0]) else {
            throw LeNetError("the weight-average count (ema.updates) is \(n[0]), expected a whole number from 0 to \(WholeNumber.maximumCount)")
        }
        guard weights.count == parameters.count else {
            throw LeNetError("the weight average holds \(weights.count) values; the model has \(parameters.count) parameters")
        }
        _ = average.buffer.update(from: weights)
        updates = count
    }
}

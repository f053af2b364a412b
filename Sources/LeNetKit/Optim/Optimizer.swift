import Foundation  // libm (expf, logf, …) on every platform
/// Updates a parameter store from its gradients: one loop over contiguous
/// values, gradients and moments.
protocol Optimizer: AnyObject {
    /// The learning rate; a schedule may change it between steps.
    var learningRate: Float { get set }
    /// Steps taken so far.
    var stepCount: Int { get }
    /// Applies one update using the gradients now in the store.
    func step()
}

/// An optimizer whose state a checkpoint saves: LeNetKit's own.
protocol CheckpointedOptimizer: Optimizer {
    /// The optimizer's state as named tensors (moments, step count), for checkpoints.
    func stateTensors() -> [(name: String, shape: [Int], values: [Float])]
    /// Restores `stateTensors()`.
    /// - Throws: `LeNetError` when a tensor is missing or has the wrong size.
    func loadState(_ lookup: (String) -> [Float]?) throws
}

/// An optimizer whose update can be split into disjoint slices of the
/// parameter store, updated concurrently by the parts of a data-parallel
/// step (`Network.dataParallel(batch:threads:_:thenEachPart:)`).
///
/// One step is `update(part:of:preparing:)` on every part, each with the
/// same `parts`, then `finishStep()` once: together the same update as
/// `step()`, bitwise.
protocol PartitionedOptimizer: CheckpointedOptimizer {
    /// Updates slice `part` of `parts` of the store for step `stepCount + 1`.
    /// Before updating each block of the slice it calls `prepare` on the
    /// block's indices, on this thread: the trainer adds the parts'
    /// gradients there, while the block is in cache.
    /// - Parameters:
    ///   - part: this slice, 0..<parts.
    ///   - parts: how many slices the store is cut into.
    ///   - prepare: runs on each block's range of store indices first.
    func update(part: Int, of parts: Int, preparing prepare: (Range<Int>) -> Void)
    /// Counts the step that the parts' `update` calls made.
    func finishStep()
}

extension PartitionedOptimizer {
    /// The store's indices of slice `part` of `parts`: contiguous, in
    /// blocks of at most 16,384, cut on 16-float (cache line) boundaries.
    func forEachBlock(ofPart part: Int, of parts: Int, count: Int, _ body: (Range<Int>) -> Void) {
        let lines = (count + 15) / 16
        let start = min(count, lines * part / parts * 16), end = min(count, lines * (part + 1) / parts * 16)
        for lo in Swift.stride(from: start, to: end, by: 16_384) { body(lo..<min(lo + 16_384, end)) }
    }
}

/// Adam, exactly as `torch.optim.Adam` (the single-tensor path, `amsgrad`
/// off), with L2 weight decay added to the gradient as PyTorch does; or,
/// with `decoupled: true`, AdamW exactly as `torch.optim.AdamW`:
///
/// ```
/// g ← g + λ·p                       (Adam)      p ← p·(1 − lr·λ)   (AdamW)
/// m ← m + (1 − β1)(g − m)          v ← β2·v + (1 − β2)·g²
/// p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
/// ```
///
/// One difference: moments that would be subnormal are stored as 0 (the
/// update runs with subnormals flushed on x86-64, where they are slow);
/// the weights come out the same.
public final class Adam: PartitionedOptimizer {
    public var learningRate: Float
    /// β1 and β2 (the moments' decay rates), ε, and the weight decay λ.
    let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    /// AdamW's decoupled weight decay instead of L2 in the gradient.
    let decoupled: Bool
    private(set) var stepCount = 0
    private let store: ParameterStore
    private let m: FloatBuffer  // (P)
    private let v: FloatBuffer  // (P)

    /// PyTorch's defaults.
    /// - Parameters:
    ///   - parameters: the store it updates; its moments are allocated to match.
    ///   - learningRate: lr.
    ///   - beta1: β1, the first moment's decay.
    ///   - beta2: β2, the second moment's decay.
    ///   - epsilon: ε, added to the denominator.
    ///   - weightDecay: λ.
    ///   - decoupled: AdamW (`p ← p·(1 − lr·λ)`) instead of L2 in the gradient.
    /// - Throws: `LeNetError` when the moments' memory cannot be had.
    public init(parameters: ParameterStore, learningRate: Float = 1e-3, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0, decoupled: Bool = false) throws {
        store = parameters
        self.decoupled = decoupled
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        m = try FloatBuffer(count: parameters.count, name: "Adam first moments")
        v = try FloatBuffer(count: parameters.count, name: "Adam second moments")
    }

    public func step() {
        let count = store.count, block = 16_384
        parallelFor((count + block - 1) / block) { blocks in
            update(blocks.lowerBound * block..<min(blocks.upperBound * block, count), step: stepCount + 1)
        }
        stepCount += 1
    }

    func update(part: Int, of parts: Int, preparing prepare: (Range<Int>) -> Void) {
        forEachBlock(ofPart: part, of: parts, count: store.count) { range in
            prepare(range)
            update(range, step: stepCount + 1)
        }
    }

    func finishStep() { stepCount += 1 }

    /// Step `t` (from 1) on the store's indices `range`.
    private func update(_ range: Range<Int>, step t: Int) {
        let t = Double(t)
        let bias1 = 1 - pow(Double(beta1), t)
        let bias2 = 1 - pow(Double(beta2), t)
        let stepSize = Float(Double(learningRate) / bias1)
        let bias2Sqrt = Float(bias2.squareRoot())
        let p = store.values.baseAddress, g = store.gradients.baseAddress
        guard let p, let g else { return }
        let m = m.pointer, v = v.pointer
        // The same operations in the same order on eight lanes at a time
        // (IEEE per lane, so bitwise the scalar loop's result), with
        // subnormal numbers flushed to 0: a weight whose gradient stays 0
        // has its first moment shrink by β1 a step into the subnormal range,
        // where it sticks (0.9 times the least subnormal rounds back to it),
        // and x86 computes on subnormals slowly: with a third of the moments
        // subnormal, as after one CIFAR epoch, the update took 3 times as
        // long. PyTorch keeps them. The weights come out the same: such a
        // moment moves a weight by less than 1e-30.
        let constants = AdamConstants(w1: 1 - beta1, beta2: beta2, w2: 1 - beta2,
                                      l2: decoupled ? 0 : weightDecay,
                                      shrink: decoupled ? 1 - learningRate * weightDecay : 1,
                                      stepSize: stepSize, bias2Sqrt: bias2Sqrt, epsilon: epsilon)
        withSubnormalsFlushed {
            adamUpdate(p + range.lowerBound, g + range.lowerBound, m + range.lowerBound, v + range.lowerBound,
                       count: range.count, constants)
        }
    }

    func stateTensors() -> [(name: String, shape: [Int], values: [Float])] {
        [("adam.exp_avg", [store.count], m.array),
         ("adam.exp_avg_sq", [store.count], v.array),
         ("adam.step", [1], [Float(stepCount)])]
    }

    func loadState(_ lookup: (String) -> [Float]?) throws {
        guard let mv = lookup("adam.exp_avg"), let vv = lookup("adam.exp_avg_sq"),
              let sv = lookup("adam.step"), sv.count == 1 else {
            throw LeNetError("the optimizer state has no Adam moments (adam.exp_avg, adam.exp_avg_sq, adam.step)")
        }
        guard mv.count == store.count, vv.count == store.count else {
            throw LeNetError("the Adam moments hold \(mv.count) values; the model has \(store.count) parameters")
        }
        guard let steps = WholeNumber.count(sv[0]) else {
            throw LeNetError("the Adam step count (adam.step) is \(sv[0]), expected a whole number from 0 to \(WholeNumber.maximumCount)")
        }
        _ = m.buffer.update(from: mv)
        _ = v.buffer.update(from: vv)
        stepCount = steps
    }
}

/// Stochastic gradient descent with momentum, dampening, Nesterov and L2
/// weight decay, exactly as `torch.optim.SGD`:
///
/// ```
/// g ← g + λ·p
/// b ← g (first step),  b ← μ·b + (1 − dampening)·g (after)
/// g ← g + μ·b (Nesterov)  or  g ← b
/// p ← p − lr·g
/// ```
public final class SGD: PartitionedOptimizer {
    public var learningRate: Float
    /// μ, the dampening, λ, and whether the update is Nesterov's.
    let momentum: Float, dampening: Float, weightDecay: Float, nesterov: Bool
    private(set) var stepCount = 0
    private let store: ParameterStore
    private let buffer: FloatBuffer  // (P) momentum buffer

    /// PyTorch's defaults (plain SGD).
    /// - Parameters:
    ///   - parameters: the store it updates.
    ///   - learningRate: lr.
    ///   - momentum: μ; 0 keeps no momentum buffer.
    ///   - dampening: scales the new gradient in the momentum buffer by 1 − dampening.
    ///   - weightDecay: λ, added to the gradient as λ·p.
    ///   - nesterov: Nesterov momentum.
    public init(parameters: ParameterStore, learningRate: Float, momentum: Float = 0,
                dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) throws {
        store = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        buffer = try FloatBuffer(count: momentum != 0 ? parameters.count : 0, name: "SGD momentum")
    }

    public func step() {
        update(0..<store.count, first: stepCount == 0)
        stepCount += 1
    }

    func update(part: Int, of parts: Int, preparing prepare: (Range<Int>) -> Void) {
        forEachBlock(ofPart: part, of: parts, count: store.count) { range in
            prepare(range)
            update(range, first: stepCount == 0)
        }
    }

    func finishStep() { stepCount += 1 }

    private func update(_ range: Range<Int>, first: Bool) {
        guard let p = store.values.baseAddress, let g = store.gradients.baseAddress else { return }
        let b = buffer.pointer
        // Subnormals flushed to 0, as in Adam: a momentum whose gradient
        // stays 0 would shrink into them and stick there.
        withSubnormalsFlushed {
            for i in range {
                var d = g[i]
                if weightDecay != 0 { d += weightDecay * p[i] }
                if momentum != 0 {
                    b[i] = first ? d : momentum * b[i] + (1 - dampening) * d
                    d = nesterov ? d + momentum * b[i] : b[i]
                }
                p[i] -= learningRate * d
            }
        }
    }

    func stateTensors() -> [(name: String, shape: [Int], values: [Float])] {
        var out: [(name: String, shape: [Int], values: [Float])] = [("sgd.step", [1], [Float(stepCount)])]
        if momentum != 0 { out.append(("sgd.momentum_buffer", [store.count], buffer.array)) }
        return out
    }

    func loadState(_ lookup: (String) -> [Float]?) throws {
        guard let sv = lookup("sgd.step"), sv.count == 1 else {
            throw LeNetError("the optimizer state has no SGD step count (sgd.step)")
        }
        guard let steps = WholeNumber.count(sv[0]) else {
            throw LeNetError("the SGD step count (sgd.step) is \(sv[0]), expected a whole number from 0 to \(WholeNumber.maximumCount)")
        }
        if momentum != 0 {
            guard let bv = lookup("sgd.momentum_buffer"), bv.count == store.count else {
                throw LeNetError("the optimizer state has no SGD momentum buffer of \(store.count) values")
            }
            _ = buffer.buffer.update(from: bv)
        }
        stepCount = steps
    }
}

@inline(__always)
private func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

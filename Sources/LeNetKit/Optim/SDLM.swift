import Foundation

/// The stochastic diagonal Levenberg–Marquardt method of LeCun et al. 1998
/// (appendix C): gradient descent in which each parameter k has its own
/// rate, η/(μ + h_kk), h_kk an estimate of the loss's second derivative
/// with respect to it (`Network.accumulateCurvature`), made on a few
/// hundred samples before each pass over the data and held fixed during it.
///
/// ```
/// p_k ← p_k − η/(μ + h_kk) · (g_k + λ·p_k)
/// ```
///
/// μ keeps the rate of a parameter with almost no curvature at most η/μ.
/// Before the first estimate every h_kk is 0: plain gradient descent at η/μ.
final class SDLM: PartitionedOptimizer {
    /// η, the global rate; a schedule changes it between steps.
    var learningRate: Float
    /// μ, added to every curvature (the paper's 0.02).
    let mu: Float
    /// λ, L2 weight decay added to the gradient.
    let weightDecay: Float
    private(set) var stepCount = 0
    /// The samples the current curvature was averaged over (0 before the first estimate).
    private(set) var curvatureSamples = 0
    private let store: ParameterStore
    private let curvature: FloatBuffer  // (P) h_kk

    /// - Parameters:
    ///   - parameters: the store it updates.
    ///   - learningRate: η.
    ///   - mu: μ > 0.
    ///   - weightDecay: λ.
    /// - Throws: `LeNetError` when the curvature's memory cannot be had.
    init(parameters: ParameterStore, learningRate: Float, mu: Float = 0.02, weightDecay: Float = 0) throws {
        store = parameters
        self.learningRate = learningRate
        self.mu = mu
        self.weightDecay = weightDecay
        curvature = try FloatBuffer(count: parameters.count, name: "SDLM curvature")
    }

    /// The curvature h_kk each parameter's rate divides by, in the store's order.
    var curvatureValues: [Float] { curvature.array }

    /// Replaces the curvature with `values` (the store's count of them, each
    /// finite and ≥ 0), averaged over `samples` samples.
    func setCurvature(_ values: UnsafeBufferPointer<Float>, samples: Int) {
        precondition(values.count == store.count, "curvature of \(values.count) values for \(store.count) parameters")
        _ = curvature.buffer.update(from: values)
        curvatureSamples = samples
    }

    func step() {
        update(0..<store.count)
        stepCount += 1
    }

    func update(part: Int, of parts: Int, preparing prepare: (Range<Int>) -> Void) {
        forEachBlock(ofPart: part, of: parts, count: store.count) { range in
            prepare(range)
            update(range)
        }
    }

    func finishStep() { stepCount += 1 }

    private func update(_ range: Range<Int>) {
        guard let p = store.values.baseAddress, let g = store.gradients.baseAddress else { return }
        let h = curvature.pointer, eta = learningRate, mu = mu, decay = weightDecay
        for k in range {
            let d = decay != 0 ? g[k] + decay * p[k] : g[k]
            p[k] -= eta / (mu + h[k]) * d
        }
    }

    func stateTensors() -> [(name: String, shape: [Int], values: [Float])] {
        [("sdlm.curvature", [store.count], curvature.array),
         ("sdlm.step", [1], [Float(stepCount)]),
         ("sdlm.curvature_samples", [1], [Float(curvatureSamples)])]
    }

    func loadState(_ lookup: (String) -> [Float]?) throws {
        guard let h = lookup("sdlm.curvature"), let sv = lookup("sdlm.step"), sv.count == 1,
              let nv = lookup("sdlm.curvature_samples"), nv.count == 1 else {
            throw LeNetError("the optimizer state has no SDLM curvature (sdlm.curvature, sdlm.step, sdlm.curvature_samples)")
        }
        guard h.count == store.count else {
            throw LeNetError("the SDLM curvature holds \(h.count) values; the model has \(store.count) parameters")
        }
        guard !h.contains(where: { !$0.isFinite || $0 < 0 }) else {
            throw LeNetError("the SDLM curvature (sdlm.curvature) holds a value that is negative or not finite")
        }
        guard let steps = WholeNumber.count(sv[0]), let samples = WholeNumber.count(nv[0]) else {
            throw LeNetError("the SDLM step count (sdlm.step) or sample count (sdlm.curvature_samples) is not a whole number from 0 to \(WholeNumber.maximumCount)")
        }
        _ = curvature.buffer.update(from: h)
        stepCount = steps
        curvatureSamples = samples
    }
}

// MARK: - The curvature pass

extension Network {
    /// Throws unless every layer has a curvature rule (`Layer.curvatureRule`).
    func checkCurvature() throws {
        for layer in layers {
            if case .unsupported = layer.curvatureRule {
                throw LeNetError("has no curvature rule (\(layer.kind)), so the SDLM optimizer cannot train this network", subject: layer.name)
            }
        }
    }

    /// Adds, for each parameter, the Gauss–Newton estimate of the loss's
    /// second derivative summed over the batch to `curvature` (the store's
    /// count of values), as appendix C of LeCun et al. 1998 computes it:
    /// from `outputCurvature` (the loss's ∂²E/∂z² at each output), back
    /// through the layers by their `CurvatureRule`, off-diagonal terms
    /// dropped and every weight's connections summed.
    ///
    /// Call it after `forward(batch: n)` and after the loss wrote its
    /// gradient, per sample and not averaged, into `outputGradient(batch: n)`.
    /// It runs the layer-by-layer backward pass first (the `.custom` layers
    /// read the gradient at their output), and leaves the parameter
    /// gradients at 0 and the weights as they were.
    /// - Parameters:
    ///   - n: the batch of the last forward.
    ///   - outputCurvature: (N, K) ∂²E/∂z², each ≥ 0.
    ///   - curvature: (P) where the sums are added.
    ///   - grouping: per connection (the paper's) or per unit.
    /// - Throws: `LeNetError` naming a layer without a curvature rule.
    func accumulateCurvature(batch n: Int, outputCurvature: UnsafePointer<Float>,
                                    into curvature: UnsafeMutablePointer<Float>,
                                    grouping: CurvatureGrouping = .connection) throws {
        try checkCurvature()
        precondition(n <= backwardCapacity, "accumulateCurvature(batch: \(n)) beyond the reserved \(backwardCapacity)")
        let fused = fusesPooling
        fusesPooling = false
        defer { fusesPooling = fused }
        parameters.zeroGradients()
        backward(batch: n)
        parameters.zeroGradients()

        // The affine rule runs each layer's own backward with w² in place of w.
        let saved = Array(parameters.values)
        defer { _ = parameters.values.update(from: saved) }
        for k in parameters.values.indices { parameters.values[k] *= parameters.values[k] }

        let largest = ([inputShape] + shapes).map { n * $0.count }.max() ?? 0
        let buffers = (0..<3).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: max(largest, 1)) }
        defer { buffers.forEach { $0.deallocate() } }
        var current = buffers[0], next = buffers[1]
        let scratch = buffers[2]  // (N, largest shape): x² or a pointwise layer's first pass
        current.update(from: outputCurvature, count: n * outputShape.count)
        ThreadBudget.with(passThreads) {
            for i in layers.indices.reversed() {
                let layer = layers[i]
                let x = UnsafePointer(activations[i].pointer), y = UnsafePointer(activations[i + 1].pointer)
                let dx: UnsafeMutablePointer<Float>? = i > 0 ? next : nil
                switch layer.curvatureRule {
                case .affine:
                    let count = n * activations[i].perSample
                    for k in 0..<count { scratch[k] = x[k] * x[k] }
                    layer.backward(dx, current, scratch, y, batch: n)
                case .pointwise:
                    if let dx {
                        layer.backward(scratch, current, x, y, batch: n)
                        layer.backward(dx, scratch, x, y, batch: n)
                    }
                case .piecewiseLinear:
                    if let dx { layer.backward(dx, current, x, y, batch: n) }
                case .custom:
                    layer.backwardCurvature(dx, current, gradient: gradients[i + 1].pointer, x, y, batch: n)
                case .unsupported:
                    break  // refused above
                }
                swap(&current, &next)
            }
        }
        if grouping == .unit { poolCurvatureByUnit() }
        for k in parameters.gradients.indices { curvature[k] += parameters.gradients[k] }
        parameters.zeroGradients()
    }

    /// Replaces each affine layer's per-connection curvature, held in the
    /// gradient store, by its unit's: for output unit (or map) o, the sum
    /// over its weights' row and its bias, given to each of them.
    private func poolCurvatureByUnit() {
        var index = 0
        for layer in layers {
            let specs = layer.parameterSpecs
            defer { index += specs.count }
            guard case .affine = layer.curvatureRule, let units = specs.first?.shape.first, units > 0,
                  specs.allSatisfy({ $0.shape.first == units }) else { continue }
            let entries = parameters.entries[index..<index + specs.count]
            let g = parameters.gradients
            for o in 0..<units {
                var total: Float = 0
                for e in entries {
                    let row = e.count / units
                    for k in 0..<row { total += g[e.offset + o * row + k] }
                }
                for e in entries {
                    let row = e.count / units
                    for k in 0..<row { g[e.offset + o * row + k] = total }
                }
            }
        }
    }
}

/// Which second derivatives SDLM divides each parameter's rate by.
public enum CurvatureGrouping: String, Sendable, CaseIterable {
    /// Each parameter's own, summed over its connections: LeCun et al.
    /// 1998's diagonal.
    case connection
    /// Its unit's: the sum over every weight and the bias feeding the same
    /// output unit (a map, for a convolution), given to each. That is the
    /// curvature along the unit's gradient, whose weights all move
    /// together: a unit with 400 inputs gets about 400 times its weights'
    /// own, and a rate to match.
    case unit
}

import Foundation

/// PyTorch's `BatchNorm2d`: `num_features`, `eps` (default 1e-5),
/// `momentum` (default 0.1); always affine, always tracking running
/// statistics.
public struct BatchNorm2DConfiguration: LayerConfiguration, KeyedLayerConfiguration, Equatable {
    public var name: String
    /// C, the channels it normalizes.
    public var numFeatures: Int
    /// ε added to the variance, and the running statistics' update rate.
    public var eps: Float, momentum: Float

    /// PyTorch's `nn.BatchNorm2d(num_features, eps, momentum)`.
    public init(name: String, numFeatures: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        self.name = name
        self.numFeatures = numFeatures
        self.eps = eps
        self.momentum = momentum
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, numFeatures = "num_features", eps, momentum }

    init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name), numFeatures: try c.integer(.numFeatures),
                  eps: try c.floatIfPresent(.eps) ?? 1e-5,
                  momentum: try c.floatIfPresent(.momentum) ?? 0.1)
    }

    public var type: String { "BatchNorm2d" }

    func validate() throws {
        try check(numFeatures, .numFeatures, in: 1...maximumLayerSize)
        try check(Double(eps), .eps, in: 0...1, open: true)
        try check(Double(momentum), .momentum, in: 0...1)
    }

    public func makeLayer() throws -> any Layer {
        try validate()
        return BatchNorm2D(name, features: numFeatures, epsilon: eps, momentum: momentum)
    }
}

/// Batch normalization over each channel, PyTorch's `nn.BatchNorm2d`.
///
/// ```
/// training:   μ_c = mean over (N, H, W) of x[:, c],  σ²_c = the biased variance
///             y = γ_c·(x − μ_c)/√(σ²_c + ε) + β_c
///             running_mean ← (1 − m)·running_mean + m·μ_c
///             running_var  ← (1 − m)·running_var  + m·σ²_c·M/(M − 1)   (M = N·H·W, the unbiased variance)
/// evaluation: y = γ_c·(x − running_mean_c)/√(running_var_c + ε) + β_c
/// backward (training), x̂ = (x − μ)/√(σ² + ε):
///             dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ/(M·√(σ² + ε))·(M·dy − dβ − x̂·dγ)
/// ```
/// Parameters: `weight` γ (C), initially 1, and `bias` β (C), initially 0.
/// Buffers: `running_mean` (C), initially 0, and `running_var` (C),
/// initially 1; saved with the weights and exported, never trained.
/// (PyTorch's `num_batches_tracked` is not kept: it matters only with
/// `momentum=None`, which this layer does not take.)
///
/// Statistics are summed in Double, two passes (mean, then the squares of
/// the deviations), so they hold to float rounding at any batch size.
///
/// Split across threads by data-parallel training, each part normalizes
/// with its own part's statistics, and only the first part (the network
/// itself, not its replicas) updates the running statistics: PyTorch's
/// `nn.DataParallel` does the same. With one thread, a step is PyTorch's.
final class BatchNorm2D: BuiltInLayer {
    let name: String
    /// The channels (C), PyTorch's `num_features`.
    let features: Int
    /// ε, added to the variance.
    let epsilon: Float
    /// m, the running statistics' update weight.
    let momentum: Float
    /// Whether training-mode passes update the running statistics: false
    /// for a data-parallel replica.
    let updatesRunningStatistics: Bool

    private var weight: UnsafeMutablePointer<Float>?  // (C)
    private var bias: UnsafeMutablePointer<Float>?  // (C)
    private var weightGrad: UnsafeMutablePointer<Float>?  // (C)
    private var biasGrad: UnsafeMutablePointer<Float>?  // (C)
    private var runningMean: UnsafeMutablePointer<Float>?  // (C)
    private var runningVar: UnsafeMutablePointer<Float>?  // (C)
    private var planeSize = 0  // H·W
    // What backward needs from the last forward: each channel's mean and
    // 1/√(σ² + ε) (the batch's in training, the running ones in evaluation).
    private var statistics: UnsafeMutablePointer<Float>?  // mean (C), inverse std (C)
    private var lastForwardTrained = true

    /// - Parameters:
    ///   - name: the parameter-name prefix, e.g. `bn1`.
    ///   - features: the channels, C.
    ///   - epsilon: added to the variance (PyTorch: 1e-5).
    ///   - momentum: the running statistics' update weight (PyTorch: 0.1).
    convenience init(_ name: String, features: Int, epsilon: Float = 1e-5, momentum: Float = 0.1) {
        self.init(name, features: features, epsilon: epsilon, momentum: momentum, updatesRunningStatistics: true)
    }

    private init(_ name: String, features: Int, epsilon: Float, momentum: Float, updatesRunningStatistics: Bool) {
        self.name = name
        self.features = features
        self.epsilon = epsilon
        self.momentum = momentum
        self.updatesRunningStatistics = updatesRunningStatistics
    }

    typealias Configuration = BatchNorm2DConfiguration

    var configuration: any LayerConfiguration {
        Configuration(name: name, numFeatures: features, eps: epsilon, momentum: momentum)
    }

    var kind: String { "BatchNorm2d" }

    var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [features], initialValue: 1), ParameterSpec(name: "bias", shape: [features], initialValue: 0)]
    }

    var bufferSpecs: [ParameterSpec] {
        [ParameterSpec(name: "running_mean", shape: [features], initialValue: 0),
         ParameterSpec(name: "running_var", shape: [features], initialValue: 1)]
    }

    func replica() -> any Layer {
        BatchNorm2D(name, features: features, epsilon: epsilon, momentum: momentum, updatesRunningStatistics: false)
    }

    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        guard input.channels == features else {
            throw LeNetError("expects \(features) channels, got \(input.channels) (input \(input))", subject: name)
        }
        planeSize = input.height * input.width
        return input
    }

    /// Over 1×1 maps (after a Linear or a Flatten) a training pass needs two
    /// samples: one value per channel has no variance (PyTorch refuses it too).
    func minimumTrainingSamples(input: FeatureShape) -> Int { input.height * input.width == 1 ? 2 : 1 }

    /// Four per value: a subtraction, a multiply and an add, and the
    /// statistics' share.
    func connections(for input: FeatureShape) -> Int { 4 * input.count }

    func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        weight = parameters[0]; bias = parameters[1]
        weightGrad = gradients[0]; biasGrad = gradients[1]
    }

    func bind(buffers: [UnsafeMutablePointer<Float>]) {
        runningMean = buffers[0]; runningVar = buffers[1]
    }

    func workspace(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) -> [WorkspaceBuffer] {
        [WorkspaceBuffer("batch statistics", count: 2 * features)]
    }

    func bind(workspace: [BoundWorkspaceBuffer]) { statistics = workspace.first?.pointer }

    /// The training-mode pass (batch statistics), as `Network.forward` runs it.
    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        forward(y, x, batch: n, training: true)
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int, training: Bool) {
        guard let weight, let bias, let runningMean, let runningVar, let mean = statistics else { unready(name) }
        let C = features, HW = planeSize, M = n * HW, eps = epsilon, m = momentum
        let inverseStd = mean + C
        lastForwardTrained = training
        let updates = training && updatesRunningStatistics
        parallelFor(C, minimum: 4) { channels in
            for c in channels {
                if training {
                    var sum = 0.0
                    for s in 0..<n {
                        let p = x + (s * C + c) * HW
                        for i in 0..<HW { sum += Double(p[i]) }
                    }
                    let mu = sum / Double(max(M, 1))
                    var squares = 0.0
                    for s in 0..<n {
                        let p = x + (s * C + c) * HW
                        for i in 0..<HW {
                            let d = Double(p[i]) - mu
                            squares += d * d
                        }
                    }
                    let variance = squares / Double(max(M, 1))
                    mean[c] = Float(mu)
                    inverseStd[c] = Float(1 / (variance + Double(eps)).squareRoot())
                    if updates {
                        // The unbiased variance; one value has none, and its biased one (0) is kept.
                        let unbiased = M > 1 ? variance * Double(M) / Double(M - 1) : variance
                        runningMean[c] = (1 - m) * runningMean[c] + m * Float(mu)
                        runningVar[c] = (1 - m) * runningVar[c] + m * Float(unbiased)
                    }
                } else {
                    mean[c] = runningMean[c]
                    inverseStd[c] = 1 / (runningVar[c] + eps).squareRoot()
                }
                let scale = weight[c] * inverseStd[c], shift = bias[c] - mean[c] * scale
                for s in 0..<n {
                    let p = x + (s * C + c) * HW, q = y + (s * C + c) * HW
                    for i in 0..<HW { q[i] = p[i] * scale + shift }
                }
            }
        }
    }

    /// After a training-mode forward, the batch statistics' gradient (μ and
    /// σ² depend on every x); after an evaluation-mode one, the affine map's.
    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let weight, let weightGrad, let biasGrad, let mean = statistics else { unready(name, "backward") }
        let C = features, HW = planeSize, M = n * HW, trained = lastForwardTrained
        let inverseStd = mean + C
        parallelFor(C, minimum: 4) { channels in
            for c in channels {
                let mu = mean[c], inv = inverseStd[c]
                var sumDy = 0.0, sumDyXhat = 0.0
                for s in 0..<n {
                    let p = x + (s * C + c) * HW, g = dy + (s * C + c) * HW
                    for i in 0..<HW {
                        sumDy += Double(g[i])
                        sumDyXhat += Double(g[i]) * Double((p[i] - mu) * inv)
                    }
                }
                biasGrad[c] += Float(sumDy)
                weightGrad[c] += Float(sumDyXhat)
                guard let dx else { continue }
                let gamma = weight[c]
                if !trained {
                    let scale = gamma * inv
                    for s in 0..<n {
                        let g = dy + (s * C + c) * HW, d = dx + (s * C + c) * HW
                        for i in 0..<HW { d[i] = g[i] * scale }
                    }
                    continue
                }
                let k = gamma * inv, meanDy = Float(sumDy / Double(M)), meanDyXhat = Float(sumDyXhat / Double(M))
                for s in 0..<n {
                    let p = x + (s * C + c) * HW, g = dy + (s * C + c) * HW, d = dx + (s * C + c) * HW
                    for i in 0..<HW { d[i] = k * (g[i] - meanDy - (p[i] - mu) * inv * meanDyXhat) }
                }
            }
        }
    }

    /// ONNX's BatchNormalization (inference form) over the running statistics.
    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        try graph.requireImage(name)
        let inputs = try ["weight", "bias", "running_mean", "running_var"].map { try graph.parameter("\(name).\($0)", dims: [features]) }
        return graph.node("BatchNormalization", [input] + inputs, output: name, attributes: [.float("epsilon", epsilon)])
    }
}

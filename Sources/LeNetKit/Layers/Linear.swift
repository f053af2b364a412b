/// PyTorch's `Linear` (always with a bias).
public struct LinearConfiguration: LayerConfiguration, KeyedLayerConfiguration, Equatable {
    public var name: String
    /// IN, the size of the flattened input (C·H·W), and OUT.
    public var inFeatures: Int, outFeatures: Int

    /// PyTorch's `nn.Linear(in_features, out_features)`.
    public init(name: String, inFeatures: Int, outFeatures: Int) {
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, inFeatures = "in_features", outFeatures = "out_features" }

    init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name), inFeatures: try c.integer(.inFeatures),
                  outFeatures: try c.integer(.outFeatures))
    }

    public var type: String { "Linear" }

    func validate() throws {
        try check(inFeatures, .inFeatures, in: 1...maximumLayerSize)
        try check(outFeatures, .outFeatures, in: 1...maximumLayerSize)
    }

    public func makeLayer() throws -> any Layer {
        try validate()
        return Linear(name, inFeatures: inFeatures, outFeatures: outFeatures)
    }
}

/// A fully connected layer, PyTorch's `nn.Linear`.
///
/// ```
/// Y (N, OUT) = X (N, IN) · Wᵀ (IN, OUT) + b
/// ```
/// Parameters: `weight` (OUT, IN), `bias` (OUT); default init uniform in
/// ±1/√IN. The input is the flattened sample (C·H·W order).
final class Linear: BuiltInLayer {
    let name: String
    /// Input features (IN, the flattened C·H·W) and outputs (OUT).
    let inFeatures: Int, outFeatures: Int

    private var weight: UnsafeMutablePointer<Float>?  // (OUT, IN)
    private var bias: UnsafeMutablePointer<Float>?  // (OUT)
    private var weightGrad: UnsafeMutablePointer<Float>?  // (OUT, IN)
    private var biasGrad: UnsafeMutablePointer<Float>?  // (OUT)

    /// - Parameters:
    ///   - name: the parameter-name prefix, e.g. `fc1`.
    ///   - inFeatures: IN, the size of the flattened input.
    ///   - outFeatures: OUT.
    init(_ name: String, inFeatures: Int, outFeatures: Int) {
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    var kind: String { "Linear" }

    /// `affine` in the curvature pass (SDLM).
    var curvatureRule: CurvatureRule { .affine }

    typealias Configuration = LinearConfiguration

    var configuration: any LayerConfiguration { Configuration(name: name, inFeatures: inFeatures, outFeatures: outFeatures) }

    /// y = x·Wᵀ + b, W stored (out, in) as PyTorch stores it.
    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        let x = graph.flattened(input, for: name)
        let w = try graph.parameter(name + ".weight", dims: [outFeatures, inFeatures])
        let b = try graph.parameter(name + ".bias", dims: [outFeatures])
        return graph.node("Gemm", [x, w, b], output: name, attributes: [.int("transB", 1)])
    }

    var parameterSpecs: [ParameterSpec] {
        let bound = 1 / Float(inFeatures).squareRoot()
        return [
            ParameterSpec(name: "weight", shape: [outFeatures, inFeatures], initBound: bound),
            ParameterSpec(name: "bias", shape: [outFeatures], initBound: bound),
        ]
    }

    func replica() -> any Layer { Linear(name, inFeatures: inFeatures, outFeatures: outFeatures) }

    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        guard input.count == inFeatures else {
            throw LeNetError("expects \(inFeatures) input features, got \(input.count) (input \(input))", subject: name)
        }
        return FeatureShape(features: outFeatures)
    }

    func connections(for input: FeatureShape) -> Int { outFeatures * (inFeatures + 1) }

    /// The bound weight (OUT, IN) and bias (OUT), for the inference path's fused step.
    var values: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)? {
        guard let weight, let bias else { return nil }
        return (UnsafePointer(weight), UnsafePointer(bias))
    }

    func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        weight = parameters[0]; bias = parameters[1]
        weightGrad = gradients[0]; biasGrad = gradients[1]
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let weight, let bias else { unready(name) }
        fullyConnectedForward(y, x, weight: weight, bias: bias, batch: n, inputs: inFeatures, outputs: outFeatures)
    }

    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let weight, let weightGrad, let biasGrad else { unready(name) }
        fullyConnectedBackward(dx, dy, x, weight: weight, weightGrad: weightGrad, biasGrad: biasGrad, batch: n,
                               inputs: inFeatures, outputs: outFeatures)
    }
}

/// A fully connected layer's training forward pass: y (N, OUT) = X (N, IN) · Wᵀ + b, W (OUT, IN).
/// Linear runs it, and so does a convolution whose window covers its input. With the
/// inference path's kernel where it runs: it reads W in place, where sgemm packed all of it
/// every call. One product for the batch: split across threads, sgemm's bits would depend
/// on the thread count.
func fullyConnectedForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                           weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, batch n: Int, inputs: Int, outputs: Int) {
    if linearReLUFits {
        linearReLU(y, ldy: outputs, x, ldx: inputs, weight, bias, batch: n, inputs: inputs, outputs: outputs, relu: false)
        return
    }
    for s in 0..<n { (y + s * outputs).update(from: bias, count: outputs) }
    gemm(.none, .transposed, m: n, n: outputs, k: inputs, x, weight, beta: 1, y)
}

/// `fullyConnectedForward`'s backward pass: dW and db added to, dX (N, IN) written when not nil.
func fullyConnectedBackward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                            weight: UnsafePointer<Float>, weightGrad: UnsafeMutablePointer<Float>,
                            biasGrad: UnsafeMutablePointer<Float>, batch n: Int, inputs: Int, outputs: Int) {
    // dW (OUT, IN) += dYᵀ (OUT, N) · X (N, IN)
    gemm(.transposed, .none, m: outputs, n: inputs, k: n, dy, x, beta: 1, weightGrad)
    for s in 0..<n {
        let row = dy + s * outputs
        for o in 0..<outputs { biasGrad[o] += row[o] }
    }
    if let dx {
        // dX (N, IN) = dY (N, OUT) · W (OUT, IN)
        gemm(.none, .none, m: n, n: inputs, k: outputs, dy, weight, dx)
    }
}

/// LeNetKit's `Subsampling`: `channels` maps, a square, non-overlapping
/// `kernel_size` window (default 2).
public struct SubsamplingConfiguration: LayerConfiguration, KeyedLayerConfiguration, Equatable {
    public var name: String
    /// The maps it subsamples (C), and the side of the window.
    public var channels: Int, kernelSize: Int

    /// LeNet-5's S2/S4 over `channels` maps.
    public init(name: String, channels: Int, kernelSize: Int = 2) {
        self.name = name
        self.channels = channels
        self.kernelSize = kernelSize
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, channels, kernelSize = "kernel_size" }

    init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name), channels: try c.integer(.channels),
                  kernelSize: try c.integerIfPresent(.kernelSize) ?? 2)
    }

    public var type: String { "Subsampling" }

    func validate() throws {
        try check(channels, .channels, in: 1...maximumLayerSize)
        try check(kernelSize, .kernelSize, in: 1...4096)
    }

    public func makeLayer() throws -> any Layer {
        try validate()
        return Subsampling(name, channels: channels, kernelSize: kernelSize)
    }
}

/// The trainable subsampling of LeCun et al. 1998 (LeNet-5's S2 and S4):
/// each k×k window of a map is summed, multiplied by one trainable
/// coefficient per map and shifted by one trainable bias per map.
///
/// ```
/// y[n, c, i, j] = w[c] · Σ_{di,dj < k} x[n, c, k·i + di, k·j + dj] + b[c]
/// dw[c] += Σ_{n,i,j} dy[n, c, i, j] · s[n, c, i, j]      (s: the window sum)
/// db[c] += Σ_{n,i,j} dy[n, c, i, j]
/// dx[n, c, k·i + di, k·j + dj] = w[c] · dy[n, c, i, j]   (0 where no window covers x)
/// ```
/// Windows do not overlap (stride k) and a trailing row or column that does
/// not fill a window is dropped, as in `nn.AvgPool2d(k)`. The paper's squashing
/// function is a separate layer (`Tanh.lecun`) placed after this one.
///
/// Parameters: `weight` (C), `bias` (C). Default init uniform in ±1/√(k²)
/// (±0.5 for 2×2): PyTorch's rule for a unit with fan-in k², the rule every
/// other layer here uses. The paper's rule, ±2.4/F_in (±0.6), differs by
/// a factor 1.2 and would only be consistent if every layer used it.
///
/// Connections, as the paper counts them: C·OH·OW·(k² + 1).
final class Subsampling: BuiltInLayer {
    let name: String
    /// The number of maps (C), in and out.
    let channels: Int
    /// The side of the square, non-overlapping window.
    let kernelSize: Int

    private var weight: UnsafeMutablePointer<Float>?  // (C)
    private var bias: UnsafeMutablePointer<Float>?  // (C)
    private var weightGrad: UnsafeMutablePointer<Float>?  // (C)
    private var biasGrad: UnsafeMutablePointer<Float>?  // (C)
    private var geometry: ConvGeometry?

    /// - Parameters:
    ///   - name: the parameter-name prefix, e.g. `s2`.
    ///   - channels: the number of maps, in and out.
    ///   - kernelSize: the side of the square, non-overlapping window.
    init(_ name: String, channels: Int, kernelSize: Int = 2) {
        self.name = name
        self.channels = channels
        self.kernelSize = kernelSize
    }

    var kind: String { "Subsampling \(kernelSize)×\(kernelSize)" }

    /// `affine` in the curvature pass (SDLM).
    var curvatureRule: CurvatureRule { .affine }

    typealias Configuration = SubsamplingConfiguration

    var configuration: any LayerConfiguration { Configuration(name: name, channels: channels, kernelSize: kernelSize) }

    /// w[c]·Σ(window) + b[c] is a depthwise Conv (group C) with the kernel
    /// w[c]·ones(k×k) and stride k: the same sum, each term scaled first.
    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        try graph.requireImage(name)
        guard let w = graph.network.parameters.values(of: name + ".weight"), w.count == channels else {
            throw LeNetError("the network has no parameter of shape [\(channels)]", subject: name + ".weight")
        }
        let k = kernelSize
        let kernel = graph.constant(name + ".kernel", dims: [channels, 1, k, k],
                                    values: w.flatMap { repeatElement($0, count: k * k) })
        let b = try graph.parameter(name + ".bias", dims: [channels])
        return graph.node("Conv", [input, kernel, b], output: name, attributes: [
            .ints("kernel_shape", [k, k]), .ints("strides", [k, k]), .int("group", channels),
        ])
    }

    var parameterSpecs: [ParameterSpec] {
        let bound = 1 / Float(max(1, kernelSize * kernelSize)).squareRoot()
        return [
            ParameterSpec(name: "weight", shape: [channels], initBound: bound),
            ParameterSpec(name: "bias", shape: [channels], initBound: bound),
        ]
    }

    func geometry(for input: FeatureShape) -> ConvGeometry {
        ConvGeometry(channels: input.channels, height: input.height, width: input.width,
                     kernelH: kernelSize, kernelW: kernelSize, stride: kernelSize)
    }

    func replica() -> any Layer { Subsampling(name, channels: channels, kernelSize: kernelSize) }

    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        guard input.channels == channels else {
            throw LeNetError("expects \(channels) input channels, got \(input.channels) (input \(input))", subject: name)
        }
        guard kernelSize > 0, input.height >= kernelSize, input.width >= kernelSize else {
            throw LeNetError("a \(kernelSize)×\(kernelSize) window does not fit input \(input)", subject: name)
        }
        let g = geometry(for: input)
        geometry = g
        return FeatureShape(channels: channels, height: g.outH, width: g.outW)
    }

    func connections(for input: FeatureShape) -> Int {
        let g = geometry(for: input)
        return channels * g.positions * (kernelSize * kernelSize + 1)
    }

    func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        weight = parameters[0]; bias = parameters[1]
        weightGrad = gradients[0]; biasGrad = gradients[1]
    }

    /// LeNet-5's case, 2×2 windows over even sides, runs `subsample2x2`
    /// (Kernels/Subsample.swift), four windows a vector step, maps across
    /// threads; any other runs the generic loops (`forwardNaive`), which
    /// are also the reference.
    var isPairwise: Bool {
        guard let g = geometry else { return false }
        return kernelSize == 2 && g.height % 2 == 0 && g.width % 2 == 0
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let bias else { unready(name) }
        guard isPairwise else { return forwardNaive(y, x, batch: n) }
        let H = g.height, W = g.width, OH = g.outH, OW = g.outW, C = channels
        parallelFor(n * C, minimum: 64) { planes in
            for plane in planes {
                let c = plane % C
                subsample2x2(y + plane &* OH &* OW, x + plane &* H &* W, W: W, OH: OH, OW: OW, weight: weight[c], bias: bias[c])
            }
        }
    }

    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let weightGrad, let biasGrad else { unready(name) }
        guard isPairwise else { return backwardNaive(dx, dy, x, y, batch: n) }
        let H = g.height, W = g.width, OH = g.outH, OW = g.outW
        // Planes in order, so dw and db add up the same way on any thread count.
        for plane in 0..<(n * channels) {
            let c = plane % channels
            let share = subsample2x2Backward(dx.map { $0 + plane &* H &* W }, dy + plane &* OH &* OW, x + plane &* H &* W,
                                             W: W, OH: OH, OW: OW, weight: weight[c])
            weightGrad[c] += share.weight
            biasGrad[c] += share.bias
        }
    }

    /// The generic forward pass (any window size): the reference.
    func forwardNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let bias else { unready(name) }
        let H = g.height, W = g.width, OH = g.outH, OW = g.outW, k = kernelSize
        for plane in 0..<(n * channels) {
            let c = plane % channels
            let xp = x + plane * H * W  // (H, W)
            let yp = y + plane * OH * OW  // (OH, OW)
            let w = weight[c], b = bias[c]
            for i in 0..<OH {
                for j in 0..<OW {
                    yp[i * OW + j] = w * windowSum(xp, row: i * k, column: j * k, width: W) + b
                }
            }
        }
    }

    /// The generic backward pass (any window size): the reference.
    func backwardNaive(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                       _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let weightGrad, let biasGrad else { unready(name) }
        let H = g.height, W = g.width, OH = g.outH, OW = g.outW, k = kernelSize
        let covered = OH * k == H && OW * k == W
        for plane in 0..<(n * channels) {
            let c = plane % channels
            let xp = x + plane * H * W  // (H, W)
            let dyp = dy + plane * OH * OW  // (OH, OW)
            // The window sums are recomputed from x (k² additions per output)
            // rather than cached by forward, so the layer owns no buffer.
            var dw: Float = 0, db: Float = 0
            for i in 0..<OH {
                for j in 0..<OW {
                    let d = dyp[i * OW + j]
                    dw += d * windowSum(xp, row: i * k, column: j * k, width: W)
                    db += d
                }
            }
            weightGrad[c] += dw
            biasGrad[c] += db
            guard let dx else { continue }
            let dxp = dx + plane * H * W  // (H, W)
            if !covered { dxp.update(repeating: 0, count: H * W) }
            let w = weight[c]
            for i in 0..<OH {
                for j in 0..<OW {
                    let v = w * dyp[i * OW + j]
                    for di in 0..<k {
                        let row = dxp + (i * k + di) * W + j * k
                        for dj in 0..<k { row[dj] = v }
                    }
                }
            }
        }
    }

    /// Σ of the k×k window whose top-left corner is (row, column).
    @inline(__always)
    private func windowSum(_ xp: UnsafePointer<Float>, row: Int, column: Int, width W: Int) -> Float {
        var s: Float = 0
        for di in 0..<kernelSize {
            let line = xp + (row + di) * W + column
            for dj in 0..<kernelSize { s += line[dj] }
        }
        return s
    }
}

extension Subsampling {
    var kernelSummary: (size: String, count: Int)? { ("\(kernelSize)×\(kernelSize)", channels) }
}

/// A 2-D convolution computed as im2col + gemm, PyTorch's `nn.Conv2d`.
///
/// ```
/// y[n, oc] = b[oc] + Σ_c  w[oc, c] ⋆ x[n, c]        (cross-correlation)
/// per sample:  Y (OC, P) = W (OC, C·KH·KW) · cols (C·KH·KW, P)
/// ```
/// Parameters: `weight` (OC, C, KH, KW), `bias` (OC); default init uniform
/// in ±1/√(C·KH·KW).
public final class Conv2D: Layer {
    public let name: String
    /// Input channels (C) and output channels, the number of kernels (OC).
    public let inChannels: Int, outChannels: Int
    /// Kernel rows and columns (KH, KW); square here.
    public let kernelH: Int, kernelW: Int
    /// The step between windows, and the zeros added on each side.
    public let stride: Int, padding: Int

    private var weight: UnsafeMutablePointer<Float>?  // (OC, C, KH, KW)
    private var bias: UnsafeMutablePointer<Float>?  // (OC)
    private var weightGrad: UnsafeMutablePointer<Float>?  // (OC, C, KH, KW)
    private var biasGrad: UnsafeMutablePointer<Float>?  // (OC)
    private var geometry: ConvGeometry?
    // The batch is laid side by side, column s·P + p holding position p of
    // sample s, so the weight gradient is one gemm over the whole batch.
    // Forward and the input gradient run in chunks of a few samples, so the
    // columns a chunk writes are still in cache when its gemm reads them.
    private var cols = BatchBuffer(perSample: 0)  // (C·KH·KW, N·P), cached by forward
    private var outT = BatchBuffer(perSample: 0)  // (OC, N·P): forward's product, backward's dY
    private var dcols = BatchBuffer(perSample: 0)  // (C·KH·KW, N·P), backward only

    /// Samples per chunk: about 512 KB of columns and products, at least 2.
    private var chunk: Int {
        guard let g = geometry else { return 1 }
        return max(2, 131_072 / max(1, (g.patch + outChannels) * g.positions))
    }

    /// - Parameters:
    ///   - name: the parameter-name prefix, e.g. `conv1`.
    ///   - kernelSize: square kernel side.
    ///   - stride: step between windows.
    ///   - padding: zeros added on each side.
    public init(_ name: String, inChannels: Int, outChannels: Int, kernelSize: Int,
                stride: Int = 1, padding: Int = 0) {
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        kernelH = kernelSize
        kernelW = kernelSize
        self.stride = stride
        self.padding = padding
    }

    public var kind: String { "Conv2D \(kernelH)×\(kernelW)" + (stride != 1 ? " s\(stride)" : "") + (padding != 0 ? " p\(padding)" : "") }

    public var parameterSpecs: [ParameterSpec] {
        let bound = 1 / Float(inChannels * kernelH * kernelW).squareRoot()
        return [
            ParameterSpec(name: "weight", shape: [outChannels, inChannels, kernelH, kernelW], initBound: bound),
            ParameterSpec(name: "bias", shape: [outChannels], initBound: bound),
        ]
    }

    func geometry(for input: FeatureShape) -> ConvGeometry {
        ConvGeometry(channels: input.channels, height: input.height, width: input.width,
                     kernelH: kernelH, kernelW: kernelW, stride: stride, padding: padding)
    }

    public func replica() -> any Layer { Conv2D(name, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelH, stride: stride, padding: padding) }

    public func outputShape(for input: FeatureShape) throws -> FeatureShape {
        guard input.channels == inChannels else {
            throw LeNetError("expects \(inChannels) input channels, got \(input.channels) (input \(input))", subject: name)
        }
        guard stride > 0, padding >= 0, kernelH > 0,
              input.height + 2 * padding >= kernelH, input.width + 2 * padding >= kernelW else {
            throw LeNetError("a \(kernelH)×\(kernelW) kernel (stride \(stride), padding \(padding)) does not fit input \(input)", subject: name)
        }
        let g = geometry(for: input)
        return FeatureShape(channels: outChannels, height: g.outH, width: g.outW)
    }

    public func connections(for input: FeatureShape) -> Int {
        let g = geometry(for: input)
        return outChannels * g.positions * (g.patch + 1)
    }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        weight = parameters[0]; bias = parameters[1]
        weightGrad = gradients[0]; biasGrad = gradients[1]
    }

    public func reserve(batch n: Int, input: FeatureShape) {
        let g = geometry(for: input)
        geometry = g
        if cols.perSample != g.patch * g.positions {
            cols = BatchBuffer(perSample: g.patch * g.positions)
            outT = BatchBuffer(perSample: outChannels * g.positions)
            dcols = BatchBuffer(perSample: g.patch * g.positions)
        }
        cols.reserve(batch: n)
        outT.reserve(batch: n)
    }

    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let bias else { return }
        let P = g.positions, K = g.patch, OC = outChannels, NP = n * P, c = chunk
        let cols = cols.pointer, outT = outT.pointer, CHW = g.channels * g.height * g.width
        parallelFor((n + c - 1) / c) { chunks in
            for first in Swift.stride(from: chunks.lowerBound * c, to: min(chunks.upperBound * c, n), by: c) {
                let m = min(c, n - first)
                for s in first..<first + m { im2col(cols + s * P, x + s * CHW, g, ld: NP) }
                // outT (OC, m·P) = W (OC, K) · cols[:, chunk] (K, m·P)
                gemm(.none, .none, m: OC, n: m * P, k: K, weight, cols + first * P, ldb: NP, outT + first * P, ldc: NP)
                // y (m, OC, P) = outT (OC, m, P) + b
                for s in first..<first + m {
                    for oc in 0..<OC {
                        let src = outT + oc * NP + s * P, dst = y + (s * OC + oc) * P, b = bias[oc]
                        for p in 0..<P { dst[p] = src[p] + b }
                    }
                }
            }
        }
    }

    public func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let weightGrad, let biasGrad else { return }
        let P = g.positions, K = g.patch, OC = outChannels, NP = n * P, c = chunk
        let cols = cols.pointer, dyT = outT.pointer, CHW = g.channels * g.height * g.width
        // dyT (OC, N, P) = dy (N, OC, P)
        parallelFor(n) { samples in
            for s in samples {
                for oc in 0..<OC { (dyT + oc * NP + s * P).update(from: dy + (s * OC + oc) * P, count: P) }
            }
        }
        for oc in 0..<OC {
            let row = dyT + oc * NP
            var sum: Float = 0
            for i in 0..<NP { sum += row[i] }
            biasGrad[oc] += sum
        }
        // dW (OC, K) += dyT (OC, N·P) · colsᵀ (N·P, K)
        gemm(.none, .transposed, m: OC, n: K, k: NP, dyT, cols, beta: 1, weightGrad)
        guard let dx else { return }
        dcols.reserve(batch: n)
        let dcols = dcols.pointer
        parallelFor((n + c - 1) / c) { chunks in
            for first in Swift.stride(from: chunks.lowerBound * c, to: min(chunks.upperBound * c, n), by: c) {
                let m = min(c, n - first)
                // dcols (K, m·P) = Wᵀ (K, OC) · dyT[:, chunk] (OC, m·P), folded back into dx
                gemm(.transposed, .none, m: K, n: m * P, k: OC, weight, dyT + first * P, ldb: NP,
                     dcols + first * P, ldc: NP)
                for s in first..<first + m { col2im(dx + s * CHW, dcols + s * P, g, ld: NP) }
            }
        }
    }
}

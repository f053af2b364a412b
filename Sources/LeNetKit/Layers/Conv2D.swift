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
    // Columns are not kept from forward to backward. Each pass unfolds a
    // chunk of samples at a time into scratch that stays in the core's L2
    // cache, and backward unfolds its chunk again: im2col costs less than
    // writing a whole batch's columns to memory and reading them back
    // (measured: docs/PERFORMANCE.md, "Design measurements").
    private var scratch: [FloatBuffer] = []  // per worker: cols (K, c·P), product (OC, c·P), dcols (K, c·P)
    // Backward sums the weight gradient transposed, dWᵀ = cols · dyᵀ, and
    // adds it into dW once at the end: sgemm ran the product faster in
    // that orientation, for both convolutions (docs/PERFORMANCE.md).
    private var weightGradT = FloatBuffer()  // (K, OC)

    /// Samples per chunk: scratch of about 256 KB, at least one sample.
    /// LeNet's convolutions get one sample per chunk: chunks of 1 MB (2–3
    /// samples) trained slower (docs/PERFORMANCE.md).
    private var chunk: Int {
        guard let g = geometry else { return 1 }
        return chunk(g)
    }

    private func chunk(_ g: ConvGeometry) -> Int {
        max(1, 65_536 / max(1, (2 * g.patch + outChannels) * g.positions))
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

    /// The bound weight (OC, C, KH, KW) and bias (OC), for the inference path's fused step.
    var values: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)? {
        guard let weight, let bias else { return nil }
        return (UnsafePointer(weight), UnsafePointer(bias))
    }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        weight = parameters[0]; bias = parameters[1]
        weightGrad = gradients[0]; biasGrad = gradients[1]
    }

    /// The bound weight and bias gradients, for the backward pass through a
    /// pool after this layer (`ConvMaxPoolBackward`).
    var gradients: (weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>)? {
        guard let weightGrad, let biasGrad else { return nil }
        return (weightGrad, biasGrad)
    }

    /// What `reserve(batch: n, input:)` allocates: `workers` scratch buffers
    /// of `scratch` Floats each, and the transposed weight gradient.
    private func workspace(batch n: Int, geometry g: ConvGeometry, workers threads: Int, backward: Bool)
        -> (workers: Int, scratch: Int, weightGradT: Int) {
        let chunk = chunk(g)
        // One scratch per worker that a batch of n can use: never more than
        // its chunks, or than the threads that may run it (one for a
        // data-parallel replica), so a thread count far above the work costs
        // nothing, and the replicas' scratch grows with threads, not threads².
        let workers = max(1, min(threads, (n + chunk - 1) / chunk))
        // Forward uses a scratch's cols and product; backward its dcols too,
        // and the transposed weight gradient.
        guard backward else { return (workers, (g.patch + outChannels) * chunk * g.positions, 0) }
        return (workers, (2 * g.patch + outChannels) * chunk * g.positions, g.patch * outChannels)
    }

    public func workspaceBytes(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) -> Int {
        let w = workspace(batch: n, geometry: geometry(for: input), workers: workers, backward: backward)
        return 4 * (w.workers * w.scratch + w.weightGradT)
    }

    public func reserve(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) throws {
        let g = geometry(for: input)
        geometry = g
        let w = workspace(batch: n, geometry: g, workers: workers, backward: backward)
        if scratch.count < w.workers || scratch.first?.count != w.scratch {
            scratch = try (0..<w.workers).map { _ in try FloatBuffer(count: w.scratch, name: "\(name) im2col scratch") }
        }
        if weightGradT.count != w.weightGradT {
            weightGradT = try FloatBuffer(count: w.weightGradT, name: "\(name) weight gradient (transposed)")
        }
    }

    /// Tests set it to run one path or the other; nil: `directKernel` decides.
    var direct: Bool?

    /// Whether this layer runs the direct 5×5 kernels (Kernels/DirectConvolution.swift)
    /// forward, and backward when no input gradient is asked for, instead of
    /// im2col + sgemm: where the input has one channel. It halved LeNet-5's
    /// C1 forward and backward, and was slower for every layer with more
    /// input channels (C3, C5, the CIFAR LeNet's conv1 and conv2), where
    /// sgemm's tiles fill up (docs/PERFORMANCE.md).
    var directKernel: Bool {
        guard let g = geometry, directConvolutionFits(g) else { return false }
        return direct ?? (g.channels == 1)
    }

    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let bias, !scratch.isEmpty else { unready(name) }
        if directKernel {
            let OC = outChannels, P = g.positions, CHW = g.channels * g.height * g.width
            parallelFor(n) { samples in
                for s in samples { conv5x5(y + s * OC * P, x + s * CHW, weight, bias, g, outChannels: OC) }
            }
            return
        }
        let P = g.positions, K = g.patch, OC = outChannels, c = chunk, CHW = g.channels * g.height * g.width
        let scratch = scratch
        parallelForWorkers((n + c - 1) / c, maxWorkers: scratch.count) { worker, chunks in
            let cols = scratch[worker].pointer, product = cols + K * c * P
            for first in Swift.stride(from: chunks.lowerBound * c, to: min(chunks.upperBound * c, n), by: c) {
                let m = min(c, n - first), mP = m * P
                // cols (K, m·P): the chunk's samples side by side
                for s in 0..<m { im2col(cols + s * P, x + (first + s) * CHW, g, ld: mP) }
                if m == 1 {
                    // y (OC, P) = W (OC, K) · cols (K, P) + b: one sample is already in y's layout
                    let out = y + first * OC * P
                    gemmInColumnBlocks(.none, m: OC, n: P, k: K, weight, cols, out)
                    for oc in 0..<OC { addScalar(out + oc * P, bias[oc], count: P) }
                    continue
                }
                // product (OC, m·P) = W (OC, K) · cols (K, m·P)
                gemm(.none, .none, m: OC, n: mP, k: K, weight, cols, product)
                // y (m, OC, P) = product (OC, m, P) + b
                for s in 0..<m {
                    for oc in 0..<OC {
                        let src = product + oc * mP + s * P, dst = y + ((first + s) * OC + oc) * P, b = bias[oc]
                        for p in 0..<P { dst[p] = src[p] + b }
                    }
                }
            }
        }
    }

    /// Runs chunk by chunk on one thread: every chunk adds into the same
    /// weight gradient. (Training splits the batch across threads one level
    /// up, one network replica per thread.)
    public func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let weightGrad, let biasGrad, let work = scratch.first else { unready(name) }
        let P = g.positions, K = g.patch, OC = outChannels, c = chunk, CHW = g.channels * g.height * g.width
        if dx == nil && directKernel {
            for s in 0..<n {
                let dys = dy + s * OC * P
                for oc in 0..<OC { biasGrad[oc] += sum(dys + oc * P, count: P) }
                conv5x5WeightGradient(weightGrad, dys, x + s * CHW, g, outChannels: OC)
            }
            return
        }
        let cols = work.pointer, transposed = cols + K * c * P, dcols = transposed + OC * c * P
        let dWT = weightGradT.pointer
        dWT.update(repeating: 0, count: K * OC)
        defer {
            // dW (OC, K) += dWᵀ (K, OC)ᵀ
            for oc in 0..<OC {
                let row = weightGrad + oc * K
                for k in 0..<K { row[k] += dWT[k * OC + oc] }
            }
        }
        for first in Swift.stride(from: 0, to: n, by: c) {
            let m = min(c, n - first), mP = m * P
            // dyT (OC, m, P) = dy (m, OC, P); db += row sums. One sample is
            // already in that layout.
            let dyT = m == 1 ? dy + first * OC * P : UnsafePointer(transposed)
            for oc in 0..<OC {
                if m == 1 {
                    biasGrad[oc] += sum(dyT + oc * P, count: P)
                    continue
                }
                var total: Float = 0
                for s in 0..<m { total += copyAndSum(transposed + oc * mP + s * P, dy + ((first + s) * OC + oc) * P, count: P) }
                biasGrad[oc] += total
            }
            for s in 0..<m { im2col(cols + s * P, x + (first + s) * CHW, g, ld: mP) }
            // dWᵀ (K, OC) += cols (K, m·P) · dyTᵀ (m·P, OC)
            gemm(.none, .transposed, m: K, n: OC, k: mP, cols, dyT, beta: 1, dWT)
            guard let dx else { continue }
            // dcols (K, m·P) = Wᵀ (K, OC) · dyT (OC, m·P), folded back into dx
            gemmInColumnBlocks(.transposed, m: K, n: mP, k: OC, weight, dyT, dcols)
            for s in 0..<m { col2im(dx + (first + s) * CHW, dcols + s * P, g, ld: mP) }
        }
    }
}

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
    // (training at batch 36 on 2 threads: 6,129 images/s with kept columns,
    // 8,115 recomputed).
    private var scratch: [FloatBuffer] = []  // per worker: cols (K, c·P), product (OC, c·P), dcols (K, c·P)
    // Backward sums the weight gradient transposed, dWᵀ = cols · dyᵀ, and
    // adds it into dW once at the end: per sample, conv2's weight gradient
    // ran at 81 GFLOP/s as dy · colsᵀ and at 94 as cols · dyᵀ (conv1's at
    // 105 and 108).
    private var weightGradT = FloatBuffer()  // (K, OC)

    /// Set by the network when a 2×2, stride-2 max pool follows this
    /// convolution: `reserve` then also allocates the buffers of
    /// `backward(pooledGradient:…)`.
    var feedsPairwisePool = false
    // The pooled backward's buffers, with rows padded to ld = K rounded up to 8:
    private var patchRows = FloatBuffer()  // rows (P, ld), drows (P, ld), W (OC, ld), dW (OC, ld), weights (L)
    private var patchIndices = IndexBuffer()  // routes (OC, PP), row indices (L), used (P)

    /// Samples per chunk: scratch of about 256 KB, at least one sample.
    /// LeNet's convolutions get one sample per chunk; chunks of 1 MB (2–3
    /// samples) trained at batch 36 on 2 threads at 7,035 images/s, one
    /// sample at 8,222 (medians of 5).
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

    /// What `reserve(batch: n, input:)` allocates: `workers` scratch buffers
    /// of `scratch` Floats each, the transposed weight gradient, and the
    /// pooled backward's buffers when a pool follows.
    private func workspace(batch n: Int, geometry g: ConvGeometry, workers threads: Int, backward: Bool)
        -> (workers: Int, scratch: Int, weightGradT: Int, patchFloats: Int, patchIndices: Int) {
        let chunk = chunk(g)
        // One scratch per worker that a batch of n can use: never more than
        // its chunks, or than the threads that may run it (one for a
        // data-parallel replica), so a thread count far above the work costs
        // nothing, and the replicas' scratch grows with threads, not threads².
        let workers = max(1, min(threads, (n + chunk - 1) / chunk))
        // Forward uses a scratch's cols and product; backward its dcols too,
        // and the transposed weight gradient and the pooled backward's buffers.
        guard backward else { return (workers, (g.patch + outChannels) * chunk * g.positions, 0, 0, 0) }
        let pooled = feedsPairwisePool ? pooledLayout(g) : nil
        return (workers, (2 * g.patch + outChannels) * chunk * g.positions, g.patch * outChannels,
                pooled?.floats ?? 0, pooled?.indices ?? 0)
    }

    public func workspaceBytes(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) -> Int {
        let w = workspace(batch: n, geometry: geometry(for: input), workers: workers, backward: backward)
        return 4 * (w.workers * w.scratch + w.weightGradT + w.patchFloats + w.patchIndices)
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
        if feedsPairwisePool {
            if patchRows.count != w.patchFloats { patchRows = try FloatBuffer(count: w.patchFloats, name: "\(name) pooled-backward rows") }
            if patchIndices.count != w.patchIndices {
                patchIndices = try IndexBuffer(count: w.patchIndices, name: "\(name) pooled-backward routes")
            }
        }
    }

    /// The sizes of the pooled backward's buffers, when it applies (stride 1,
    /// no padding, an output of at least 2×2).
    private var pooledLayout: (ld: Int, pooled: Int, list: Int, floats: Int, indices: Int)? {
        guard let g = geometry else { return nil }
        return pooledLayout(g)
    }

    private func pooledLayout(_ g: ConvGeometry) -> (ld: Int, pooled: Int, list: Int, floats: Int, indices: Int)? {
        guard stride == 1, padding == 0, g.outH >= 2, g.outW >= 2 else { return nil }
        let ld = (g.patch + 7) / 8 * 8, P = g.positions, OC = outChannels
        let pooled = (g.outH / 2) * (g.outW / 2), list = max(pooled, 4 * OC)
        return (ld, pooled, list, 2 * P * ld + 2 * OC * ld + list, OC * pooled + list + P)
    }

    /// Whether `backward(pooledGradient:…)` can run: a 2×2 pool follows, the
    /// convolution has stride 1 and no padding, and its buffers are reserved.
    var canBackwardThroughPool: Bool {
        guard feedsPairwisePool, let p = pooledLayout else { return false }
        return patchRows.count == p.floats && patchIndices.count == p.indices
    }

    /// Tests set it to run one path or the other; nil: `directKernel` decides.
    var direct: Bool?

    /// Whether this layer runs the direct 5×5 kernels (Kernels/DirectConvolution.swift)
    /// forward, and backward when no input gradient is asked for, instead of
    /// im2col + sgemm: where the input has one channel. Measured 2026-12-02
    /// (AMD EPYC, AVX-512; one thread, ms at batch 18, im2col + sgemm →
    /// direct; docs/PERFORMANCE.md): LeNet-5's C1 forward 0.165 → 0.085,
    /// backward 0.227 → 0.074; but C3 (6 channels) 0.149 → 0.244, C5 (an
    /// output of 1×1) 0.056 → 0.476, the CIFAR LeNet's conv1 0.462 → 0.581
    /// and conv2 0.611 → 1.258: with more channels sgemm's tiles fill up.
    var directKernel: Bool {
        guard let g = geometry, directConvolutionFits(g) else { return false }
        return direct ?? (g.channels == 1)
    }

    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let bias, !scratch.isEmpty else { return }
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
        guard let g = geometry, let weight, let weightGrad, let biasGrad, let work = scratch.first else { return }
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

extension Conv2D {
    /// The backward pass of this convolution and the 2×2, stride-2 max pool
    /// after it, in one, from the pool's output gradient: the same
    /// gradients as the pool's `backward` followed by this layer's, without
    /// the dense gradient between them.
    ///
    /// Each pooling window passes its gradient to one output position, its
    /// maximum (found again from `y`, ties to the first as in PyTorch), so
    /// three positions in four get none, and a ReLU behind the pool zeroes
    /// some of the rest (5–25% in the CIFAR LeNet at initialization).
    /// Instead of gemms over those zeros, the weight
    /// gradient sums the chosen input patches and the input gradient sums
    /// the kernels that chose each position (`weightedRowSum`), skipping
    /// zeros. Sums run in another order than the gemms', so results agree to
    /// rounding; a gradient of exactly 0 is skipped even where the dense
    /// product would have met an infinite input (0·∞).
    ///
    /// Runs on one thread, like `backward`.
    /// - Parameters:
    ///   - dx: the input gradient, (N, C, H, W), or nil for the first layer.
    ///   - dyPooled: the pool's output gradient, (N, OC, OH/2, OW/2).
    ///   - x: this layer's input of the last forward, (N, C, H, W).
    ///   - y: this layer's output of the last forward, (N, OC, OH, OW).
    ///   - n: the batch size.
    func backward(pooledGradient dyPooled: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>?,
                  _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let p = pooledLayout, canBackwardThroughPool,
              let weight, let weightGrad, let biasGrad else { return }
        let P = g.positions, K = g.patch, OC = outChannels, CHW = g.channels * g.height * g.width
        let OW = g.outW, PH = g.outH / 2, PW = g.outW / 2, PP = p.pooled, ld = p.ld
        let rows = patchRows.pointer  // (P, ld): the input patches
        let drows = rows + P * ld  // (P, ld): the input gradient's patches
        let paddedW = drows + P * ld  // (OC, ld)
        let dW = paddedW + OC * ld  // (OC, ld)
        let listWeights = dW + OC * ld  // (L)
        let routes = patchIndices.pointer  // (OC, PP)
        let listRows = routes + OC * PP  // (L)
        let used = listRows + p.list  // (P)

        dW.update(repeating: 0, count: OC * ld)
        if dx != nil {
            for oc in 0..<OC { (paddedW + oc * ld).update(from: weight + oc * K, count: K) }
        }
        for s in 0..<n {
            let gs = dyPooled + s * OC * PP, ys = y + s * OC * P
            for oc in 0..<OC {
                maxPool2x2Routes(routes + oc * PP, ys + oc * P, W: OW, OH: PH, OW: PW)
                biasGrad[oc] += sum(gs + oc * PP, count: PP)
            }
            im2rows(rows, x + s * CHW, g, ld: ld)
            // dW[oc] += Σ g · rows[route]: the nonzero gradients of each kernel
            for oc in 0..<OC {
                var count = 0
                for w in 0..<PP {
                    let v = gs[oc * PP + w]
                    listRows[count] = routes[oc * PP + w]
                    listWeights[count] = v
                    count &+= nonzero(v)
                }
                weightedRowSum(dW + oc * ld, accumulate: true, rows, ld: ld, width: ld,
                               rows: listRows, weights: listWeights, count: count)
            }
            guard let dx else { continue }
            // drows[q] = Σ g · W[oc] over the kernels whose window chose q,
            // for the four positions of each window (one pass over the
            // kernels per position keeps the list-building free of branches).
            used.update(repeating: 0, count: P)
            for w in 0..<PP {
                let start = (w / PW) * 2 * OW + (w % PW) * 2
                for corner in 0..<4 {
                    let q = start + (corner >= 2 ? OW : 0) + corner % 2
                    var count = 0
                    for oc in 0..<OC {
                        let v = gs[oc * PP + w]
                        listRows[count] = Int32(truncatingIfNeeded: oc)
                        listWeights[count] = v
                        count &+= nonzero(v) & same(routes[oc * PP + w], Int32(truncatingIfNeeded: q))
                    }
                    guard count > 0 else { continue }
                    used[q] = 1
                    weightedRowSum(drows + q * ld, accumulate: false, paddedW, ld: ld, width: ld,
                                   rows: listRows, weights: listWeights, count: count)
                }
            }
            rows2im(dx + s * CHW, drows, g, ld: ld, used: used)
        }
        for oc in 0..<OC {
            let row = weightGrad + oc * K, part = dW + oc * ld
            for k in 0..<K { row[k] += part[k] }
        }
    }
}

// The compaction loops count with arithmetic, not comparisons: the
// optimizer turned `v != 0 ? 1 : 0` into branches, which mispredict on
// gradients that are zero at random (0.6 ms a training step).

/// 1 when a gradient is to be summed, anything but ±0 (a NaN is kept, so it
/// reaches the weights as it would through the dense product), else 0.
@inline(__always)
private func nonzero(_ v: Float) -> Int {
    Int(((v.bitPattern & 0x7fff_ffff) &+ 0x7fff_ffff) >> 31)
}

/// 1 when a == b, else 0.
@inline(__always)
private func same(_ a: Int32, _ b: Int32) -> Int {
    let d = UInt32(bitPattern: a ^ b)
    return 1 &- Int(((d & 0x7fff_ffff) &+ 0x7fff_ffff | d) >> 31)
}

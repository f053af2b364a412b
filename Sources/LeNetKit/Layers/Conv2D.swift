/// A convolution's configuration: PyTorch's `Conv2d` fields (a square
/// `kernel_size`); with `table`, LeNetKit's `PartialConv2d`.
public struct Conv2DConfiguration: LayerConfiguration, KeyedLayerConfiguration, Equatable {
    public var name: String
    /// Input channels (C), output channels (OC), and the side of the square kernel.
    public var inChannels: Int, outChannels: Int, kernelSize: Int
    /// The step between windows, and the zeros added on every side.
    public var stride: Int, padding: Int
    /// `table[oc]`: the input maps output map `oc` sees; nil: all.
    public var table: [[Int]]?

    /// PyTorch's `nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding)`, or with `table` a
    /// partial connection (LeNet-5's C3).
    public init(name: String, inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                table: [[Int]]? = nil) {
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.stride = stride
        self.padding = padding
        self.table = table
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, inChannels = "in_channels", outChannels = "out_channels", kernelSize = "kernel_size", stride, padding, table
    }

    init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name),
                  inChannels: try c.integer(.inChannels),
                  outChannels: try c.integer(.outChannels),
                  kernelSize: try c.integer(.kernelSize),
                  stride: try c.integerIfPresent(.stride) ?? 1,
                  padding: try c.integerIfPresent(.padding) ?? 0,
                  table: try c.integerRowsIfPresent(.table))
    }

    public var type: String { table == nil ? "Conv2d" : "PartialConv2d" }

    func validate() throws {
        try check(inChannels, .inChannels, in: 1...maximumLayerSize)
        try check(outChannels, .outChannels, in: 1...maximumLayerSize)
        try check(kernelSize, .kernelSize, in: 1...4096)
        try check(stride, .stride, in: 1...4096)
        try check(padding, .padding, in: 0...4096)
        if let table, let problem = Conv2D.tableProblem(table, inChannels: inChannels, outChannels: outChannels) {
            throw LayerFieldError("table", problem)
        }
    }

    public func makeLayer() throws -> any Layer {
        try validate()
        return Conv2D(name, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize, stride: stride,
               padding: padding, table: table)
    }
}

/// A 2-D convolution computed as im2col + gemm, PyTorch's `nn.Conv2d`;
/// with a connection table, output map `oc` sees only the input maps
/// `table[oc]` (LeNet-5's C3, LeCun et al. 1998, Table I).
///
/// ```
/// y[n, oc] = b[oc] + Σ_{c ∈ table[oc]} w[oc, c] ⋆ x[n, c]        (cross-correlation; every c without a table)
/// per sample:  Y (OC, P) = W (OC, C·KH·KW) · cols (C·KH·KW, P)
/// ```
/// Parameters: `weight` (OC, C, KH, KW), `bias` (OC); default init uniform
/// in ±1/√(C·KH·KW).
///
/// A table is stored as the dense weight with w[oc, c] = 0 for c ∉ table[oc],
/// so a checkpoint loads into PyTorch as a masked `nn.Conv2d`, and only
/// Σ|table[oc]|·KH·KW + OC values are trainable (`trainableParameterCount`;
/// 1,516 for C3). The masked weights stay exactly zero: `backward` zeroes
/// their gradient (so SGD and Adam, with or without weight decay, leave
/// them at 0), and `forward` zeroes them again when a loaded tensor or a
/// generic initializer set any. `initialize(using:)` draws map `oc`'s
/// weights and bias in ±1/√(|table[oc]|·KH·KW): PyTorch's rule with each
/// map's own fan-in.
final class Conv2D: BuiltInLayer {
    let name: String
    /// Input channels (C) and output channels, the number of kernels (OC).
    let inChannels: Int, outChannels: Int
    /// Kernel rows and columns (KH, KW); square here.
    let kernelH: Int, kernelW: Int
    /// The step between windows, and the zeros added on each side.
    let stride: Int, padding: Int
    /// `table[oc]`: the input maps output map `oc` sees; nil: all of them.
    let table: [[Int]]?

    /// LeCun et al. 1998, Table I: C3's 16 maps over S2's 6.
    /// Maps 0–5 see 3 contiguous maps, 6–11 see 4 contiguous maps (mod 6),
    /// 12–14 see 4 non-contiguous ones, 15 sees all six: 60 connections.
    static let lecunC3Table: [[Int]] =
        (0..<6).map { i in (0..<3).map { (i + $0) % 6 } }
        + (0..<6).map { i in (0..<4).map { (i + $0) % 6 } }
        + [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5]]
        + [[0, 1, 2, 3, 4, 5]]

    typealias Configuration = Conv2DConfiguration

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
    private var scratch: [UnsafeMutablePointer<Float>] = []  // per worker: cols (K, c·P), product (OC, c·P), dcols (K, c·P)
    // Backward sums the weight gradient transposed, dWᵀ = cols · dyᵀ, and
    // adds it into dW once at the end: sgemm ran the product faster in
    // that orientation, for both convolutions (docs/PERFORMANCE.md).
    private var weightGradT: UnsafeMutablePointer<Float>?  // (K, OC)
    // The channels-last forward's weights, packed each pass (they change
    // every step), and one row buffer per worker.
    private var packedWeights: UnsafeMutablePointer<Float>?  // (C·KH·KW, OCp)
    private var outputRows: [UnsafeMutablePointer<Float>] = []  // per worker: (OW, OCp)

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

    // Offsets of the masked (oc, c) blocks of KH·KW weights: (oc·C + c)·KH·KW.
    // The table with its rows sorted, as the masked blocks are walked.
    private let sortedTable: [[Int]]?

    /// - Parameters:
    ///   - name: the parameter-name prefix, e.g. `conv1`.
    ///   - inChannels: C, the input's channels.
    ///   - outChannels: OC, the output's channels (one kernel and bias each).
    ///   - kernelSize: square kernel side.
    ///   - stride: step between windows.
    ///   - padding: zeros added on each side.
    ///   - table: `table[oc]` lists the input maps of output map `oc`; one
    ///     entry per output map, each index in 0..<inChannels, no repeats
    ///     (`Network.init` throws when it is not). nil: every map.
    init(_ name: String, inChannels: Int, outChannels: Int, kernelSize: Int,
                stride: Int = 1, padding: Int = 0, table: [[Int]]? = nil) {
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        kernelH = kernelSize
        kernelW = kernelSize
        self.stride = stride
        self.padding = padding
        self.table = table
        sortedTable = table.map(Self.sortedRows)
    }

    /// With a table: 1 at oc·C + c where map oc sees map c, else 0 (the
    /// direct backward pass skips the rest). Made when the parameters are
    /// bound, so only for a layer whose weights exist: a description's
    /// channel counts are checked by then.
    private var connected: [UInt8]?

    /// Calls `body` with the offset, (oc·C + c)·kernel, of each (oc, c)
    /// block of `kernel` weights that `table` does not connect, in order.
    /// No list of them is made: there can be as many as OC·C.
    /// - Parameter table: each row sorted (`sortedRows`).
    @inline(__always)
    static func forEachMaskedBlock(_ table: [[Int]], inChannels C: Int, kernel K: Int, _ body: (Int) -> Void) {
        for (oc, row) in table.enumerated() {
            var next = 0
            for c in 0..<C {
                if next < row.count && row[next] == c {
                    next += 1
                    continue
                }
                body((oc &* C &+ c) &* K)
            }
        }
    }

    /// `table` with each row sorted, as `forEachMaskedBlock` walks it.
    static func sortedRows(_ table: [[Int]]) -> [[Int]] { table.map { $0.sorted() } }

    /// Zeroes the `kernel` weights at each masked block when any is not 0.
    /// Writes only then: replicas read the same weights from other threads,
    /// and reads race with no one.
    static func zeroMaskedIfNeeded(_ w: UnsafeMutablePointer<Float>, sortedTable table: [[Int]], inChannels C: Int, kernel K: Int) {
        var nonzero = false
        forEachMaskedBlock(table, inChannels: C, kernel: K) { offset in
            for i in 0..<K where w[offset &+ i] != 0 { nonzero = true }
        }
        guard nonzero else { return }
        forEachMaskedBlock(table, inChannels: C, kernel: K) { (w + $0).update(repeating: 0, count: K) }
    }

    var configuration: any LayerConfiguration {
        Configuration(name: name, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelH, stride: stride,
                      padding: padding, table: table)
    }

    var kind: String {
        (table == nil ? "Conv2D" : "PartialConv2D") + " \(kernelH)×\(kernelW)" + (stride != 1 ? " s\(stride)" : "")
            + (padding != 0 ? " p\(padding)" : "")
    }

    /// `affine` in the curvature pass (SDLM).
    var curvatureRule: CurvatureRule { .affine }

    var kernelSummary: (size: String, count: Int)? { ("\(kernelH)×\(kernelW)", outChannels) }

    /// Σ_oc (|table[oc]|·KH·KW + 1) with a table; every value without.
    var trainableParameterCount: Int {
        guard let table else { return outChannels * (inChannels * kernelH * kernelW + 1) }
        return table.reduce(0) { $0 + $1.count * kernelH * kernelW + 1 }
    }

    /// What is wrong with `table`, or nil: it needs one row per output map,
    /// each listing distinct input maps.
    static func tableProblem(_ table: [[Int]], inChannels: Int, outChannels: Int) -> String? {
        guard table.count == outChannels else {
            return "the connection table has \(table.count) rows for \(outChannels) output maps"
        }
        for (oc, row) in table.enumerated() {
            guard !row.isEmpty, row.allSatisfy({ (0..<inChannels).contains($0) }), Set(row).count == row.count else {
                return "row \(oc) of the connection table, \(row), must list distinct input maps in 0..<\(inChannels)"
            }
        }
        return nil
    }

    var parameterSpecs: [ParameterSpec] {
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

    func replica() -> any Layer {
        Conv2D(name, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelH, stride: stride, padding: padding, table: table)
    }

    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        if let table, let problem = Self.tableProblem(table, inChannels: inChannels, outChannels: outChannels) {
            throw LeNetError(problem, subject: name)
        }
        guard input.channels == inChannels else {
            throw LeNetError("expects \(inChannels) input channels, got \(input.channels) (input \(input))", subject: name)
        }
        guard stride > 0, padding >= 0, kernelH > 0,
              input.height + 2 * padding >= kernelH, input.width + 2 * padding >= kernelW else {
            throw LeNetError("a \(kernelH)×\(kernelW) kernel (stride \(stride), padding \(padding)) does not fit input \(input)", subject: name)
        }
        let g = geometry(for: input)
        // sgemm takes 32-bit sizes: the patch is its inner dimension.
        guard g.patch <= Int(Int32.max) else {
            throw LeNetError("a patch of \(g.channels)·\(kernelH)·\(kernelW) values is more than sgemm's 2^31 − 1", subject: name)
        }
        geometry = g
        return FeatureShape(channels: outChannels, height: g.outH, width: g.outW)
    }

    /// OC·OH·OW·(C·KH·KW + 1); with a table, only the connections that exist.
    func connections(for input: FeatureShape) -> Int {
        let g = geometry(for: input)
        return trainableParameterCount * g.positions
    }

    /// The bound weight (OC, C, KH, KW), its missing connections made 0 as
    /// `forward` makes them, and the bias (OC).
    var values: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)? {
        guard let weight, let bias else { return nil }
        zeroMaskedIfNeeded(weight)
        return (UnsafePointer(weight), UnsafePointer(bias))
    }

    func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        weight = parameters[0]; bias = parameters[1]
        weightGrad = gradients[0]; biasGrad = gradients[1]
        connected = table.map { table in
            var pairs = [UInt8](repeating: 0, count: outChannels * inChannels)
            for (oc, row) in table.enumerated() where oc < outChannels {
                for c in row where (0..<inChannels).contains(c) { pairs[oc * inChannels + c] = 1 }
            }
            return pairs
        }
    }

    /// The bound weight and bias gradients, for the backward pass through a
    /// pool after this layer (`ConvMaxPoolBackward`).
    var gradients: (weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>)? {
        guard let weightGrad, let biasGrad else { return nil }
        return (weightGrad, biasGrad)
    }

    /// `workers` scratch buffers of `scratch` Floats each, and the transposed weight gradient.
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
        let direct = directBackward(g) ? conv5x5BackwardSizes(g, outChannels: outChannels) : (0, 0)
        return (workers, max((2 * g.patch + outChannels) * chunk * g.positions, direct.0 + direct.1), g.patch * outChannels)
    }

    func workspace(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) -> [WorkspaceBuffer] {
        let g = geometry(for: input)
        let w = workspace(batch: n, geometry: g, workers: workers, backward: backward)
        let channelsLast = channelsLastForward(g)
            ? [WorkspaceBuffer("packed weights", count: g.patch * paddedChannels(outChannels))]
                + Array(repeating: WorkspaceBuffer("output rows", count: g.outW * paddedChannels(outChannels)),
                        count: max(1, min(workers, n)))
            : []
        return Array(repeating: WorkspaceBuffer("im2col scratch", count: w.scratch), count: w.workers)
            + (w.weightGradT > 0 ? [WorkspaceBuffer("weight gradient (transposed)", count: w.weightGradT)] : [])
            + channelsLast
    }

    func bind(workspace: [BoundWorkspaceBuffer]) {
        scratch = workspace.filter { $0.spec.name == "im2col scratch" }.map(\.pointer)
        weightGradT = workspace.first { $0.spec.name == "weight gradient (transposed)" }?.pointer
        packedWeights = workspace.first { $0.spec.name == "packed weights" }?.pointer
        outputRows = workspace.filter { $0.spec.name == "output rows" }.map(\.pointer)
    }

    /// Whether the forward pass runs the channels-last direct kernel
    /// (Kernels/ConvPoolReLU.swift, the one `ConvStep` runs in inference)
    /// instead of im2col + sgemm or the row kernel: 5×5, stride 1, no
    /// padding, an AVX2 CPU, output rows of at least 8 (the kernel's
    /// tiles run along a row; C5's single position stays a product), and
    /// more than one input channel. Measured faster for every such LeNet
    /// layer; with one input channel (C1, 6 maps) the row kernel
    /// (`directKernel`) fills its lanes and was faster, with AVX2 and with
    /// AVX-512 (docs/PERFORMANCE.md).
    /// `direct` set by a test chooses the older paths instead.
    func channelsLastForward(_ g: ConvGeometry) -> Bool {
        direct == nil && conv5x5ChannelsLastFits(g) && g.outW >= 8 && g.channels > 1
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

    /// Whether the backward pass runs the direct AVX-512 kernel
    /// (`conv5x5Backward`) instead of im2col + sgemm: 5×5, stride 1, no
    /// padding, more than one input channel (C1 has its own kernel) and
    /// at least 16 output positions (C5's one is a fully connected layer,
    /// `coversInput`). C3's backward went from 0.450 to 0.228 ms at batch
    /// 36 (docs/PERFORMANCE.md).
    /// `directBackwardChoice` set by a test chooses; nil: this rule.
    func directBackward(_ g: ConvGeometry) -> Bool {
        guard directBackwardFits(g) else { return false }
        return directBackwardChoice ?? (direct == nil && g.channels > 1 && g.positions >= 16)
    }

    /// Whether one window covers the whole input (LeNet-5's C5: 16×5×5 in,
    /// 5×5 kernels): the convolution is then a fully connected layer whose
    /// samples are already their patches, so it runs Linear's passes
    /// (`fullyConnectedForward`, `fullyConnectedBackward`), without im2col
    /// (C5's forward and backward went from 0.216 to 0.079 ms at batch 36;
    /// docs/PERFORMANCE.md).
    static func coversInput(_ g: ConvGeometry) -> Bool {
        g.padding == 0 && g.kernelH == g.height && g.kernelW == g.width
    }

    /// Tests set it to run the direct backward kernel or not; nil: `directBackward` decides.
    var directBackwardChoice: Bool?

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let bias, !scratch.isEmpty else { unready(name) }
        zeroMaskedIfNeeded(weight)
        if channelsLastForward(g), let packed = packedWeights, !outputRows.isEmpty {
            let OC = outChannels, CHW = g.channels * g.height * g.width, out = OC * g.positions
            packChannelsLastPadded(packed, weight, outChannels: OC, patch: g.patch)
            let rows = outputRows, weights = UnsafePointer(packed), b = UnsafePointer(bias)
            parallelForWorkers(n, maxWorkers: rows.count) { worker, samples in
                for s in samples {
                    conv5x5ChannelsLast(y + s * out, x + s * CHW, packed: weights, b, g, outChannels: OC, scratch: rows[worker])
                }
            }
            return
        }
        if Self.coversInput(g) {
            // y (n, OC) = x (n, K) · Wᵀ + b: each sample is its one patch.
            fullyConnectedForward(y, x, weight: weight, bias: bias, batch: n, inputs: g.patch, outputs: outChannels)
            return
        }
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
            let cols = scratch[worker], product = cols + K * c * P
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
    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        denseBackward(dx, dy, x, y, batch: n)
        // The gemm wrote dW for every (oc, c) pair; the missing connections
        // get none. The masked entries were 0 before (zeroGradients and this
        // line), so zeroing them drops exactly this pass's contribution.
        if let weightGrad, table != nil { zeroMasked(weightGrad) }
    }

    private func denseBackward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                               _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry, let weight, let weightGrad, let biasGrad, let work = scratch.first, let dWT = weightGradT else {
            unready(name, "backward")
        }
        let P = g.positions, K = g.patch, OC = outChannels, c = chunk, CHW = g.channels * g.height * g.width
        if dx == nil && directKernel {
            for s in 0..<n {
                let dys = dy + s * OC * P
                for oc in 0..<OC { biasGrad[oc] += sum(dys + oc * P, count: P) }
                conv5x5WeightGradient(weightGrad, dys, x + s * CHW, g, outChannels: OC)
            }
            return
        }
        if Self.coversInput(g) {
            fullyConnectedBackward(dx, dy, x, weight: weight, weightGrad: weightGrad, biasGrad: biasGrad, batch: n,
                                   inputs: K, outputs: OC)
            return
        }
        if directBackward(g) {
            let sizes = conv5x5BackwardSizes(g, outChannels: OC), OCp = sizes.weightGradient / K
            let dWTpadded = work, rest = work + sizes.weightGradient
            dWTpadded.update(repeating: 0, count: sizes.weightGradient)
            connected.withUnsafeBufferPointerOrNil { pairs in
                for s in 0..<n {
                    let dys = dy + s * OC * P
                    for oc in 0..<OC { biasGrad[oc] += sum(dys + oc * P, count: P) }
                    conv5x5Backward(dWTpadded, dx.map { $0 + s * CHW }, dys, x + s * CHW, weight, g, outChannels: OC,
                                    connected: pairs, scratch: rest)
                }
            }
            addTransposed(weightGrad, dWTpadded, rows: OC, columns: K, ld: OCp)
            return
        }
        let cols = work, transposed = cols + K * c * P, dcols = transposed + OC * c * P
        // With a few columns a chunk (C5 at batch 1: one), the product is a
        // rank-1 or rank-few update that costs less than adding the
        // transposed sum back into dW, so it goes into dW directly.
        let intoTransposed = min(n, c) * P >= 16
        if intoTransposed { dWT.update(repeating: 0, count: K * OC) }
        defer {
            if intoTransposed { addTransposed(weightGrad, dWT, rows: OC, columns: K, ld: OC) }
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
            if intoTransposed {
                // dWᵀ (K, OC) += cols (K, m·P) · dyTᵀ (m·P, OC)
                gemm(.none, .transposed, m: K, n: OC, k: mP, cols, dyT, beta: 1, dWT)
            } else {
                // dW (OC, K) += dyT (OC, m·P) · colsᵀ (m·P, K)
                gemm(.none, .transposed, m: OC, n: K, k: mP, dyT, cols, beta: 1, weightGrad)
            }
            guard let dx else { continue }
            // dcols (K, m·P) = Wᵀ (K, OC) · dyT (OC, m·P), folded back into dx
            gemmInColumnBlocks(.transposed, m: K, n: mP, k: OC, weight, dyT, dcols)
            for s in 0..<m { col2im(dx + (first + s) * CHW, dcols + s * P, g, ld: mP) }
        }
    }
}

// MARK: - The connection table

extension Conv2D {
    /// With a table: draws map `oc`'s weights and bias uniformly in
    /// ±1/√(|table[oc]|·KH·KW) and sets the masked weights to 0. The
    /// network calls it after its store's uniform draw (`Network(_:seed:)`).
    func initialize(using generator: inout SeededGenerator) {
        initialize(using: &generator, scheme: .pytorch)
    }

    /// With a table: as `initialize(using:)`, the bound from map `oc`'s
    /// fan-in as `scheme` gives it.
    func initialize(using generator: inout SeededGenerator, scheme: WeightInitialization) {
        guard let table, let weight, let bias, table.count == outChannels else { return }
        let K = kernelH * kernelW
        for oc in 0..<outChannels {
            let bound = scheme.bound(1 / Float(max(1, table[oc].count * K)).squareRoot())
            let row = weight + oc * inChannels * K  // (C, KH, KW)
            row.update(repeating: 0, count: inChannels * K)
            for c in table[oc] where (0..<inChannels).contains(c) {
                for i in 0..<K { row[c * K + i] = generator.uniform(-bound, bound) }
            }
            bias[oc] = generator.uniform(-bound, bound)
        }
    }

    /// The number of (output map, input map) pairs that are connected.
    var connectedPairs: Int { table?.reduce(0) { $0 + $1.count } ?? inChannels * outChannels }

    /// Zeroes the masked weights when any is not 0.
    func zeroMaskedIfNeeded(_ w: UnsafeMutablePointer<Float>) {
        guard let sortedTable else { return }
        Self.zeroMaskedIfNeeded(w, sortedTable: sortedTable, inChannels: inChannels, kernel: kernelH * kernelW)
    }

    private func zeroMasked(_ w: UnsafeMutablePointer<Float>) {
        guard let sortedTable else { return }
        let K = kernelH * kernelW
        Self.forEachMaskedBlock(sortedTable, inChannels: inChannels, kernel: K) { (w + $0).update(repeating: 0, count: K) }
    }

    /// A Conv over its own `weight` and `bias`; a table's missing
    /// connections are the zeros the weight already stores.
    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        try graph.convolution(name, input, weight: [outChannels, inChannels, kernelH, kernelW], stride: stride, padding: padding)
    }
}

/// dW (rows, columns) += dWᵀ's first `rows` columns: the weight gradient
/// summed transposed, dWᵀ (columns, ld).
private func addTransposed(_ dW: UnsafeMutablePointer<Float>, _ dWT: UnsafePointer<Float>, rows: Int, columns: Int, ld: Int) {
    for r in 0..<rows {
        let row = dW + r * columns
        for k in 0..<columns { row[k] += dWT[k * ld + r] }
    }
}

extension Optional where Wrapped == [UInt8] {
    /// `body` with the array's storage, or nil when there is no array.
    func withUnsafeBufferPointerOrNil<R>(_ body: (UnsafePointer<UInt8>?) -> R) -> R {
        guard let array = self else { return body(nil) }
        return array.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}

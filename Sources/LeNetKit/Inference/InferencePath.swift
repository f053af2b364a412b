import Foundation  // memcmp

/// One step of a network's forward-only path (`Network.infer(batch:)`): the
/// layers `layers` run as one, reading the network's activation buffer
/// `layers.lowerBound` and writing buffer `layers.upperBound`; the buffers
/// between are not written.
protocol InferenceStep: AnyObject {
    /// The layers this step runs, as indices into the network's layer list.
    var layers: Range<Int> { get }
    /// What runs them, for timing tables: a fused kernel's name.
    var kind: String { get }
    /// Its scratch for batches of up to `n` samples on up to `workers`
    /// threads: one spec, which the network allocates and its memory
    /// estimate adds up, as a layer's (`Layer.workspace`).
    func workspace(batch n: Int, workers: Int) -> [WorkspaceBuffer]
    /// The buffers of its last spec, allocated.
    func bind(workspace: [BoundWorkspaceBuffer])
    /// Readies the step for a pass (packs weights), once per `infer`, before
    /// the chunks of the batch run through `forward`.
    func prepare()
    /// y (N, output of the last layer) from x (N, input of the first).
    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int)
}

/// A layer on its own: its `forward`, which keeps the caches a backward
/// pass would read (they cost nothing more than writing the output here).
final class LayerStep: InferenceStep {
    let layers: Range<Int>
    private let layer: any Layer

    init(_ layer: any Layer, at i: Int) {
        self.layer = layer
        layers = i..<i + 1
    }

    var kind: String { layer.kind }

    func workspace(batch n: Int, workers: Int) -> [WorkspaceBuffer] { [] }
    func bind(workspace: [BoundWorkspaceBuffer]) {}
    func prepare() {}
    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        layer.forward(y, x, batch: n, training: false)
    }
}

/// A convolution, a 2×2 stride-2 max pool and a ReLU (in either order) as
/// one pass per sample (Kernels/ConvPoolReLU.swift): the convolution's
/// output map never leaves L1, and no pooling argmax or separate ReLU pass
/// is made. The three layers' own forwards are the reference.
///
/// A BatchNorm2d between the convolution and the pool is folded into it:
/// in evaluation mode it is the affine map y = s·z + t per channel (s =
/// γ/√(running var + ε), t = β − running mean·s), so the convolution with
/// weights s·w and bias s·b + t gives its output, to rounding, whatever
/// the sign of s (the pool comes after both).
final class ConvPoolReLUStep: InferenceStep {
    let layers: Range<Int>
    private let conv: (name: String, outChannels: Int)
    private let parameters: WeightAndBias
    private let geometry: ConvGeometry
    /// The folded BatchNorm's γ and β, its running mean and variance, and ε.
    private let batchNorm: (affine: WeightAndBias, mean: ParameterStore.Entry, variance: ParameterStore.Entry,
                            buffers: ParameterStore, epsilon: Float)?
    private var packed: UnsafeMutablePointer<Float>?  // (C·KH·KW, OC)
    private var foldedBias: UnsafeMutablePointer<Float>?  // (OC), with a BatchNorm
    private var rows: [UnsafeMutablePointer<Float>] = []  // per worker: (2, 2·PW, OC)

    /// The convolution first in `match`, then its pool and ReLU (a BatchNorm2d before them when the match has one).
    init?(_ match: FusionMatch, _ conv: Conv2D.Configuration) {
        guard let parameters = WeightAndBias(conv.name, in: match.parameters) else { return nil }
        self.conv = (conv.name, conv.outChannels)
        self.parameters = parameters
        geometry = conv.geometry(for: match.inputs[0])
        layers = match.layers
        if let bn = match.configurations.dropFirst().first as? BatchNorm2D.Configuration {
            guard let affine = WeightAndBias(bn.name, in: match.parameters), let mean = match.buffers["\(bn.name).running_mean"],
                  let variance = match.buffers["\(bn.name).running_var"] else { return nil }
            batchNorm = (affine, mean, variance, match.buffers, bn.eps)
        } else {
            batchNorm = nil
        }
    }

    var kind: String { batchNorm == nil ? "fused conv+pool+ReLU" : "fused conv+BN+pool+ReLU" }

    func workspace(batch n: Int, workers: Int) -> [WorkspaceBuffer] {
        let OC = conv.outChannels
        return [WorkspaceBuffer("packed weights", count: geometry.patch * OC)]
            + (batchNorm == nil ? [] : [WorkspaceBuffer("folded bias", count: OC)])
            + Array(repeating: WorkspaceBuffer("pooled rows", count: convPoolReLURowFloats(geometry, outChannels: OC)),
                    count: pooledRowWorkers(geometry, batch: n, workers: workers))
    }

    func bind(workspace: [BoundWorkspaceBuffer]) {
        packed = workspace.first { $0.spec.name == "packed weights" }?.pointer
        foldedBias = workspace.first { $0.spec.name == "folded bias" }?.pointer
        rows = workspace.filter { $0.spec.name == "pooled rows" }.map(\.pointer)
    }

    // Packed on every pass, so the step never runs stale weights after an
    // optimizer step, a load or a write through `parameters.values`: 1,200
    // floats for conv1, 12,800 for conv2.
    func prepare() {
        guard let packed else { return }
        let OC = conv.outChannels, K = geometry.patch
        packChannelsLast(packed, parameters.values.weight, outChannels: OC, patch: K)
        guard let bn = batchNorm, let foldedBias else { return }
        // packed (K, OC): column oc times s[oc]; the bias s·b + t.
        let (gamma, beta) = bn.affine.values, b = parameters.values.bias
        let mean = bn.buffers.valuePointer(bn.mean), variance = bn.buffers.valuePointer(bn.variance)
        for oc in 0..<OC {
            let s = gamma[oc] / (variance[oc] + bn.epsilon).squareRoot()
            foldedBias[oc] = (b[oc] - mean[oc]) * s + beta[oc]
            for k in 0..<K { packed[k &* OC &+ oc] *= s }
        }
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let packed, !rows.isEmpty else { unready(conv.name) }
        let b = UnsafePointer(foldedBias ?? parameters.values.bias)
        let g = geometry, OC = conv.outChannels, weights = UnsafePointer(packed), rows = rows
        forEachPooledRows(y, x, batch: n, g, outChannels: OC, workers: rows.count) { y, x, pooledRows, worker in
            convPoolReLU(y, x, packed: weights, b, g, outChannels: OC, pooledRows: pooledRows, scratch: rows[worker])
        }
    }
}

/// A convolution, a 2×2 stride-2 max pool and a ReLU (in either order) by
/// Winograd's F(2×2, 5×5) (Kernels/Winograd.swift), where `winogradFits`
/// takes it and the network allows it (`Network.allowsWinograd`). Its
/// results are not the direct step's bits: each is within the bound
/// docs/WINOGRAD.md derives of the convolution computed exactly.
///
/// The weights are transformed when they change: the step keeps a copy of
/// the weights it transformed and compares it on every pass (for conv2,
/// 12,800 floats, about what the direct step's packing reads and writes).
final class WinogradConvPoolReLUStep: InferenceStep {
    let layers: Range<Int>
    private let name: String
    private let outChannels: Int
    private let parameters: WeightAndBias
    private let geometry: ConvGeometry
    private var transformed: UnsafeMutablePointer<Float>?  // (36, C, OC)
    private var source: UnsafeMutablePointer<Float>?  // the weights `transformed` holds, (OC, C, 5, 5)
    private var isTransformed = false
    private var tiles: [UnsafeMutablePointer<Float>] = []  // per worker: `winogradScratchFloats`

    /// The convolution first in `match`, then its pool and ReLU.
    init?(_ match: FusionMatch, _ conv: Conv2D.Configuration) {
        guard let parameters = WeightAndBias(conv.name, in: match.parameters) else { return nil }
        name = conv.name
        outChannels = conv.outChannels
        self.parameters = parameters
        geometry = conv.geometry(for: match.inputs[0])
        layers = match.layers
    }

    var kind: String { "Winograd conv+pool+ReLU" }

    func workspace(batch n: Int, workers: Int) -> [WorkspaceBuffer] {
        [WorkspaceBuffer("Winograd weights", count: winogradWeightFloats(geometry, outChannels: outChannels)),
         WorkspaceBuffer("weights transformed", count: geometry.patch * outChannels)]
            + Array(repeating: WorkspaceBuffer("Winograd tiles", count: winogradScratchFloats(geometry, outChannels: outChannels)),
                    count: pooledRowWorkers(geometry, batch: n, workers: workers))
    }

    func bind(workspace: [BoundWorkspaceBuffer]) {
        transformed = workspace.first { $0.spec.name == "Winograd weights" }?.pointer
        source = workspace.first { $0.spec.name == "weights transformed" }?.pointer
        tiles = workspace.filter { $0.spec.name == "Winograd tiles" }.map(\.pointer)
        isTransformed = false
    }

    func prepare() {
        guard let transformed, let source else { return }
        let w = parameters.values.weight, count = geometry.patch * outChannels
        if isTransformed && memcmp(source, w, count * MemoryLayout<Float>.size) == 0 { return }
        source.update(from: w, count: count)
        winogradWeights(transformed, w, channels: geometry.channels, outChannels: outChannels)
        isTransformed = true
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let transformed, !tiles.isEmpty else { unready(name) }
        let b = UnsafePointer(parameters.values.bias)
        let g = geometry, OC = outChannels, U = UnsafePointer(transformed), tiles = tiles
        forEachPooledRows(y, x, batch: n, g, outChannels: OC, workers: tiles.count) { y, x, pooledRows, worker in
            winogradPoolReLU(y, x, transformed: U, b, g, outChannels: OC, pooledRows: pooledRows, scratch: tiles[worker])
        }
    }
}

/// The workers a conv + pool + ReLU step keeps row scratch for, each that
/// can have work: one per sample, or, for a batch smaller than a sample's
/// pooled rows, one per row (a `WorkerTeam` splits one sample's rows). A
/// thread count beyond that costs nothing.
private func pooledRowWorkers(_ g: ConvGeometry, batch n: Int, workers: Int) -> Int {
    max(1, min(workers, max(n, g.outH / 2)))
}

/// Runs `body(y, x, rows, worker)` of a conv + pool + ReLU step over a
/// batch's pooled rows: y and x the sample's output (OC, PH, PW) and input
/// (C, H, W), `rows` a range of its pooled rows, `worker` whose scratch.
@inline(__always)
private func forEachPooledRows(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int, _ g: ConvGeometry,
                               outChannels OC: Int, workers: Int,
                               _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Range<Int>, Int) -> Void) {
    let CHW = g.channels * g.height * g.width, PH = g.outH / 2, out = OC * PH * (g.outW / 2)
    parallelForRows(samples: n, rowsPerSample: PH, workers: workers) { worker, s, pooledRows in
        body(y + s &* out, x + s &* CHW, pooledRows, worker)
    }
}

/// Runs `body(worker, sample, rows)` over the n·R output rows of a batch
/// (R a sample), cut into one contiguous range per worker and each range
/// into its runs within one sample. Through Dispatch, at most one worker
/// per sample: splitting one sample's rows across threads woken for it
/// measured slower than one thread (batch 1 on 2 threads;
/// docs/PERFORMANCE.md). A `WorkerTeam`, awake between steps, splits one
/// sample's rows across its `workers`.
@inline(__always)
private func parallelForRows(samples n: Int, rowsPerSample R: Int, workers: Int,
                             _ body: (_ worker: Int, _ sample: Int, _ rows: Range<Int>) -> Void) {
    let limit = WorkerTeam.current == nil ? min(workers, n) : workers
    parallelForWorkers(n &* R, maxWorkers: limit) { worker, items in
        var item = items.lowerBound
        while item < items.upperBound {
            let s = item / R, first = item - s &* R, last = min(R, first &+ items.upperBound &- item)
            body(worker, s, first..<last)
            item &+= last &- first
        }
    }
}

/// A 5×5 convolution on its own (LeNet-5's C1 and C3, whose tanh follows),
/// with the vector across output channels (Kernels/ConvPoolReLU.swift):
/// measured faster than C1's row-vector kernel and C3's im2col + sgemm
/// (docs/PERFORMANCE.md). A convolution with a connection table runs as its
/// dense weights, the missing connections 0. The layer's own forward is the reference.
final class ConvStep: InferenceStep {
    let layers: Range<Int>
    private let name: String
    private let parameters: WeightAndBias
    private let geometry: ConvGeometry
    private let outChannels: Int
    // A connection table's missing (oc, c) blocks, zeroed before packing as the layer's forward zeroes them.
    private let sortedTable: [[Int]]?  // a connection table's rows, sorted (`Conv2D.forEachMaskedBlock`)
    private let inChannels: Int
    private var packed: UnsafeMutablePointer<Float>?  // (C·KH·KW, OCp)
    private var rows: [UnsafeMutablePointer<Float>] = []  // per worker: (OW, OCp)

    init?(_ match: FusionMatch, _ conv: Conv2D.Configuration) {
        guard let parameters = WeightAndBias(conv.name, in: match.parameters) else { return nil }
        name = conv.name
        self.parameters = parameters
        geometry = conv.geometry(for: match.inputs[0])
        outChannels = conv.outChannels
        sortedTable = conv.table.map(Conv2D.sortedRows)
        inChannels = conv.inChannels
        layers = match.layers
    }

    var kind: String { "direct conv" }

    // As `ConvPoolReLUStep`'s: one per sample, or per output row when a
    // `WorkerTeam` splits a batch smaller than a sample's rows.
    private func workers(batch n: Int, workers: Int) -> Int { max(1, min(workers, max(n, geometry.outH))) }
    private var rowFloats: Int { geometry.outW * paddedChannels(outChannels) }

    func workspace(batch n: Int, workers: Int) -> [WorkspaceBuffer] {
        [WorkspaceBuffer("packed weights", count: geometry.patch * paddedChannels(outChannels))]
            + Array(repeating: WorkspaceBuffer("output rows", count: rowFloats), count: self.workers(batch: n, workers: workers))
    }

    func bind(workspace: [BoundWorkspaceBuffer]) {
        packed = workspace.first { $0.spec.name == "packed weights" }?.pointer
        rows = workspace.filter { $0.spec.name == "output rows" }.map(\.pointer)
    }

    func prepare() {
        guard let packed else { return }
        let w = parameters.values.weight
        if let sortedTable {
            Conv2D.zeroMaskedIfNeeded(w, sortedTable: sortedTable, inChannels: inChannels, kernel: geometry.kernelH * geometry.kernelW)
        }
        packChannelsLastPadded(packed, w, outChannels: outChannels, patch: geometry.patch)
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let packed, !rows.isEmpty else { unready(name) }
        let b = UnsafePointer(parameters.values.bias)
        let g = geometry, OC = outChannels, CHW = g.channels * g.height * g.width, out = OC * g.positions
        let weights = UnsafePointer(packed), rows = rows
        parallelForRows(samples: n, rowsPerSample: g.outH, workers: rows.count) { worker, s, outputRows in
            conv5x5ChannelsLast(y + s &* out, x + s &* CHW, packed: weights, b, g, outChannels: OC,
                                outputRows: outputRows, scratch: rows[worker])
        }
    }
}

/// A fully connected layer, with the ReLU after it when there is one, as
/// one pass (Kernels/LinearReLU.swift): sgemm packs fc1's 384 KB of weights
/// on every call, which costs more than the product for the few samples of
/// an inference chunk. A convolution whose window is its whole input (LeNet-5's
/// C5: 16×5×5 → 120×1×1) is the same product, its weight (OC, C, KH, KW)
/// already the (OUT, IN) matrix. The layers' own forwards are the reference.
final class LinearReLUStep: InferenceStep {
    let layers: Range<Int>
    let kind: String
    private let parameters: WeightAndBias
    private let inputs: Int, outputs: Int
    private let relu: Bool

    /// The linear layer first in `match`, and the ReLU after it when the match has one.
    init?(_ match: FusionMatch, _ linear: Linear.Configuration) {
        guard let parameters = WeightAndBias(linear.name, in: match.parameters) else { return nil }
        self.parameters = parameters
        inputs = linear.inFeatures
        outputs = linear.outFeatures
        relu = match.configurations.count == 2
        layers = match.layers
        kind = relu ? "fused linear+ReLU" : "direct linear"
    }

    /// A convolution with a 1×1 output: its window covers the input, its
    /// weight (OC, C, KH, KW) already the (OUT, IN) matrix.
    init?(wholeInput match: FusionMatch, _ conv: Conv2D.Configuration) {
        guard let parameters = WeightAndBias(conv.name, in: match.parameters) else { return nil }
        self.parameters = parameters
        inputs = match.inputs[0].count
        outputs = conv.outChannels
        relu = match.configurations.count == 2
        layers = match.layers
        kind = relu ? "conv as linear+ReLU" : "conv as linear"
    }

    func workspace(batch n: Int, workers: Int) -> [WorkspaceBuffer] { [] }
    func bind(workspace: [BoundWorkspaceBuffer]) {}
    func prepare() {}

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        let (w, b) = parameters.values
        let IN = inputs, OUT = outputs, relu = relu
        // Below about 256 K multiply-adds (fc1 on one sample is 96 K) a
        // hand-off to a Dispatch thread costs more than it saves; to a
        // `WorkerTeam`'s, below about 32 K.
        let team = WorkerTeam.current
        let smallest = team == nil ? 1 << 18 : 1 << 15
        let workers = n &* IN &* OUT < smallest ? 1 : team?.threads ?? ThreadBudget.current
        if n >= 4 * workers {
            parallelForWorkers(n, maxWorkers: workers) { _, samples in
                linearReLU(y + samples.lowerBound &* OUT, ldy: OUT, x + samples.lowerBound &* IN, ldx: IN, w, b,
                           batch: samples.count, inputs: IN, outputs: OUT, relu: relu)
            }
        } else {
            // Few samples: the outputs are split, in threes (the kernel's tile).
            parallelForWorkers((OUT + 2) / 3, maxWorkers: workers) { _, tiles in
                let o = tiles.lowerBound * 3, count = min(OUT, tiles.upperBound * 3) - o
                linearReLU(y + o, ldy: OUT, x, ldx: IN, w + o &* IN, b + o, batch: n, inputs: IN, outputs: count, relu: relu)
            }
        }
    }
}

/// The fuse rules of the forward-only path, tried in order at each layer.
/// Where the CPU has AVX2/FMA (and `LENETKIT_KERNELS` is not `portable`):
/// - a convolution followed by a 2×2, stride-2 max pool and a ReLU, in
///   either order (max and ReLU commute), becomes a `ConvPoolReLUStep` when
///   the fused kernel takes it (`convPoolReLUFits`: 5×5, stride 1, no
///   padding, output channels a multiple of 8) and it has no connection table;
/// - a linear layer, with the ReLU after it if there is one, a
///   `LinearReLUStep`, and so does a convolution whose window is its whole
///   input (a 1×1 output) without a table;
/// - any other 5×5 stride-1 unpadded convolution, a table's included, a `ConvStep`.
/// Every other layer is a step of its own (`LayerStep`, evaluation mode).
/// Training never uses this: its forward keeps every layer's output for the
/// backward pass.
enum InferenceFusion {
    static let rules: [FusionRule<any InferenceStep>] = {
        let pooled = LayerPattern.conv { c, g in c.table == nil && convPoolReLUFits(g, outChannels: c.outChannels) }
        let wholeInput = LayerPattern.conv { c, g in c.table == nil && g.stride == 1 && g.padding == 0 && g.outH == 1 && g.outW == 1 }
        let avx2: @Sendable () -> Bool = { linearReLUFits }
        return [
            FusionRule("conv + max pool + ReLU", [pooled, .maxPool2x2, .relu]) { m in m.convolution.flatMap { ConvPoolReLUStep(m, $0) } },
            FusionRule("conv + ReLU + max pool", [pooled, .relu, .maxPool2x2]) { m in m.convolution.flatMap { ConvPoolReLUStep(m, $0) } },
            FusionRule("conv + BatchNorm + max pool + ReLU", [pooled, .batchNorm, .maxPool2x2, .relu]) { m in
                m.convolution.flatMap { ConvPoolReLUStep(m, $0) }
            },
            FusionRule("conv + BatchNorm + ReLU + max pool", [pooled, .batchNorm, .relu, .maxPool2x2]) { m in
                m.convolution.flatMap { ConvPoolReLUStep(m, $0) }
            },
            FusionRule("linear + ReLU", [.linear, .relu], available: avx2) { m in m.linear.flatMap { LinearReLUStep(m, $0) } },
            FusionRule("linear", [.linear], available: avx2) { m in m.linear.flatMap { LinearReLUStep(m, $0) } },
            FusionRule("whole-input conv + ReLU", [wholeInput, .relu], available: avx2) { m in m.convolution.flatMap { LinearReLUStep(wholeInput: m, $0) } },
            FusionRule("whole-input conv", [wholeInput], available: avx2) { m in m.convolution.flatMap { LinearReLUStep(wholeInput: m, $0) } },
            FusionRule("5×5 conv", [.conv { _, g in conv5x5ChannelsLastFits(g) }]) { m in m.convolution.flatMap { ConvStep(m, $0) } },
        ]
    }()

    /// Tried before `rules` when the network allows Winograd's kernels
    /// (`Network.allowsWinograd`): a convolution that `winogradFits`,
    /// without a connection table, followed by a 2×2, stride-2 max pool and
    /// a ReLU in either order, becomes a `WinogradConvPoolReLUStep`.
    static let winogradRules: [FusionRule<any InferenceStep>] = {
        let winograd = LayerPattern.conv { c, g in c.table == nil && winogradFits(g, outChannels: c.outChannels) }
        return [
            FusionRule("Winograd conv + max pool + ReLU", [winograd, .maxPool2x2, .relu]) { m in
                m.convolution.flatMap { WinogradConvPoolReLUStep(m, $0) }
            },
            FusionRule("Winograd conv + ReLU + max pool", [winograd, .relu, .maxPool2x2]) { m in
                m.convolution.flatMap { WinogradConvPoolReLUStep(m, $0) }
            },
        ]
    }()

    static func steps(network: Network) -> [any InferenceStep] {
        fuse((network.allowsWinograd ? winogradRules : []) + rules, description: network.networkDescription,
             shapes: network.shapes, parameters: network.parameters, buffers: network.buffers) { i in
            LayerStep(network.layers[i], at: i)
        }
    }
}

// The backward pass, step by step (`Network.backward`): each layer's own
// `backward`, except where a fused step runs several layers as one. Like the
// forward-only path's `InferenceFusion`, the fuse pass is explicit and in one
// place (`BackwardFusion`), and each fused step's reference is the layers'
// own backward passes, run one after the other (`Network.fusesPooling = false`).

/// One step of a network's backward pass: the layers `layers`, from the
/// gradient of the last one's output to the gradient of the first one's
/// input, adding into their parameter gradients.
protocol BackwardStep: AnyObject {
    /// The layers this step runs, as indices into the network's layer list.
    var layers: Range<Int> { get }
    /// Its own scratch (the same for any batch size; the layers have
    /// theirs): one spec, which the network allocates and its memory
    /// estimate adds up, as a layer's.
    var workspace: [WorkspaceBuffer] { get }
    /// The buffers of its spec, allocated.
    func bind(workspace: [BoundWorkspaceBuffer])
    /// dx (N, input of the first layer), or nil when no one reads it, from
    /// dy (N, output of the last layer); `activations[i]` is the input of
    /// layer i in the last forward pass.
    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>, activations: [BatchBuffer], batch n: Int)
}

/// A layer's own backward pass.
final class LayerBackward: BackwardStep {
    let layers: Range<Int>
    private let layer: any Layer

    init(_ layer: any Layer, at i: Int) {
        self.layer = layer
        layers = i..<i + 1
    }

    var workspace: [WorkspaceBuffer] { [] }
    func bind(workspace: [BoundWorkspaceBuffer]) {}
    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>, activations: [BatchBuffer], batch n: Int) {
        let i = layers.lowerBound
        layer.backward(dx, dy, activations[i].pointer, activations[i + 1].pointer, batch: n)
    }
}

/// The backward pass of a convolution (stride 1, no padding) and the 2×2,
/// stride-2 max pool after it, in one, from the pool's output gradient:
/// the same gradients as the pool's `backward` followed by the
/// convolution's, without the dense gradient between them.
///
/// Each pooling window passes its gradient to one output position, its
/// maximum (found again from `y`, ties to the first as in PyTorch), so
/// three positions in four get none, and a ReLU behind the pool zeroes
/// some of the rest (docs/PERFORMANCE.md). Instead of gemms over those
/// zeros, the weight gradient sums the chosen input patches and the input
/// gradient sums the kernels that chose each position (`weightedRowSum`),
/// skipping zeros. Sums run in another order than the gemms', so results
/// agree to rounding; a gradient of exactly 0 is skipped even where the
/// dense product would have met an infinite input (0·∞).
///
/// Runs on one thread, like the layers' `backward`. Measured (CIFAR LeNet,
/// batch 36): docs/PERFORMANCE.md.
final class ConvMaxPoolBackward: BackwardStep {
    let layers: Range<Int>
    private let conv: (name: String, outChannels: Int)
    private let parameters: WeightAndBias
    private let geometry: ConvGeometry
    // Rows padded to ld = K rounded up to 8.
    private var floats: UnsafeMutablePointer<Float>?  // rows (P, ld), drows (P, ld), W (OC, ld), dW (OC, ld), weights (L)
    private var indices: UnsafeMutablePointer<Int32>?  // routes (OC, PP), row indices (L), used (P)

    /// The convolution first in `match`, the pool after it (`BackwardFusion.fits`).
    init?(_ match: FusionMatch, _ conv: Conv2D.Configuration) {
        guard let parameters = WeightAndBias(conv.name, in: match.parameters) else { return nil }
        self.conv = (conv.name, conv.outChannels)
        self.parameters = parameters
        geometry = conv.geometry(for: match.inputs[0])
        layers = match.layers
    }

    private var layout: (ld: Int, pooled: Int, list: Int, floats: Int, indices: Int) {
        let g = geometry, ld = (g.patch + 7) / 8 * 8, P = g.positions, OC = conv.outChannels
        let pooled = (g.outH / 2) * (g.outW / 2), list = max(pooled, 4 * OC)
        return (ld, pooled, list, 2 * P * ld + 2 * OC * ld + list, OC * pooled + list + P + 4)
    }

    /// The rows as Floats, the routes as 32-bit indices in Float-sized slots.
    var workspace: [WorkspaceBuffer] {
        [WorkspaceBuffer("pooled-backward rows", count: layout.floats), WorkspaceBuffer("pooled-backward routes", count: layout.indices)]
    }

    func bind(workspace: [BoundWorkspaceBuffer]) {
        floats = workspace.first { $0.spec.name == "pooled-backward rows" }?.pointer
        indices = workspace.first { $0.spec.name == "pooled-backward routes" }.map {
            UnsafeMutableRawPointer($0.pointer).bindMemory(to: Int32.self, capacity: $0.spec.count)
        }
    }

    /// - Parameters:
    ///   - dx: the convolution's input gradient, (N, C, H, W), or nil.
    ///   - dyPooled: the pool's output gradient, (N, OC, OH/2, OW/2).
    ///   - activations: `activations[i]` the convolution's input x (N, C, H, W),
    ///     `activations[i + 1]` its output y (N, OC, OH, OW).
    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dyPooled: UnsafePointer<Float>, activations: [BatchBuffer], batch n: Int) {
        let p = layout
        guard let (weightGrad, biasGrad) = parameters.gradients, let floats, let indices else { unready(conv.name, "backward") }
        let weight = UnsafePointer(parameters.values.weight)
        let g = geometry, x = UnsafePointer(activations[layers.lowerBound].pointer)
        let y = UnsafePointer(activations[layers.lowerBound + 1].pointer)
        let P = g.positions, K = g.patch, OC = conv.outChannels, CHW = g.channels * g.height * g.width
        let OW = g.outW, PH = g.outH / 2, PW = g.outW / 2, PP = p.pooled, ld = p.ld
        let rows = floats  // (P, ld): the input patches
        let drows = rows + P * ld  // (P, ld): the input gradient's patches
        let paddedW = drows + P * ld  // (OC, ld)
        let dW = paddedW + OC * ld  // (OC, ld)
        let listWeights = dW + OC * ld  // (L)
        let routes = indices  // (OC, PP)
        let listRows = routes + OC * PP  // (L)
        let used = listRows + p.list  // (P)
        let cornerCounts = used + P  // (4)

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
                let count = compactNonzero(listRows, listWeights, keys: routes + oc * PP, values: gs + oc * PP, count: PP)
                weightedRowSum(dW + oc * ld, accumulate: true, rows, ld: ld, width: ld,
                               rows: listRows, weights: listWeights, count: count)
            }
            guard let dx else { continue }
            // drows[q] = Σ g · W[oc] over the kernels whose window chose q,
            // for the four positions q of each window: a list per corner,
            // OC apart, the kernels in order.
            used.update(repeating: 0, count: P)
            for w in 0..<PP {
                let start = (w / PW) * 2 * OW + (w % PW) * 2
                cornerLists(listRows, listWeights, counts: cornerCounts, routes: routes + w, values: gs + w,
                            kernels: OC, stride: PP, start: start, rowLength: OW)
                for corner in 0..<4 where cornerCounts[corner] > 0 {
                    let q = start + (corner >= 2 ? OW : 0) + corner % 2
                    used[q] = 1
                    weightedRowSum(drows + q * ld, accumulate: false, paddedW, ld: ld, width: ld,
                                   rows: listRows + corner * OC, weights: listWeights + corner * OC,
                                   count: Int(cornerCounts[corner]))
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

/// The fuse rule of the backward path: a convolution without a connection
/// table, with stride 1, no padding and an output of at least 2×2, followed
/// by a 2×2, stride-2 max pool, becomes a `ConvMaxPoolBackward`; every other
/// layer is a `LayerBackward`. With `fusing` false every layer is (the
/// reference path). The forward pass is not fused: it writes every layer's
/// output, which these steps read.
enum BackwardFusion {
    static let rules: [FusionRule<any BackwardStep>] = [
        FusionRule("conv + max pool (backward)", [.conv { c, g in c.table == nil && fits(g) }, .maxPool2x2]) { m in
            m.convolution.flatMap { ConvMaxPoolBackward(m, $0) }
        },
    ]

    static func steps(network: Network, fusing: Bool = true) -> [any BackwardStep] {
        fuse(fusing ? rules : [], description: network.networkDescription, shapes: network.shapes,
             parameters: network.parameters, buffers: network.buffers) { i in LayerBackward(network.layers[i], at: i) }
    }

    /// Whether `ConvMaxPoolBackward` takes a convolution of this geometry.
    static func fits(_ g: ConvGeometry) -> Bool { g.stride == 1 && g.padding == 0 && g.outH >= 2 && g.outW >= 2 }
}

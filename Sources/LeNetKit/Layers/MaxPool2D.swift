/// PyTorch's `MaxPool2d` with a square `kernel_size` and no padding;
/// `stride` defaults to `kernel_size`.
public struct MaxPool2DConfiguration: LayerConfiguration, KeyedLayerConfiguration, Equatable {
    public var name: String
    /// The side of the square window, and the step between windows.
    public var kernelSize: Int, stride: Int

    /// PyTorch's `nn.MaxPool2d(kernel_size, stride)`; `stride` nil is `kernel_size`.
    public init(name: String, kernelSize: Int = 2, stride: Int? = nil) {
        self.name = name
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, kernelSize = "kernel_size", stride }

    init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name), kernelSize: try c.integer(.kernelSize),
                  stride: try c.integerIfPresent(.stride))
    }

    public var type: String { "MaxPool2d" }

    func validate() throws {
        try check(kernelSize, .kernelSize, in: 1...4096)
        try check(stride, .stride, in: 1...4096)
    }

    public func makeLayer() throws -> any Layer {
        try validate()
        return MaxPool2D(name, kernelSize: kernelSize, stride: stride)
    }
}

/// Max pooling, PyTorch's `nn.MaxPool2d(kernel, stride)` with no padding.
/// Backward routes each window's gradient to its argmax: for 2×2 windows
/// with stride 2 it finds it again from the input, for other windows
/// forward caches it. Ties go to the first maximum in scan order, as in
/// PyTorch.
final class MaxPool2D: BuiltInLayer {
    let name: String
    /// The window's side and the step between windows.
    let kernelSize: Int, stride: Int
    private var geometry: ConvGeometry?
    private var argmax: UnsafeMutablePointer<Int32>?  // (N, C, OH, OW): index into the input plane

    /// - Parameters:
    ///   - name: the layer's name in summaries (pooling has no parameters).
    ///   - kernelSize: the side of the square window.
    ///   - stride: the step between windows; `kernelSize` (non-overlapping) when nil.
    init(_ name: String = "pool", kernelSize: Int = 2, stride: Int? = nil) {
        self.name = name
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }

    var kind: String { "MaxPool2D \(kernelSize)×\(kernelSize)" + (stride != kernelSize ? " s\(stride)" : "") }

    /// `piecewiseLinear` in the curvature pass (SDLM).
    var curvatureRule: CurvatureRule { .piecewiseLinear }

    typealias Configuration = MaxPool2DConfiguration

    var configuration: any LayerConfiguration { Configuration(name: name, kernelSize: kernelSize, stride: stride) }

    var kernelSummary: (size: String, count: Int)? { ("\(kernelSize)×\(kernelSize)", 0) }

    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        try graph.requireImage(name)
        return graph.node("MaxPool", [input], output: name, attributes: [
            .ints("kernel_shape", [kernelSize, kernelSize]), .ints("strides", [stride, stride]),
        ])
    }

    func replica() -> any Layer { MaxPool2D(name, kernelSize: kernelSize, stride: stride) }

    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        guard kernelSize > 0, stride > 0, input.height >= kernelSize, input.width >= kernelSize else {
            throw LeNetError("a \(kernelSize)×\(kernelSize) window does not fit input \(input)", subject: name)
        }
        let g = ConvGeometry(channels: input.channels, height: input.height, width: input.width,
                             kernelH: kernelSize, kernelW: kernelSize, stride: stride)
        geometry = g
        return FeatureShape(channels: input.channels, height: g.outH, width: g.outW)
    }

    func connections(for input: FeatureShape) -> Int {
        guard let g = geometry else { return 0 }
        return g.channels * g.positions * kernelSize * kernelSize
    }

    /// 2×2 windows with stride 2 (LeNet's) keep no argmax: forward computes
    /// only the maxima (all that evaluation needs), and backward finds each
    /// window's argmax again from the input.
    var isPairwise: Bool { kernelSize == 2 && stride == 2 }

    /// The argmax of every window, as 32-bit indices in Float-sized slots
    /// (none for 2×2 stride-2 windows).
    func workspace(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) -> [WorkspaceBuffer] {
        guard let g = geometry, !isPairwise else { return [] }
        return [WorkspaceBuffer("argmax", count: n * g.channels * g.positions)]
    }

    func bind(workspace: [BoundWorkspaceBuffer]) {
        argmax = workspace.first.map { UnsafeMutableRawPointer($0.pointer).bindMemory(to: Int32.self, capacity: $0.spec.count) }
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry else { unready(name) }
        let H = g.height, W = g.width, OH = g.outH, OW = g.outW, k = kernelSize, stride = stride
        if isPairwise {
            parallelFor(n * g.channels, minimum: 64) { planes in
                for plane in planes { maxPool2x2(y + plane &* OH &* OW, x + plane &* H &* W, W: W, OH: OH, OW: OW) }
            }
            return
        }
        guard let arg = argmax else { unready(name) }
        parallelFor(n * g.channels, minimum: 64) { planes in
            for plane in planes {
                let xp = x + plane * H * W
                let yp = y + plane * OH * OW
                let ap = arg + plane * OH * OW
                for i in 0..<OH {
                    for j in 0..<OW {
                        var at = (i * stride) * W + j * stride
                        var best = xp[at]
                        for di in 0..<k {
                            let row = (i * stride + di) * W + j * stride
                            for dj in 0..<k where xp[row + dj] > best {
                                best = xp[row + dj]
                                at = row + dj
                            }
                        }
                        yp[i * OW + j] = best
                        ap[i * OW + j] = Int32(at)
                    }
                }
            }
        }
    }

    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let dx else { return }  // the network's input: no gradient asked for
        guard let g = geometry else { unready(name) }
        let HW = g.height * g.width, P = g.positions
        if isPairwise {
            let H = g.height, W = g.width, OH = g.outH, OW = g.outW
            parallelFor(n * g.channels, minimum: 64) { planes in
                for plane in planes {
                    let dxp = dx + plane &* HW
                    maxPool2x2Backward(dxp, dy + plane &* P, x + plane &* HW, W: W, OH: OH, OW: OW)
                    // An odd last row is in no window.
                    (dxp + 2 &* OH &* W).update(repeating: 0, count: (H &- 2 &* OH) &* W)
                }
            }
            return
        }
        dx.update(repeating: 0, count: n * g.channels * HW)  // pooling windows may skip inputs
        guard let arg = argmax else { unready(name) }
        parallelFor(n * g.channels, minimum: 64) { planes in
            for plane in planes {
                let dxp = dx + plane * HW
                let ap = arg + plane &* P, gp = dy + plane &* P
                for p in 0..<P { dxp[Int(ap[p])] += gp[p] }
            }
        }
    }
}

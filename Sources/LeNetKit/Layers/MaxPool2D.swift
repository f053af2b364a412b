/// Max pooling, PyTorch's `nn.MaxPool2d(kernel, stride)` with no padding.
/// Forward caches the argmax of every window; backward routes the gradient
/// to it. Ties go to the first maximum in scan order, as in PyTorch.
public final class MaxPool2D: Layer {
    public let name: String
    public let kernelSize: Int, stride: Int
    private var geometry: ConvGeometry?
    private var argmax = IndexBuffer(count: 0)  // (N, C, OH, OW): index into the input plane

    public init(_ name: String = "pool", kernelSize: Int = 2, stride: Int? = nil) {
        self.name = name
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }

    public var kind: String { "MaxPool2D \(kernelSize)×\(kernelSize)" + (stride != kernelSize ? " s\(stride)" : "") }

    public func outputShape(for input: FeatureShape) throws -> FeatureShape {
        guard kernelSize > 0, stride > 0, input.height >= kernelSize, input.width >= kernelSize else {
            throw LeNetError("a \(kernelSize)×\(kernelSize) window does not fit input \(input)", subject: name)
        }
        let g = ConvGeometry(channels: input.channels, height: input.height, width: input.width,
                             kernelH: kernelSize, kernelW: kernelSize, stride: stride)
        geometry = g
        return FeatureShape(channels: input.channels, height: g.outH, width: g.outW)
    }

    public func connections(for input: FeatureShape) -> Int {
        guard let g = geometry else { return 0 }
        return g.channels * g.positions * kernelSize * kernelSize
    }

    public func reserve(batch n: Int, input: FeatureShape) {
        guard let g = geometry else { return }
        let needed = n * g.channels * g.positions
        if argmax.count < needed { argmax = IndexBuffer(count: needed) }
    }

    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let g = geometry else { return }
        let H = g.height, W = g.width, OH = g.outH, OW = g.outW, k = kernelSize
        let arg = argmax.pointer
            for plane in 0..<(n * g.channels) {
                let xp = x + plane * H * W
                let yp = y + plane * OH * OW
                let ap = arg + plane * OH * OW
                for i in 0..<OH {
                    for j in 0..<OW {
                        var best = -Float.infinity
                        var where_ = (i * stride) * W + j * stride
                        for di in 0..<k {
                            let row = (i * stride + di) * W + j * stride
                            for dj in 0..<k {
                                let v = xp[row + dj]
                                if v > best || v.isNaN { best = v; where_ = row + dj }
                            }
                        }
                        yp[i * OW + j] = xp[where_]
                        ap[i * OW + j] = Int32(where_)
                    }
                }
            }
    }

    public func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let dx, let g = geometry else { return }
        let HW = g.height * g.width, P = g.positions
        dx.update(repeating: 0, count: n * g.channels * HW)
        let arg = argmax.pointer
        for plane in 0..<(n * g.channels) {
            let dxp = dx + plane * HW
            for p in 0..<P { dxp[Int(arg[plane * P + p])] += dy[plane * P + p] }
        }
    }
}

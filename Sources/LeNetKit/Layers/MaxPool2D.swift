/// Max pooling, PyTorch's `nn.MaxPool2d(kernel, stride)` with no padding.
/// Forward caches the argmax of every window; backward routes the gradient
/// to it. Ties go to the first maximum in scan order, as in PyTorch.
public final class MaxPool2D: Layer {
    public let name: String
    /// The window's side and the step between windows.
    public let kernelSize: Int, stride: Int
    private var geometry: ConvGeometry?
    private var argmax = IndexBuffer(count: 0)  // (N, C, OH, OW): index into the input plane

    /// - Parameters:
    ///   - name: the layer's name in summaries (pooling has no parameters).
    ///   - kernelSize: the side of the square window.
    ///   - stride: the step between windows; `kernelSize` (non-overlapping) when nil.
    public init(_ name: String = "pool", kernelSize: Int = 2, stride: Int? = nil) {
        self.name = name
        self.kernelSize = kernelSize
        self.stride = stride ?? kernelSize
    }

    public var kind: String { "MaxPool2D \(kernelSize)×\(kernelSize)" + (stride != kernelSize ? " s\(stride)" : "") }

    public func replica() -> any Layer { MaxPool2D(name, kernelSize: kernelSize, stride: stride) }

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
        let H = g.height, W = g.width, OH = g.outH, OW = g.outW, k = kernelSize, stride = stride
        let arg = argmax.pointer
        let fast = k == 2 && stride == 2
        parallelFor(n * g.channels, minimum: 64) { planes in
            for plane in planes {
                let xp = x + plane * H * W
                let yp = y + plane * OH * OW
                let ap = arg + plane * OH * OW
                if fast {
                    maxPool2x2(yp, ap, xp, H: H, W: W, OH: OH, OW: OW)
                    continue
                }
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

    public func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let dx, let g = geometry else { return }
        let HW = g.height * g.width, P = g.positions
        dx.update(repeating: 0, count: n * g.channels * HW)  // pooling windows may skip inputs
        let arg = argmax.pointer
        parallelFor(n * g.channels, minimum: 64) { planes in
            for plane in planes {
                let dxp = dx + plane * HW
                let ap = arg + plane &* P, gp = dy + plane &* P
                for p in 0..<P { dxp[Int(ap[p])] += gp[p] }
            }
        }
    }
}

/// One plane of 2×2, stride-2 max pooling with selects instead of branches
/// (the comparisons are data-dependent and would mispredict), in wrapping
/// 32-bit index arithmetic: checked arithmetic and conversions put a branch
/// on every window and took 8% of a training step. Ties go to the first
/// maximum in scan order.
/// - Parameters:
///   - y: (OH, OW)
///   - arg: (OH, OW), the index of each window's maximum in the plane
///   - x: (H, W)
@inline(__always)
func maxPool2x2(_ y: UnsafeMutablePointer<Float>, _ arg: UnsafeMutablePointer<Int32>, _ x: UnsafePointer<Float>,
                H: Int, W: Int, OH: Int, OW: Int) {
    let w = Int32(truncatingIfNeeded: W)
    for i in 0..<OH {
        let r0 = x + 2 &* i &* W, r1 = r0 + W, out = y + i &* OW, at = arg + i &* OW
        var col = Int32(truncatingIfNeeded: 2 &* i &* W)
        for j in 0..<OW {
            let a = r0[2 &* j], b = r0[2 &* j &+ 1], c = r1[2 &* j], d = r1[2 &* j &+ 1]
            let top = b > a ? b : a
            let topAt = b > a ? col &+ 1 : col
            let bottom = d > c ? d : c
            let bottomAt = d > c ? col &+ 1 &+ w : col &+ w
            out[j] = bottom > top ? bottom : top
            at[j] = bottom > top ? bottomAt : topAt
            col &+= 2
        }
    }
}

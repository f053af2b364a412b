import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// The direct 5×5 kernels (Kernels/DirectConvolution.swift) against their
/// definition in double, and Conv2D's direct path against its im2col +
/// sgemm path, on output rows of every vector tail (OW = 5, 8, 16, 28, 32)
/// and odd channel counts (the last output channel alone).
struct DirectConvolutionTests {
    let shapes: [(C: Int, H: Int, W: Int, OC: Int)] = [(1, 32, 32, 6), (3, 32, 32, 5), (2, 9, 9, 3), (1, 12, 12, 1),
                                                        (2, 20, 20, 4), (1, 36, 36, 2), (6, 14, 14, 16)]

    @Test(.enabled(if: CPUFeatures.avx2FMA, "the direct kernels need AVX2 and FMA"))
    func testKernelsMatchTheDefinition() throws {
        for s in shapes {
            let g = ConvGeometry(channels: s.C, height: s.H, width: s.W, kernelH: 5, kernelW: 5, stride: 1)
            #expect(directConvolutionFits(g))
            let x = FixedValues.values(s.C * s.H * s.W, salt: 11, bound: 1)
            let w = FixedValues.values(s.OC * s.C * 25, salt: 12, bound: 0.2)
            let b = FixedValues.values(s.OC, salt: 13, bound: 0.2)
            let out = s.OC * g.positions
            var y = [Float](repeating: .nan, count: out), reference = y
            conv5x5(&y, x, w, b, g, outChannels: s.OC)
            conv5x5Naive(&reference, x, w, b, g, outChannels: s.OC)
            // Each output sums C·25 products and the bias, each |w·x| ≤ 0.2.
            let K = s.C * 25 + 1
            assertWithin(y, reference, "forward \(s)", bound: ErrorBound.reduction(K, magnitude: Float(K) * 0.2), "ε·K·Σ|w·x|")
            let dy = FixedValues.values(out, salt: 14, bound: 1)
            var dw = [Float](repeating: 0.5, count: w.count), dwReference = dw
            conv5x5WeightGradient(&dw, dy, x, g, outChannels: s.OC)
            conv5x5WeightGradientNaive(&dwReference, dy, x, g, outChannels: s.OC)
            // Each sums OH·OW products of magnitude ≤ 1 (plus the 0.5 it adds to), in 8 lanes then across.
            let P = g.positions
            assertWithin(dw, dwReference, "weight gradient \(s)", bound: ErrorBound.reduction(P + 8, magnitude: Float(P) + 0.5),
                         "ε·(P + 8)·Σ|dy·x|")
        }
    }

    /// The layer picks the direct kernels for one input channel, and both of
    /// its paths agree within the sums' bounds (sgemm's order is another).
    @Test(.enabled(if: CPUFeatures.avx2FMA, "the direct kernels need AVX2 and FMA"))
    func testConv2DDirectAndGemmPathsAgree() throws {
        for s in shapes {
            let shape = FeatureShape(channels: s.C, height: s.H, width: s.W)
            let net = try Network(inputShape: shape, layers: [Conv2D("c", inChannels: s.C, outChannels: s.OC, kernelSize: 5)])
            guard let conv = net.layers[0] as? Conv2D else { Issue.record("not a Conv2D"); return }
            try FixedValues.fill(net.parameters)
            let n = 3
            try net.reserve(batch: n)
            #expect(conv.directKernel == (s.C == 1), "\(s)")
            let x = FixedValues.values(n * shape.count, salt: 21, bound: 1)
            let out = n * net.outputShape.count
            let dy = FixedValues.values(out, salt: 22, bound: 1)
            var results: [(y: [Float], grad: [Float])] = []
            for direct in [true, false] {
                conv.direct = direct
                var y = [Float](repeating: .nan, count: out)
                conv.forward(&y, x, batch: n)
                net.parameters.zeroGradients()
                conv.backward(nil, dy, x, y, batch: n)
                results.append((y, Array(net.parameters.gradients)))
            }
            let K = s.C * 25 + 1, bound = 1 / Float(K).squareRoot()  // FixedValues.fill's bound
            assertWithin(results[0].y, results[1].y, "forward \(s)", bound: 2 * ErrorBound.reduction(K, magnitude: Float(K) * bound),
                         "2·ε·K·Σ|w·x| (two orders)")
            let P = (s.H - 4) * (s.W - 4)
            assertWithin(results[0].grad, results[1].grad, "gradients \(s)", bound: 2 * ErrorBound.reduction(n * P + 8, magnitude: Float(n * P)),
                         "2·ε·(n·P + 8)·Σ|dy·x|")
        }
    }
}

import Foundation
import Testing
import CKernels
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
            if lenet_has_avx512f() != 0 {
                // Each output's chain is the AVX2 kernel's: the same bits.
                var avx2 = y, avx512 = y
                lenet_conv5x5_avx2(&avx2, x, w, b, g.channels, g.height, g.width, s.OC)
                lenet_conv5x5_avx512(&avx512, x, w, b, g.channels, g.height, g.width, s.OC)
                #expect(avx512.map(\.bitPattern) == avx2.map(\.bitPattern), "AVX-512 against AVX2, \(s)")
            }
            // Each output sums C·25 products and the bias, each |w·x| ≤ 0.2.
            let K = s.C * 25 + 1
            assertWithin(y, reference, "forward \(s)", bound: ErrorBound.reduction(K, magnitude: Float(K) * 0.2), "ε·K·Σ|w·x|")
            let dy = FixedValues.values(out, salt: 14, bound: 1)
            var dw = [Float](repeating: 0.5, count: w.count), dwReference = dw
            conv5x5WeightGradient(&dw, dy, x, g, outChannels: s.OC)
            conv5x5WeightGradientNaive(&dwReference, dy, x, g, outChannels: s.OC)
            // Each sums OH·OW products of magnitude ≤ 1 (plus the 0.5 it adds to), in 8 lanes then across.
            let P = g.positions
            assertWithin(dw, dwReference, "weight gradient \(s)", bound: ErrorBound.reduction(P + 16, magnitude: Float(P) + 0.5),
                         "ε·(P + 16)·Σ|dy·x|")
            if lenet_has_avx512f() != 0 && CPUFeatures.hardwareAVX2FMA {
                // Both widths, whichever the path chose: chains of P/8 or P/16 and a tree over the lanes.
                for (name, kernel) in [("avx2", lenet_conv5x5_weight_gradient_avx2), ("avx512", lenet_conv5x5_weight_gradient_avx512)] {
                    var each = [Float](repeating: 0.5, count: w.count)
                    kernel(&each, dy, x, g.channels, g.height, g.width, s.OC)
                    assertWithin(each, dwReference, "\(name) weight gradient \(s)",
                                 bound: ErrorBound.reduction(P + 16, magnitude: Float(P) + 0.5), "ε·(P + 16)·Σ|dy·x|")
                }
            }
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

    /// The AVX-512 backward kernel against the definition: the transposed
    /// weight gradient it sums into, and the input gradient over the
    /// connected pairs. Shapes: C3 with and without its table, more than 16
    /// output maps (two vector groups), rows of one, two and three vectors,
    /// row counts that are not whole blocks of 8, one output position.
    @Test(.enabled(if: CPUFeatures.avx512F, "the backward kernel needs AVX-512"))
    func testBackwardKernelMatchesTheDefinition() throws {
        let shapes: [(C: Int, H: Int, W: Int, OC: Int, table: [[Int]]?)] = [
            (6, 14, 14, 16, Conv2D.lecunC3Table), (6, 14, 14, 16, nil), (3, 32, 32, 5, nil), (2, 9, 9, 3, nil),
            (16, 14, 14, 32, nil), (4, 21, 37, 20, [[0], [1, 3], [2], [0, 1, 2, 3]] + Array(repeating: [3], count: 16)),
            (2, 5, 5, 18, nil), (1, 6, 6, 1, nil),
        ]
        for s in shapes {
            let g = ConvGeometry(channels: s.C, height: s.H, width: s.W, kernelH: 5, kernelW: 5, stride: 1)
            #expect(directBackwardFits(g))
            let P = g.positions, K = s.C * 25, OCp = (s.OC + 15) / 16 * 16
            let x = FixedValues.values(s.C * s.H * s.W, salt: 31, bound: 1)
            let w = FixedValues.values(s.OC * K, salt: 32, bound: 0.2)
            let dy = FixedValues.values(s.OC * P, salt: 33, bound: 1)
            let connected: [UInt8]? = s.table.map { table in
                var pairs = [UInt8](repeating: 0, count: s.OC * s.C)
                for (oc, row) in table.enumerated() { for c in row { pairs[oc * s.C + c] = 1 } }
                return pairs
            }
            let sizes = conv5x5BackwardSizes(g, outChannels: s.OC)
            #expect(sizes.weightGradient == K * OCp)
            // The columns past OC start at 0 and must stay there; the rest start at 0.5.
            var dwT = (0..<K * OCp).map { $0 % OCp < s.OC ? Float(0.5) : 0 }
            var dx = [Float](repeating: .nan, count: s.C * s.H * s.W)
            // The scratch with 8 sentinels past the size the layer reserves: the kernel must not reach them.
            var scratch = [Float](repeating: .nan, count: sizes.scratch) + [Float](repeating: -3, count: 8)
            connected.withUnsafeBufferPointerOrNil { pairs in
                conv5x5Backward(&dwT, &dx, dy, x, w, g, outChannels: s.OC, connected: pairs, scratch: &scratch)
            }
            #expect(scratch.suffix(8).allSatisfy { $0 == -3 }, "scratch overrun \(s.C)→\(s.OC) \(s.H)×\(s.W)")
            var dw = [Float](repeating: 0.5, count: s.OC * K)
            conv5x5WeightGradientNaive(&dw, dy, x, g, outChannels: s.OC)
            let actual = (0..<s.OC * K).map { i in dwT[(i % K) * OCp + i / K] }
            // Each is 0.5 plus a chain of P products of magnitude ≤ 1.
            assertWithin(actual, dw, "weight gradient \(s.C)→\(s.OC) \(s.H)×\(s.W)",
                         bound: ErrorBound.reduction(P + 1, magnitude: Float(P) + 0.5), "ε·(P + 1)·Σ|dy·x|")
            #expect((0..<K * OCp).allSatisfy { $0 % OCp < s.OC || dwT[$0] == 0 }, "padding columns \(s)")
            var reference = [Float](repeating: 0, count: dx.count)
            conv5x5InputGradientNaive(&reference, dy, w, g, outChannels: s.OC, connected: connected)
            // Each sums at most OC·25 products of magnitude ≤ 0.2 (zeros outside dy add nothing).
            assertWithin(dx, reference, "input gradient \(s.C)→\(s.OC) \(s.H)×\(s.W)",
                         bound: ErrorBound.reduction(s.OC * 25, magnitude: Float(s.OC * 25) * 0.2), "ε·OC·25·Σ|dy·w|")
        }
    }

    /// Conv2D's direct backward pass against its im2col + sgemm pass, with
    /// and without a connection table: the same gradients within the sums'
    /// bounds, and the table's missing weights get no gradient.
    @Test(.enabled(if: CPUFeatures.avx512F, "the backward kernel needs AVX-512"))
    func testConv2DDirectBackwardAndGemmPathsAgree() throws {
        let cases: [(C: Int, H: Int, OC: Int, table: [[Int]]?)] = [(6, 14, 16, Conv2D.lecunC3Table), (3, 12, 20, nil)]
        for s in cases {
            let shape = FeatureShape(channels: s.C, height: s.H, width: s.H)
            let net = try Network(inputShape: shape, layers: [Conv2D("c", inChannels: s.C, outChannels: s.OC, kernelSize: 5, table: s.table)])
            guard let conv = net.layers[0] as? Conv2D else { Issue.record("not a Conv2D"); return }
            try FixedValues.fill(net.parameters)
            let n = 3
            try net.reserve(batch: n)
            let g = conv.geometry(for: shape)
            #expect(conv.directBackward(g), "the rule takes \(s.C)→\(s.OC)")
            let x = FixedValues.values(n * shape.count, salt: 41, bound: 1)
            let out = n * net.outputShape.count
            let dy = FixedValues.values(out, salt: 42, bound: 1)
            var y = [Float](repeating: .nan, count: out)
            conv.forward(&y, x, batch: n)
            var results: [(dx: [Float], grad: [Float])] = []
            for direct in [true, false] {
                conv.directBackwardChoice = direct
                net.parameters.zeroGradients()
                var dx = [Float](repeating: .nan, count: n * shape.count)
                conv.backward(&dx, dy, x, y, batch: n)
                results.append((dx, Array(net.parameters.gradients)))
            }
            let P = g.positions, bound = 1 / Float(s.C * 25).squareRoot()  // FixedValues.fill's bound
            assertWithin(results[0].grad, results[1].grad, "gradients \(s)", bound: 2 * ErrorBound.reduction(n * P + 16, magnitude: Float(n * P)),
                         "2·ε·(n·P + 16)·Σ|dy·x| (two orders)")
            assertWithin(results[0].dx, results[1].dx, "input gradients \(s)",
                         bound: 2 * ErrorBound.reduction(s.OC * 25, magnitude: Float(s.OC * 25) * bound), "2·ε·OC·25·Σ|dy·w| (two orders)")
            if let table = s.table {
                let weightGrad = results[0].grad
                for (oc, row) in table.enumerated() {
                    for c in 0..<s.C where !row.contains(c) {
                        #expect(weightGrad[(oc * s.C + c) * 25..<(oc * s.C + c + 1) * 25].allSatisfy { $0 == 0 }, "masked \(oc), \(c)")
                    }
                }
            }
        }
    }
}

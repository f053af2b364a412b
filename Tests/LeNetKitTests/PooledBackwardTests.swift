import Foundation
import Testing
@_spi(Benchmarks) @_spi(CLI) @testable import LeNetKit
import CKernels

/// A convolution's backward pass run through the 2×2 max pool after it
/// (`ConvMaxPoolBackward`) against the layer-by-layer pass,
/// and its kernels against their definitions.
struct PooledBackwardTests {
    // MARK: Kernels

    @Test func testIm2rowsIsIm2colTransposed() {
        let shapes = [
            ConvGeometry(channels: 3, height: 32, width: 32, kernelH: 5, kernelW: 5),  // conv1
            ConvGeometry(channels: 16, height: 14, width: 14, kernelH: 5, kernelW: 5),  // conv2
            ConvGeometry(channels: 2, height: 7, width: 9, kernelH: 3, kernelW: 3),
            ConvGeometry(channels: 1, height: 6, width: 11, kernelH: 2, kernelW: 6),
        ]
        for (i, g) in shapes.enumerated() {
            let x = randomValues(g.channels * g.height * g.width, seed: UInt64(i))
            let P = g.positions, K = g.patch, ld = K + 5
            var cols = [Float](repeating: 0, count: K * P)
            var rows = [Float](repeating: -7, count: P * ld)
            im2col(&cols, x, g)
            im2rows(&rows, x, g, ld: ld)
            for q in 0..<P {
                for k in 0..<K where rows[q * ld + k] != cols[k * P + q] {
                    Issue.record("shape \(i): rows[\(q), \(k)] = \(rows[q * ld + k]), cols[\(k), \(q)] = \(cols[k * P + q])")
                    return
                }
                // The padding columns are left alone.
                #expect(Array(rows[q * ld + K..<q * ld + ld]) == [Float](repeating: -7, count: ld - K), "shape \(i) row \(q)")
            }
        }
    }

    @Test func testRows2imIsTheAdjointOfIm2rowsAndSkipsUnusedRows() {
        let shapes = [
            ConvGeometry(channels: 16, height: 14, width: 14, kernelH: 5, kernelW: 5),
            ConvGeometry(channels: 2, height: 7, width: 9, kernelH: 3, kernelW: 3),
        ]
        for (i, g) in shapes.enumerated() {
            let P = g.positions, K = g.patch, ld = K + 3, CHW = g.channels * g.height * g.width
            let rows = randomValues(P * ld, seed: UInt64(10 + i))
            var used = (0..<P).map { Int32($0 % 3 == 1 ? 0 : 1) }
            // rows2im against col2im of the same rows, transposed, with unused rows zeroed
            var cols = [Float](repeating: 0, count: K * P)
            for q in 0..<P where used[q] != 0 {
                for k in 0..<K { cols[k * P + q] = rows[q * ld + k] }
            }
            var expected = [Float](repeating: 0, count: CHW), actual = [Float](repeating: .nan, count: CHW)
            col2im(&expected, cols, g)
            rows2im(&actual, rows, g, ld: ld, used: &used)
            assertClose(actual, expected, "rows2im shape \(i)", atol: 1e-6, rtol: 1e-6)
            // <rows2im(R), x> = <R, im2rows(x)> with every row used
            let x = randomValues(CHW, seed: UInt64(20 + i))
            var unfolded = [Float](repeating: 0, count: P * ld)
            im2rows(&unfolded, x, g, ld: ld)
            rows2im(&actual, rows, g, ld: ld)
            var left = 0.0, right = 0.0
            for j in 0..<CHW { left += Double(actual[j]) * Double(x[j]) }
            for q in 0..<P {
                for k in 0..<K { right += Double(rows[q * ld + k]) * Double(unfolded[q * ld + k]) }
            }
            #expect(abs(left - right) <= (1e-4 * max(1, abs(right))), "shape \(i)")
        }
    }

    /// The AVX-512 list builders give the Swift loops' lists, in the same
    /// order: ±0 dropped, NaN kept, at every tail length.
    @Test(.enabled(if: lenet_has_avx512f() != 0, "needs AVX-512"))
    func testListKernelsAreThePortableLoops() {
        // Gradients: a third zero (half of those −0), a NaN, the rest random.
        func gradients(_ count: Int, seed: UInt64) -> [Float] {
            randomValues(count, seed: seed).enumerated().map { i, v in
                i % 3 == 0 ? (i % 2 == 0 ? 0 : -0.0) : (i == 7 ? .nan : v)
            }
        }
        for count in [0, 1, 15, 16, 17, 196, 25] {
            let values = gradients(count, seed: UInt64(count)), keys = (0..<count).map { Int32($0 * 7 % 101) }
            var rows = [Int32](repeating: -1, count: count + 1), weights = [Float](repeating: 9, count: count + 1)
            var portableRows = rows, portableWeights = weights
            let n = lenet_compact_nonzero_avx512(&rows, &weights, keys, values, count)
            let m = compactNonzeroPortable(&portableRows, &portableWeights, keys: keys, values: values, count: count)
            #expect(n == m, "count \(count)")
            #expect(Array(rows.prefix(n)) == Array(portableRows.prefix(m)), "rows, count \(count)")
            #expect(weights.prefix(n).map(\.bitPattern) == portableWeights.prefix(m).map(\.bitPattern), "weights, count \(count)")
        }
        for (OC, PP, OW) in [(32, 25, 10), (16, 196, 28), (5, 9, 6), (40, 4, 4)] {
            let values = gradients(OC * PP, seed: UInt64(OC)), start = 2 * OW + 2
            // Routes to the window's four corners and elsewhere.
            let routes = (0..<OC * PP).map { i in Int32(start + [0, 1, OW, OW + 1, 3][i * 5 % 7 % 5]) }
            for w in [0, PP - 1] {
                var rows = [Int32](repeating: -1, count: 4 * OC), weights = [Float](repeating: 9, count: 4 * OC)
                var counts = [Int32](repeating: -1, count: 4)
                var portableRows = rows, portableWeights = weights, portableCounts = counts
                lenet_corner_lists_avx512(&rows, &weights, &counts, Array(routes[w...]), Array(values[w...]), OC, PP, start, OW)
                cornerListsPortable(&portableRows, &portableWeights, counts: &portableCounts, routes: Array(routes[w...]),
                                    values: Array(values[w...]), kernels: OC, stride: PP, start: start, rowLength: OW)
                #expect(counts == portableCounts, "\(OC) kernels, window \(w)")
                for corner in 0..<4 {
                    let range = corner * OC..<corner * OC + Int(max(0, counts[corner]))
                    #expect(Array(rows[range]) == Array(portableRows[range]), "\(OC) kernels, window \(w), corner \(corner)")
                    #expect(weights[range].map(\.bitPattern) == portableWeights[range].map(\.bitPattern), "\(OC), \(w), \(corner)")
                }
            }
        }
    }

    /// `LENETKIT_KERNELS=portable` turns the AVX2 kernels off (CI runs the suite so).
    @Test func testPortableSwitch() {
        let portable = ProcessInfo.processInfo.environment["LENETKIT_KERNELS"] == "portable"
        #expect(CPUFeatures.portableRequested == portable)
        #expect(CPUFeatures.avx2FMA == (CPUFeatures.hardwareAVX2FMA && !portable))
    }

    @Test func testWeightedRowSumMatchesItsDefinition() {
        let matrixRows = 37
        for width in [8, 16, 40, 72, 80, 88, 160, 240, 400, 408] {
            let ld = width + 8
            let matrix = randomValues(matrixRows * ld, seed: UInt64(width))
            for count in [0, 1, 3, 5, 17, 64] {
                let chosen = (0..<count).map { Int32(($0 * 11 + width) % matrixRows) }
                let weights = randomValues(count, seed: UInt64(count + 100))
                let start = randomValues(width, seed: 7)
                for accumulate in [false, true] {
                    var expected = start
                    weightedRowSumNaive(&expected, accumulate: accumulate, matrix, ld: ld, width: width,
                                        rows: chosen, weights: weights, count: count)
                    // Bound: count + 1 terms (the start when accumulating) times ε
                    // times Σ|terms|, the naive sum (in Double) of absolute values.
                    var absolute = start.map(abs)
                    weightedRowSumNaive(&absolute, accumulate: accumulate, matrix.map(abs), ld: ld, width: width,
                                        rows: chosen, weights: weights.map(abs), count: count)
                    let bounds = ErrorBound.sums(count + 1, absolute: absolute)
                    var chosenPath = start, vector = start
                    weightedRowSum(&chosenPath, accumulate: accumulate, matrix, ld: ld, width: width,
                                   rows: chosen, weights: weights, count: count)
                    weightedRowSumVector(&vector, accumulate: accumulate, matrix, ld: ld, width: width,
                                         rows: chosen, weights: weights, count: count)
                    let name = "width \(width) count \(count) accumulate \(accumulate)"
                    assertWithin(chosenPath, expected, "weightedRowSum " + name, bounds: bounds, "(count + 1)·ε·Σ|terms|")
                    assertWithin(vector, expected, "weightedRowSumVector " + name, bounds: bounds, "(count + 1)·ε·Σ|terms|")
                    if CPUFeatures.hardwareAVX2FMA {
                        var avx2 = start
                        lenet_weighted_row_sum_avx2(&avx2, accumulate ? 1 : 0, matrix, ld, width, chosen, weights, count)
                        assertWithin(avx2, expected, "AVX2 weightedRowSum " + name, bounds: bounds, "(count + 1)·ε·Σ|terms|")
                        // The AVX-512 kernel runs each column's chain as the AVX2 one does: the same bits.
                        if lenet_has_avx512f() != 0 {
                            var avx512 = start
                            lenet_weighted_row_sum_avx512(&avx512, accumulate ? 1 : 0, matrix, ld, width, chosen, weights, count)
                            #expect(avx512.map(\.bitPattern) == avx2.map(\.bitPattern), "AVX-512 against AVX2, \(name)")
                        }
                    }
                }
            }
        }
    }

    /// The route of each window is where the pool's backward sends its
    /// gradient, ties and all.
    @Test func testRoutesAreWhereThePoolsBackwardSendsTheGradient() {
        for (H, W) in [(10, 10), (28, 28), (7, 13), (5, 9), (2, 2)] {
            let OH = H / 2, OW = W / 2
            // Values from {0, 1, 2}: many ties.
            let x = randomValues(H * W, seed: UInt64(H * 100 + W), 0, 3).map { $0.rounded(.down) }
            let dy = (0..<OH * OW).map { Float($0 + 1) }
            var dx = [Float](repeating: .nan, count: H * W)
            var route = [Int32](repeating: -1, count: OH * OW)
            maxPool2x2Backward(&dx, dy, x, W: W, OH: OH, OW: OW)
            maxPool2x2Routes(&route, x, W: W, OH: OH, OW: OW)
            for w in 0..<OH * OW {
                let q = Int(route[w]), i = w / OW, j = w % OW
                #expect((q / W) / 2 == i && (q % W) / 2 == j && q % W < 2 * OW, "\(H)×\(W): window \(w) routed outside itself, to \(q)")
                #expect(dx[q] == dy[w], "\(H)×\(W): window \(w) routed to \(q)")
            }
        }
    }

    // MARK: The fused pass against the layer-by-layer pass

    struct Case { var n, c, h, w, oc, k: Int }

    @Test func testFusedBackwardMatchesLayerByLayer() throws {
        let cases = [
            Case(n: 3, c: 3, h: 32, w: 32, oc: 16, k: 5),  // conv1
            Case(n: 2, c: 16, h: 14, w: 14, oc: 32, k: 5),  // conv2
            Case(n: 2, c: 2, h: 12, w: 11, oc: 5, k: 3),  // odd output (10×9): a row and a column in no window
            Case(n: 1, c: 1, h: 7, w: 9, oc: 3, k: 4),  // 4×6 output, patch 16
        ]
        for (i, t) in cases.enumerated() {
            // conv0 (1×1) in front so that conv1's input gradient is needed
            let layers: () -> [any Layer] = {
                [Conv2D("conv0", inChannels: t.c, outChannels: t.c, kernelSize: 1),
                 Conv2D("conv1", inChannels: t.c, outChannels: t.oc, kernelSize: t.k), MaxPool2D("pool"), ReLU("relu")]
            }
            let shape = FeatureShape(channels: t.c, height: t.h, width: t.w)
            let fused = try Network(inputShape: shape, layers: layers())
            let reference = try Network(inputShape: shape, layers: layers())
            reference.fusesPooling = false
            var rng = SeededGenerator(seed: UInt64(i))
            fused.parameters.initialize(using: &rng)
            _ = reference.parameters.values.update(fromContentsOf: fused.parameters.values)
            let x = randomValues(t.n * shape.count, seed: UInt64(30 + i))
            // a gradient with exact zeros, as the ReLU's would have, and one NaN-free tie pattern
            var dy = randomValues(t.n * fused.outputShape.count, seed: UInt64(40 + i))
            for j in dy.indices where j % 3 == 0 { dy[j] = 0 }
            var results: [[Float]] = []
            for net in [fused, reference] {
                _ = try net.input(batch: t.n).update(fromContentsOf: x)
                net.forward(batch: t.n)
                net.parameters.zeroGradients()
                _ = try net.outputGradient(batch: t.n).update(fromContentsOf: dy)
                #expect(net.backwardFusesPool(at: 2) == (net === fused), "case \(i)")
                net.backward(batch: t.n, inputGradient: true)
                results.append(Array(net.parameters.gradients) + Array(UnsafeBufferPointer(start: net.inputGradient, count: t.n * shape.count)))
            }
            // Bound (ErrorBound): the forward sums conv0's C and conv1's C·K·K
            // terms, the backward conv1's input gradient OC·K·K, conv0's C, and
            // the weight gradients' sums over N·OH·OW positions.
            let g = ConvGeometry(channels: t.c, height: t.h, width: t.w, kernelH: t.k, kernelW: t.k, stride: 1, padding: 0)
            let K = t.c + g.patch + t.oc * t.k * t.k + t.c + t.n * g.positions
            var worst: Float = 0
            var start = 0
            for (name, count) in fused.parameters.entries.map({ ($0.name, $0.count) }) + [("input gradient", t.n * shape.count)] {
                let range = start..<start + count
                let expected = Array(results[1][range])
                worst = max(worst, assertWithin(Array(results[0][range]), expected, "case \(i): \(name)",
                                                bound: ErrorBound.reduction(K, of: expected), "ε·\(K)·max|g|"))
                start += count
            }
            #expect(start == results[1].count)
            #expect(results[1].map(abs).max() ?? 0 > 0.01, "case \(i): the reference gradients are not trivial")
            print("case \(i): max difference fused vs layer by layer \(worst)")
        }
    }

    /// The CIFAR LeNet's two convolutions run fused; a convolution with a
    /// stride, or followed by another pool, runs layer by layer.
    @Test func testWhichConvolutionsFuse() throws {
        let net = try Models.cifarLeNet()
        try net.reserve(batch: 1)
        #expect(net.layers.indices.filter { net.backwardFusesPool(at: $0) } == [1, 4])
        let strided = try Network(inputShape: FeatureShape(channels: 1, height: 12, width: 12), layers: [
            Conv2D("conv", inChannels: 1, outChannels: 2, kernelSize: 3, stride: 2), MaxPool2D("pool"),
            Conv2D("conv2", inChannels: 2, outChannels: 2, kernelSize: 1), MaxPool2D("pool2", kernelSize: 2, stride: 1),
        ])
        try strided.reserve(batch: 2)
        #expect(strided.layers.indices.filter { strided.backwardFusesPool(at: $0) } == [])
    }

    /// The fuse pass's steps cover the layers once, in order; and turning
    /// fusion off on a network turns it off in its data-parallel replicas,
    /// made before or after (they used to keep fusing).
    @Test func testBackwardStepsCoverTheLayersAndReplicasFollowTheSetting() throws {
        let net = try Models.cifarLeNet()
        #expect(net.backwardSteps.map(\.layers) == [0..<2, 2..<3, 3..<5, 5..<6, 6..<7, 7..<8, 8..<9, 9..<10, 10..<11])
        #expect(net.backwardSteps[0] is ConvMaxPoolBackward)
        #expect(net.backwardSteps[2] is ConvMaxPoolBackward)
        let parallel = try DataParallel(network: net, threads: 3)
        try parallel.reserve(batch: 2)  // two parts: one replica
        #expect(parallel.replicas.count == 1)
        net.fusesPooling = false
        try parallel.reserve(batch: 12)  // three parts: a second replica
        #expect(parallel.replicas.count == 2)
        // Each part writes its own entry (the parts run at once).
        func settings() throws -> [Bool] {
            var seen = [Bool?](repeating: nil, count: 3)
            try seen.withUnsafeMutableBufferPointer { seen in
                try parallel.run(batch: 3) { part, network, _ in seen[part] = network.fusesPooling }
            }
            return seen.compactMap { $0 }
        }
        #expect(try settings() == [false, false, false])
        net.fusesPooling = true
        #expect(try settings() == [true, true, true])
    }

    /// Three Adam steps fused and layer by layer: at each step, from the same
    /// weights, the gradients agree to their bound, and the weights after the
    /// step to `AdamStepBound` (Adam makes lr-sized steps of any gradient
    /// about 0, so weights alone would hide or exaggerate a difference).
    @Test func testTrainingStepsFusedAndLayerByLayerAgree() throws {
        let n = 8
        let images = randomValues(n * 3 * 32 * 32, seed: 5)
        let labels = (0..<n).map { Int32($0 % 10) }
        let lr: Float = 1e-3
        let nets = [try Models.cifarLeNet(seed: 3), try Models.cifarLeNet(seed: 3)]
        nets[1].fusesPooling = false
        let optimizers = try nets.map { try Adam(parameters: $0.parameters, learningRate: lr) }
        let losses = nets.map { _ in SoftmaxCrossEntropy(classes: 10) }
        // The CIFAR LeNet's chain, as in the PyTorch test, with conv1's weight
        // gradient summed over 8·28·28 positions.
        let K = (75 + 400 + 800 + 120 + 84) + (10 + n) + (10 + 84 + 120 + 800) + n * 28 * 28
        var adamBound = AdamStepBound(learningRate: lr, count: nets[0].parameters.count)
        for t in 0..<3 {
            let start = Array(nets[0].parameters.values)
            _ = nets[1].parameters.values.update(fromContentsOf: start)
            var gradients: [[Float]] = []
            for (net, loss) in zip(nets, losses) {
                _ = try net.input(batch: n).update(fromContentsOf: images)
                let logits = net.forward(batch: n)
                _ = try loss.forward(logits, labels, batch: n)
                net.parameters.zeroGradients()
                loss.backward(try net.outputGradient(batch: n))
                net.backward(batch: n)
                gradients.append(Array(net.parameters.gradients))
            }
            let gradientBound = ErrorBound.reduction(K, of: gradients[1])
            assertWithin(gradients[0], gradients[1], "step \(t + 1): gradients", bound: gradientBound, "ε·\(K)·max|g|")
            adamBound.add(gradients: gradients[1], bound: gradientBound)
            for optimizer in optimizers { optimizer.step() }
            assertWithin(Array(nets[0].parameters.values), Array(nets[1].parameters.values), "step \(t + 1): weights",
                         bounds: adamBound.bounds(weights: start), "AdamStepBound")
            #expect(Array(nets[0].parameters.values) != start)
        }
    }
}

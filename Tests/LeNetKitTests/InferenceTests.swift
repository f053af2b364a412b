import CKernels
import Foundation
import Testing
@_spi(Benchmarks) @_spi(CLI) @testable import LeNetKit

/// The forward-only path (`Network.infer`): its kernels against the
/// definition, its steps against the layers they replace, and its logits
/// against the training forward pass.
struct InferenceTests {
    // MARK: - Kernels against the definition

    /// Shapes: the CIFAR LeNet's two stages, a trailing group of 8 channels
    /// (24 = 16 + 8), a single group of 8, odd sizes (the pool drops the last
    /// row and column, as MaxPool2D does), and rows shorter than a tile.
    let convShapes: [(C: Int, H: Int, W: Int, OC: Int)] = [(3, 32, 32, 16), (16, 14, 14, 32), (2, 11, 13, 24),
                                                            (1, 9, 9, 8), (4, 7, 20, 16), (5, 6, 6, 40),
                                                            (2, 33, 41, 56)]

    @Test(.enabled(if: CPUFeatures.avx2FMA, "the fused kernel needs AVX2 and FMA"))
    func testConvPoolReLUKernelMatchesTheDefinition() throws {
        for s in convShapes {
            let g = ConvGeometry(channels: s.C, height: s.H, width: s.W, kernelH: 5, kernelW: 5)
            #expect(convPoolReLUFits(g, outChannels: s.OC), "\(s)")
            let x = FixedValues.values(s.C * s.H * s.W, salt: 31, bound: 1)
            let w = FixedValues.values(s.OC * s.C * 25, salt: 32, bound: 0.2)
            let b = FixedValues.values(s.OC, salt: 33, bound: 0.5)
            let PH = g.outH / 2, out = s.OC * PH * (g.outW / 2)
            var packed = [Float](repeating: .nan, count: w.count)
            packChannelsLast(&packed, w, outChannels: s.OC, patch: g.patch)
            var scratch = [Float](repeating: .nan, count: convPoolReLURowFloats(g, outChannels: s.OC))
            var y = [Float](repeating: .nan, count: out), reference = y, absolute = y
            convPoolReLU(&y, x, packed: packed, b, g, outChannels: s.OC, pooledRows: 0..<PH, scratch: &scratch)
            convPoolReLUNaive(&reference, x, w, b, g, outChannels: s.OC)
            // Each output is one sequential float sum of C·25 products, then
            // the bias: within (C·25 + 1)·u·(|b| + Σ|w·x|) of the exact value,
            // the max and the ReLU moving it no further. ε·K is twice that.
            convPoolReLUNaive(&absolute, x.map(abs), w.map(abs), b.map(abs), g, outChannels: s.OC)
            let K = s.C * 25 + 1
            assertWithin(y, reference, "conv+pool+ReLU \(s)", bounds: ErrorBound.sums(K, absolute: absolute), "ε·K·(|b| + Σ|w·x|)")
            #expect(y.contains(0) && y.contains { $0 > 0 }, "\(s): the ReLU should both cut and pass")

            // The same rows in two calls (a sample split across threads) give the same bits.
            var split = [Float](repeating: .nan, count: out)
            convPoolReLU(&split, x, packed: packed, b, g, outChannels: s.OC, pooledRows: 0..<PH / 2, scratch: &scratch)
            convPoolReLU(&split, x, packed: packed, b, g, outChannels: s.OC, pooledRows: PH / 2..<PH, scratch: &scratch)
            #expect(split == y, "\(s): rows computed in two calls")

            // The AVX2 and AVX-512 kernels run the same FMA chain per output
            // value, so where the CPU has both they give the same bits
            // (groups of 32, 16 and 8 channels, tiles and their remainders).
            if lenet_has_avx512f() != 0 {
                var narrow = [Float](repeating: .nan, count: out), wide = narrow
                lenet_conv5x5_pool_relu_avx2(&narrow, x, packed, b, s.C, s.H, s.W, s.OC, 0, PH, &scratch)
                lenet_conv5x5_pool_relu_avx512(&wide, x, packed, b, s.C, s.H, s.W, s.OC, 0, PH, &scratch)
                #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern), "\(s): AVX-512 against AVX2")
            }
        }
    }

    /// The transpose is a copy: the same bits, every block and tail.
    @Test(.enabled(if: CPUFeatures.avx2FMA, "the packing kernel needs AVX2 and FMA"),
          arguments: [(32, 400), (16, 75), (8, 3), (24, 13), (40, 16)])
    func testPackingIsATranspose(OC: Int, K: Int) throws {
        let w = FixedValues.values(OC * K, salt: 35, bound: 1)
        var packed = [Float](repeating: .nan, count: OC * K), reference = packed
        packChannelsLast(&packed, w, outChannels: OC, patch: K)
        packChannelsLastNaive(&reference, w, outChannels: OC, patch: K)
        #expect(packed == reference, "OC \(OC), K \(K)")
        #expect(packed[1 * OC + 2] == w[2 * K + 1], "OC \(OC), K \(K): packed[k, oc] = w[oc, k]")
    }

    @Test(.enabled(if: CPUFeatures.avx2FMA, "the fused kernel needs AVX2 and FMA"))
    func testLinearKernelMatchesTheDefinition() throws {
        // The CIFAR LeNet's fc1, fc2 and fc3, LeNet-5's F6 and output, and
        // every tail: samples not a multiple of 4, outputs not of 3, inputs not of 8.
        let shapes: [(n: Int, IN: Int, OUT: Int)] = [(8, 800, 120), (5, 120, 84), (3, 84, 10), (1, 800, 120),
                                                     (2, 13, 1), (7, 3, 2), (9, 16, 4), (4, 1, 5), (6, 21, 13), (3, 9, 6)]
        for s in shapes {
            for relu in [false, true] {
                let x = FixedValues.values(s.n * s.IN, salt: 41, bound: 1)
                let w = FixedValues.values(s.OUT * s.IN, salt: 42, bound: 0.1)
                let b = FixedValues.values(s.OUT, salt: 43, bound: 0.5)
                var y = [Float](repeating: .nan, count: s.n * s.OUT), reference = y, absolute = y
                linearReLU(&y, ldy: s.OUT, x, ldx: s.IN, w, b, batch: s.n, inputs: s.IN, outputs: s.OUT, relu: relu)
                linearReLUNaive(&reference, x, w, b, batch: s.n, inputs: s.IN, outputs: s.OUT, relu: relu)
                linearReLUNaive(&absolute, x.map(abs), w.map(abs), b.map(abs), batch: s.n, inputs: s.IN, outputs: s.OUT, relu: false)
                // Each of 8 lanes sums ⌈IN/8⌉ products in order, three
                // additions join the lanes and one adds the bias.
                let K = (s.IN + 7) / 8 + 4
                assertWithin(y, reference, "linear \(s) relu \(relu)", bounds: ErrorBound.sums(K, absolute: absolute),
                             "ε·(⌈IN/8⌉ + 4)·(|b| + Σ|w·x|)")
                if relu { #expect(!(y.contains { $0 < 0 }), "\(s): negative after the ReLU") }
                // The AVX-512 twin runs each output's chain in the AVX2 kernel's lanes: the same bits.
                if lenet_has_avx512f() != 0 {
                    var narrow = [Float](repeating: .nan, count: y.count), wide = narrow
                    lenet_linear_avx2(&narrow, s.OUT, x, s.IN, w, b, s.n, s.IN, s.OUT, relu ? 1 : 0)
                    lenet_linear_avx512(&wide, s.OUT, x, s.IN, w, b, s.n, s.IN, s.OUT, relu ? 1 : 0)
                    #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern), "\(s) relu \(relu): AVX-512 against AVX2")
                }
            }
        }
        // The ReLU layer's max(v, 0): NaN stays NaN.
        var y: [Float] = [0]
        linearReLU(&y, ldy: 1, [Float.nan], ldx: 1, [1], [0], batch: 1, inputs: 1, outputs: 1, relu: true)
        #expect(y[0].isNaN)
    }

    // MARK: - The fuse pass

    @Test func testFusePassPicksTheKernels() throws {
        let kinds = try Models.cifarLeNet().inferenceSteps.map { $0.kind }
        if CPUFeatures.avx2FMA {
            // conv1 has 3 input channels, too few for Winograd's kernel; conv2 has 16.
            #expect(kinds == ["fused conv+pool+ReLU", "Winograd conv+pool+ReLU", "fused linear+ReLU", "fused linear+ReLU", "direct linear"])
            let direct = try Models.cifarLeNet()
            direct.allowsWinograd = false
            try direct.reserve(batch: 1, backward: false)
            #expect(direct.inferenceSteps.map(\.kind) == ["fused conv+pool+ReLU", "fused conv+pool+ReLU", "fused linear+ReLU", "fused linear+ReLU", "direct linear"])
            #expect(try Models.cifarLeNet().inferenceSteps.map { $0.layers } == [0..<3, 3..<6, 6..<8, 8..<10, 10..<11])
        } else {
            #expect(try kinds == Models.cifarLeNet().layers.map(\.kind), "without AVX2/FMA every layer is its own step")
        }
        // ReLU before the pool fuses too; a stride, 6 channels or a 3×3 kernel do
        // not (a 5×5 one alone is a direct conv: 3 steps either way, 1 fused).
        let shape = FeatureShape(channels: 3, height: 12, width: 12)
        func steps(_ layers: [any Layer]) throws -> [String] {
            try Network(inputShape: shape, layers: layers).inferenceSteps.map { $0.kind }
        }
        let fused = CPUFeatures.avx2FMA
        if fused {
            #expect(try Models.lenet5().inferenceSteps.filter { !($0 is LayerStep) }.map { $0.kind } == ["direct conv", "direct conv", "conv as linear", "direct linear", "direct linear"], "C1, C3, C5, F6 and the output layer")
        }
        #expect(try steps([Conv2D("c", inChannels: 3, outChannels: 8, kernelSize: 5), ReLU("r"), MaxPool2D("p")]).count == (fused ? 1 : 3))
        #expect(try steps([Conv2D("c", inChannels: 3, outChannels: 6, kernelSize: 5), MaxPool2D("p"), ReLU("r")]).count == 3)
        #expect(try steps([Conv2D("c", inChannels: 3, outChannels: 8, kernelSize: 5, stride: 2), MaxPool2D("p"), ReLU("r")]).count == 3)
        #expect(try steps([Conv2D("c", inChannels: 3, outChannels: 8, kernelSize: 3), MaxPool2D("p"), ReLU("r")]).count == 3)
        #expect(try steps([Conv2D("c", inChannels: 3, outChannels: 8, kernelSize: 5), MaxPool2D("p", kernelSize: 3), ReLU("r")]).count == 3)
    }

    // MARK: - Against the training forward pass

    /// Each step, run on the activation the training forward pass gave its
    /// first layer, gives that pass's activation after its last layer,
    /// within the step's own bound: both networks, a batch that is not a
    /// multiple of anything, on one thread and on three.
    @Test func testEveryStepMatchesTheLayersItReplaces() throws {
        for threads in [1, 3] {
            for net in [try Models.cifarLeNet(seed: 5), try Models.lenet5(seed: 5)] {
                net.threads = threads
                let n = 5
                _ = try net.input(batch: n).update(fromContentsOf: FixedValues.values(n * net.inputShape.count, salt: 51, bound: 1))
                net.forward(batch: n)
                for step in net.inferenceSteps {
                    let i = step.layers.lowerBound
                    let (input, expected, y) = runStep(step, of: net, batch: n)
                    let name = "\(step.layers.map { net.layers[$0].name }.joined(separator: "+")), \(threads) thread(s)"
                    switch step {
                    case is LayerStep:
                        #expect(y == expected, "\(name): the layer's own forward")
                    case is ConvPoolReLUStep:
                        guard let conv = net.layers[i] as? Conv2D, let (w, b) = conv.values else { Issue.record("\(name)"); return }
                        let g = conv.geometry(for: i == 0 ? net.inputShape : net.shapes[i - 1])
                        let W = Array(UnsafeBufferPointer(start: w, count: conv.outChannels * g.patch)).map(abs)
                        let B = Array(UnsafeBufferPointer(start: b, count: conv.outChannels)).map(abs)
                        let CHW = g.channels * g.height * g.width, out = expected.count / n
                        var absolute: [Float] = []
                        for s in 0..<n {
                            var a = [Float](repeating: 0, count: out)
                            convPoolReLUNaive(&a, input[s * CHW..<(s + 1) * CHW].map(abs), W, B, g, outChannels: conv.outChannels)
                            absolute += a
                        }
                        // Two float sums of the same C·25 + 1 terms, each within (C·25 + 1)·u·Σ|terms|.
                        assertWithin(y, expected, name, bounds: ErrorBound.sums(g.patch + 1, absolute: absolute), "ε·K·(|b| + Σ|w·x|)")
                    case is WinogradConvPoolReLUStep:
                        guard let conv = net.layers[i] as? Conv2D, let (w, b) = conv.values else { Issue.record("\(name)"); return }
                        let g = conv.geometry(for: i == 0 ? net.inputShape : net.shapes[i - 1])
                        let W = Array(UnsafeBufferPointer(start: w, count: conv.outChannels * g.patch))
                        let B = Array(UnsafeBufferPointer(start: b, count: conv.outChannels))
                        let CHW = g.channels * g.height * g.width, out = expected.count / n
                        // Each path against the exact value: the Winograd kernel within its
                        // derived bound (WinogradTests), the layers within ε·K·Σ|terms|.
                        var bounds: [Float] = []
                        for s in 0..<n {
                            let sample = Array(input[s * CHW..<(s + 1) * CHW])
                            let winograd = WinogradTests.reference(x: sample, w: W, b: B, C: g.channels, H: g.height, W: g.width,
                                                                   OC: conv.outChannels).bound
                            var a = [Float](repeating: 0, count: out)
                            convPoolReLUNaive(&a, sample.map(abs), W.map(abs), B.map(abs), g, outChannels: conv.outChannels)
                            bounds += zip(winograd, ErrorBound.sums(g.patch + 1, absolute: a)).map { Float($0) + $1 }
                        }
                        assertWithin(y, expected, name, bounds: bounds, "the Winograd bound + ε·K·(|b| + Σ|w·x|)")
                    case is ConvStep:
                        let layer = net.layers[i]
                        let values = (layer as? Conv2D)?.values
                        let shape = i == 0 ? net.inputShape : net.shapes[i - 1]
                        guard let (w, b) = values else { Issue.record("\(name)"); return }
                        let g = ConvGeometry(channels: shape.channels, height: shape.height, width: shape.width, kernelH: 5, kernelW: 5)
                        let OC = net.shapes[i].channels, CHW = shape.count, out = expected.count / n
                        let W = Array(UnsafeBufferPointer(start: w, count: OC * g.patch)).map(abs)
                        let B = Array(UnsafeBufferPointer(start: b, count: OC)).map(abs)
                        var absolute: [Float] = []
                        for s in 0..<n {
                            var a = [Float](repeating: 0, count: out)
                            conv5x5Naive(&a, input[s * CHW..<(s + 1) * CHW].map(abs), W, B, g, outChannels: OC)
                            absolute += a
                        }
                        // Two float sums of the same C·25 + 1 terms (the direct kernel or sgemm's order).
                        assertWithin(y, expected, name, bounds: ErrorBound.sums(g.patch + 1, absolute: absolute), "ε·K·(|b| + Σ|w·x|)")
                    case is LinearReLUStep:
                        // A Linear, or a convolution over its whole input (LeNet-5's C5).
                        let IN = input.count / n, OUT = expected.count / n
                        let values = (net.layers[i] as? Linear)?.values ?? (net.layers[i] as? Conv2D)?.values
                        guard let (w, b) = values else { Issue.record("\(name)"); return }
                        var absolute = [Float](repeating: 0, count: expected.count)
                        linearReLUNaive(&absolute, input.map(abs), Array(UnsafeBufferPointer(start: w, count: IN * OUT)).map(abs),
                                        Array(UnsafeBufferPointer(start: b, count: OUT)).map(abs), batch: n, inputs: IN, outputs: OUT, relu: false)
                        // sgemm's order and the kernel's: each within (IN + 1)·u·Σ|terms|.
                        assertWithin(y, expected, name, bounds: ErrorBound.sums(IN + 1, absolute: absolute), "ε·(IN + 1)·(|b| + Σ|w·x|)")
                    default:
                        Issue.record("\(name): a step of unknown kind")
                    }
                }
            }
        }
    }

    /// `infer`'s logits against `forward`'s for the CIFAR LeNet, at batch
    /// sizes around the depth-first chunk, on 1, 2 and 3 threads. The bound
    /// is the chain's: each layer's rounding adds at most K·u times the same
    /// layer run on absolute values (|W|·|a| + |b|), and a later layer
    /// carries an earlier error no further than |W| carries |a|, so each
    /// logit of either path is within (Σ K)·u of the exact one times the
    /// logit of the network with |weights| on |input|. ε·ΣK bounds the two
    /// paths' difference. (Not bitwise even where every step is the layer
    /// itself, without AVX2: `infer` runs chunks of the batch, and sgemm
    /// may round a chunk's rows differently from the whole batch's.)
    @Test func testInferMatchesForwardWithinTheChainBound() throws {
        let net = try Models.cifarLeNet(seed: 9)
        let absolute = try Models.cifarLeNet(seed: 9)
        // Direct convolution's bound (Winograd's is `WinogradTests`').
        net.allowsWinograd = false
        for i in absolute.parameters.values.indices { absolute.parameters.values[i] = abs(net.parameters.values[i]) }
        let K = (3 * 25 + 1) + (16 * 25 + 1) + (800 + 1) + (120 + 1) + (84 + 1)
        for threads in [1, 2, 3] {
            net.threads = threads
            absolute.threads = threads
            for n in [1, 7, 8, 17, 40] {
                let x = FixedValues.values(n * net.inputShape.count, salt: 60 + n, bound: 1)
                let fromForward = try logits(net, x, n, infer: false)
                let fromInfer = try logits(net, x, n, infer: true)
                let magnitude = try logits(absolute, x.map(abs), n, infer: false)
                assertWithin(fromInfer, fromForward, "logits, batch \(n), \(threads) thread(s)",
                             bounds: ErrorBound.sums(K, absolute: magnitude), "ε·ΣK·(the network on absolute values)")
            }
        }
    }

    /// Weights written after a first call, through `parameters.values`, are
    /// the weights the next call runs: nothing packed is kept stale.
    @Test func testInferRunsTheCurrentWeights() throws {
        let net = try Models.cifarLeNet(seed: 1), other = try Models.cifarLeNet(seed: 2)
        let x = FixedValues.values(3 * net.inputShape.count, salt: 70, bound: 1)
        let before = try logits(net, x, 3, infer: true)
        _ = net.parameters.values.update(fromContentsOf: other.parameters.values)
        #expect(try logits(net, x, 3, infer: true) == logits(other, x, 3, infer: true))
        #expect(try before != logits(net, x, 3, infer: true))
    }

    /// Filling each chunk as it runs (evaluation's way; every chunk's input
    /// and activations in the same memory) gives the logits of the whole
    /// batch's input in place: bitwise, the same steps on the same chunks.
    /// The chunks asked for cover the batch once, in order.
    @Test func testFillingChunksIsBitwiseTheInputInPlace() throws {
        for threads in [1, 2] {
            for model in [ModelKind.cifarLeNet, .lenet5] {
                let net = try model.make(seed: 4)
                net.threads = threads
                let n = 5 * Network.inferenceChunk * threads + 3, size = net.inputShape.count
                let x = FixedValues.values(n * size, salt: 90 + threads, bound: 1)
                let inPlace = try logits(net, x, n, infer: true)
                var asked: [Range<Int>] = []
                let y = try net.infer(batch: n) { chunk, input in
                    asked.append(chunk)
                    for j in 0..<chunk.count * size { input[j] = x[chunk.lowerBound * size + j] }
                }
                #expect(Array(UnsafeBufferPointer(start: y, count: n * net.outputShape.count)) == inPlace, "\(model), \(threads) thread(s)")
                #expect(asked.map(\.lowerBound) == Array(stride(from: 0, to: n, by: Network.inferenceChunk * threads)))
                #expect(asked.map(\.count).reduce(0, +) == n)
            }
        }
    }

    private func logits(_ net: Network, _ x: [Float], _ n: Int, infer: Bool) throws -> [Float] {
        try net.reserve(batch: n, backward: false)
        _ = try net.input(batch: n).update(fromContentsOf: x)
        let y = infer ? net.infer(batch: n) : net.forward(batch: n)
        return Array(UnsafeBufferPointer(start: y, count: n * net.outputShape.count))
    }
}

extension InferenceTests {
    /// The channels-last convolution alone: output channels padded to 8
    /// (LeNet-5's C1 has 6), one and two vectors of channels, rows shorter
    /// than a tile and longer than two.
    @Test(.enabled(if: CPUFeatures.avx2FMA, "the kernel needs AVX2 and FMA"),
          arguments: [(C: 1, H: 32, W: 32, OC: 6), (6, 14, 14, 16), (2, 9, 11, 3), (3, 6, 40, 24), (16, 5, 5, 9),
                      (3, 8, 33, 56)])
    func testChannelsLastConvolutionMatchesTheDefinition(s: (C: Int, H: Int, W: Int, OC: Int)) throws {
        let g = ConvGeometry(channels: s.C, height: s.H, width: s.W, kernelH: 5, kernelW: 5)
        #expect(conv5x5ChannelsLastFits(g))
        let x = FixedValues.values(s.C * s.H * s.W, salt: 81, bound: 1)
        let w = FixedValues.values(s.OC * s.C * 25, salt: 82, bound: 0.2)
        let b = FixedValues.values(s.OC, salt: 83, bound: 0.5)
        var packed = [Float](repeating: .nan, count: g.patch * paddedChannels(s.OC))
        packChannelsLastPadded(&packed, w, outChannels: s.OC, patch: g.patch)
        var scratch = [Float](repeating: .nan, count: g.outW * paddedChannels(s.OC))
        var y = [Float](repeating: .nan, count: s.OC * g.positions), reference = y, absolute = y
        conv5x5ChannelsLast(&y, x, packed: packed, b, g, outChannels: s.OC, scratch: &scratch)
        conv5x5Naive(&reference, x, w, b, g, outChannels: s.OC)
        conv5x5Naive(&absolute, x.map(abs), w.map(abs), b.map(abs), g, outChannels: s.OC)
        // One sequential float sum of C·25 products, then the bias.
        assertWithin(y, reference, "channels-last conv \(s)", bounds: ErrorBound.sums(g.patch + 1, absolute: absolute),
                     "ε·K·(|b| + Σ|w·x|)")
        // In two ranges of rows (a team's split): the same values, bit for bit, each row written once.
        var split = [Float](repeating: .nan, count: y.count)
        let middle = g.outH / 2
        for rows in [0..<middle, middle..<g.outH] {
            conv5x5ChannelsLast(&split, x, packed: packed, b, g, outChannels: s.OC, outputRows: rows, scratch: &scratch)
        }
        #expect(split == y, "\(s), rows split at \(middle)")
        // The AVX2 and AVX-512 kernels: the same FMA chain per value, the same bits.
        if lenet_has_avx512f() != 0 {
            var narrow = [Float](repeating: .nan, count: y.count), wide = narrow
            let OCp = paddedChannels(s.OC)
            lenet_conv5x5_channels_last_avx2(&narrow, x, packed, b, s.C, s.H, s.W, s.OC, OCp, 0, g.outH, &scratch)
            lenet_conv5x5_channels_last_avx512(&wide, x, packed, b, s.C, s.H, s.W, s.OC, OCp, 0, g.outH, &scratch)
            #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern), "\(s): AVX-512 against AVX2")
        }
    }
}

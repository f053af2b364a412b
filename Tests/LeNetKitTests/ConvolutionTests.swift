import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// im2col + gemm convolution against the direct convolution, forward and backward.
struct ConvolutionTests {
    struct Case { var n, c, h, w, oc, k, stride, padding: Int }

    let cases = [
        Case(n: 2, c: 3, h: 32, w: 32, oc: 16, k: 5, stride: 1, padding: 0),  // conv1
        Case(n: 3, c: 16, h: 14, w: 14, oc: 32, k: 5, stride: 1, padding: 0),  // conv2
        Case(n: 2, c: 2, h: 9, w: 7, oc: 3, k: 3, stride: 2, padding: 1),
        Case(n: 1, c: 3, h: 8, w: 8, oc: 4, k: 5, stride: 1, padding: 2),
        Case(n: 2, c: 1, h: 6, w: 5, oc: 2, k: 2, stride: 3, padding: 2),
        Case(n: 4, c: 16, h: 5, w: 5, oc: 120, k: 5, stride: 1, padding: 0),  // C5: one window covers the input
        Case(n: 3, c: 2, h: 4, w: 4, oc: 5, k: 4, stride: 2, padding: 0),  // the same, with a stride
        Case(n: 2, c: 6, h: 14, w: 14, oc: 16, k: 5, stride: 1, padding: 0),  // C3 without its table
    ]

    @Test func testIm2colGemmMatchesDirectConvolution() throws {
        for (i, t) in cases.enumerated() {
            let conv = Conv2D("conv", inChannels: t.c, outChannels: t.oc, kernelSize: t.k, stride: t.stride, padding: t.padding)
            let net = try Network(inputShape: FeatureShape(channels: t.c, height: t.h, width: t.w), layers: [conv])
            var rng = SeededGenerator(seed: UInt64(i))
            net.parameters.initialize(using: &rng)
            let x = randomValues(t.n * t.c * t.h * t.w, seed: UInt64(100 + i))
            let y = try net.predict(x)

            let g = ConvGeometry(channels: t.c, height: t.h, width: t.w, kernelH: t.k, kernelW: t.k, stride: t.stride, padding: t.padding)
            let w = net.parameters.values(of: "conv.weight") ?? []
            let b = net.parameters.values(of: "conv.bias") ?? []
            var yRef = [Float](repeating: 0, count: t.n * t.oc * g.positions)
            conv2dForwardNaive(&yRef, x, w, b, batch: t.n, outChannels: t.oc, g)
            // Every bound: the sum's length times ε times its Σ|terms|, which is
            // the same naive kernel run on absolute values.
            var yAbs = yRef
            conv2dForwardNaive(&yAbs, x.map(abs), w.map(abs), b.map(abs), batch: t.n, outChannels: t.oc, g)
            assertWithin(y, yRef, "case \(i) forward", bounds: ErrorBound.sums(g.patch + 1, absolute: yAbs), "(C·K·K + 1)·ε·Σ|terms|")

            // Backward with a random output gradient.
            let dy = randomValues(yRef.count, seed: UInt64(200 + i))
            _ = try net.outputGradient(batch: t.n).update(fromContentsOf: dy)
            net.parameters.zeroGradients()
            net.backward(batch: t.n, inputGradient: true)
            let dx = Array(UnsafeBufferPointer(start: net.inputGradient, count: x.count))
            var dxRef = [Float](repeating: 0, count: x.count)
            var dwRef = [Float](repeating: 0, count: w.count)
            var dbRef = [Float](repeating: 0, count: b.count)
            conv2dBackwardNaive(&dxRef, &dwRef, &dbRef, dy, x, w, batch: t.n, outChannels: t.oc, g)
            var dxAbs = [Float](repeating: 0, count: x.count)
            var dwAbs = [Float](repeating: 0, count: w.count), dbAbs = [Float](repeating: 0, count: b.count)
            conv2dBackwardNaive(&dxAbs, &dwAbs, &dbAbs, dy.map(abs), x.map(abs), w.map(abs), batch: t.n, outChannels: t.oc, g)
            // dx sums over OC·K·K kernel taps, dW and db over N·OH·OW positions.
            let taps = t.oc * t.k * t.k, positions = t.n * g.positions
            assertWithin(dx, dxRef, "case \(i) dx", bounds: ErrorBound.sums(taps, absolute: dxAbs), "OC·K·K·ε·Σ|terms|")
            assertWithin(net.parameters.gradient(of: "conv.weight") ?? [], dwRef, "case \(i) dw",
                         bounds: ErrorBound.sums(positions, absolute: dwAbs), "N·OH·OW·ε·Σ|terms|")
            assertWithin(net.parameters.gradient(of: "conv.bias") ?? [], dbRef, "case \(i) db",
                         bounds: ErrorBound.sums(positions, absolute: dbAbs), "N·OH·OW·ε·Σ|terms|")
        }
    }

    /// The training forward pass (`Network.forward`), which runs the
    /// channels-last direct kernel where it fits (5×5, stride 1, rows of 8
    /// or more) and im2col + sgemm where a test asks for it, against the
    /// definition: the CIFAR LeNet's two convolutions and LeNet-5's C3 with
    /// its connection table (the missing connections contribute nothing).
    @Test(.enabled(if: CPUFeatures.avx2FMA, "the direct kernel needs AVX2 and FMA"),
          arguments: [(n: 3, c: 3, h: 32, w: 32, oc: 16, table: false), (2, 16, 14, 14, 32, false), (2, 6, 14, 14, 16, true)])
    func testTrainingForwardMatchesTheDefinition(t: (n: Int, c: Int, h: Int, w: Int, oc: Int, table: Bool)) throws {
        let table = t.table ? (0..<t.oc).map { oc in [oc % t.c, (oc + 2) % t.c, (oc + 3) % t.c].sorted() } : nil
        let g = ConvGeometry(channels: t.c, height: t.h, width: t.w, kernelH: 5, kernelW: 5)
        let x = randomValues(t.n * t.c * t.h * t.w, seed: 7)
        // (The two paths may agree bit for bit: OpenBLAS's AVX-512 sgemm sums
        // each output in the direct kernel's order. Each is held to the bound.)
        var outputs: [[Float]] = []
        for direct in [nil, false] as [Bool?] {
            let conv = Conv2D("conv", inChannels: t.c, outChannels: t.oc, kernelSize: 5, table: table)
            conv.direct = direct
            #expect(conv.channelsLastForward(g) == (direct == nil))
            let net = try Network(inputShape: FeatureShape(channels: t.c, height: t.h, width: t.w), layers: [conv])
            var rng = SeededGenerator(seed: 5)
            net.parameters.initialize(using: &rng)
            conv.initialize(using: &rng)  // a table's masked weights 0
            _ = try net.input(batch: t.n).update(fromContentsOf: x)
            outputs.append(Array(UnsafeBufferPointer(start: net.forward(batch: t.n), count: t.n * t.oc * g.positions)))
            let w = net.parameters.values(of: "conv.weight") ?? [], b = net.parameters.values(of: "conv.bias") ?? []
            var reference = [Float](repeating: 0, count: t.n * t.oc * g.positions), absolute = reference
            conv2dForwardNaive(&reference, x, w, b, batch: t.n, outChannels: t.oc, g)
            conv2dForwardNaive(&absolute, x.map(abs), w.map(abs), b.map(abs), batch: t.n, outChannels: t.oc, g)
            assertWithin(outputs[outputs.count - 1], reference, "\(t), direct \(String(describing: direct))",
                         bounds: ErrorBound.sums(g.patch + 1, absolute: absolute), "(C·25 + 1)·ε·Σ|terms|")
        }
    }

    /// im2col and col2im against their definitions, element by element and
    /// exactly, for stride 1 without padding (the fast path) at LeNet's line
    /// widths (28, 10) and at others that take every part of the short-line
    /// copy (1, 3, 11, 17, 37 floats).
    @Test func testUnitStrideIm2colAndCol2imMatchTheirDefinitions() {
        let shapes = [(c: 3, h: 32, w: 32, k: 5), (c: 16, h: 14, w: 14, k: 5), (c: 2, h: 4, w: 5, k: 5),
                      (c: 2, h: 5, w: 7, k: 5), (c: 3, h: 9, w: 13, k: 3), (c: 1, h: 6, w: 21, k: 5), (c: 2, h: 3, w: 40, k: 4)]
        for (i, t) in shapes.enumerated() {
            let g = ConvGeometry(channels: t.c, height: t.h, width: t.w, kernelH: t.k, kernelW: t.k)
            let oh = g.outH, ow = g.outW, P = g.positions
            let x = randomValues(t.c * t.h * t.w, seed: UInt64(300 + i))
            var cols = [Float](repeating: .nan, count: g.patch * P)
            im2col(&cols, x, g)
            var expected = [Float](repeating: 0, count: cols.count)
            let c2 = randomValues(cols.count, seed: UInt64(400 + i))
            var back = [Float](repeating: .nan, count: x.count)
            col2im(&back, c2, g)
            var backExpected = [Float](repeating: 0, count: x.count)
            for c in 0..<t.c {
                for kh in 0..<t.k {
                    for kw in 0..<t.k {
                        let row = (c * t.k + kh) * t.k + kw
                        for a in 0..<oh {
                            for b in 0..<ow {
                                let xi = (c * t.h + a + kh) * t.w + b + kw
                                expected[row * P + a * ow + b] = x[xi]
                                backExpected[xi] += c2[row * P + a * ow + b]
                            }
                        }
                    }
                }
            }
            #expect(cols == expected, "im2col, shape \(t) (output width \(ow))")
            #expect(back == backExpected, "col2im, shape \(t) (output width \(ow))")
        }
    }

    /// col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>.
    @Test func testCol2imIsAdjointOfIm2col() {
        let g = ConvGeometry(channels: 2, height: 7, width: 6, kernelH: 3, kernelW: 2, stride: 2, padding: 1)
        let x = randomValues(g.channels * g.height * g.width, seed: 1)
        let c = randomValues(g.patch * g.positions, seed: 2)
        var cols = [Float](repeating: 0, count: c.count)
        var back = [Float](repeating: 0, count: x.count)
        im2col(&cols, x, g)
        col2im(&back, c, g)
        let lhs = zip(cols, c).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let rhs = zip(x, back).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        #expect(abs(lhs - rhs) <= (1e-9 * max(1, abs(lhs)) + 1e-5))
    }

    /// A hand-computed 1-channel case: a 3×3 input, a 2×2 kernel of ones.
    @Test func testKnownSmallConvolution() throws {
        let conv = Conv2D("c", inChannels: 1, outChannels: 1, kernelSize: 2)
        let net = try Network(inputShape: FeatureShape(channels: 1, height: 3, width: 3), layers: [conv])
        try net.parameters.setValues([1, 1, 1, 1], of: "c.weight")
        try net.parameters.setValues([0.5], of: "c.bias")
        let y = try net.predict([1, 2, 3, 4, 5, 6, 7, 8, 9])
        #expect(y == [12.5, 16.5, 24.5, 28.5])
    }

    @Test func testShapeErrorsNameTheLayer() {
        let conv1Error = #expect(throws: (any Error).self) {
            try Network(inputShape: FeatureShape(channels: 3, height: 32, width: 32),
                        layers: [Conv2D("conv1", inChannels: 1, outChannels: 6, kernelSize: 5)])
        }
        if let conv1Error { #expect("\(conv1Error)" == "conv1: expects 1 input channels, got 3 (input 3×32×32)") }
        let fc1Error = #expect(throws: (any Error).self) {
            try Network(inputShape: FeatureShape(channels: 16, height: 5, width: 5),
                        layers: [Linear("fc1", inFeatures: 800, outFeatures: 120)])
        }
        if let fc1Error { #expect("\(fc1Error)" == "fc1: expects 800 input features, got 400 (input 16×5×5)") }
    }
}

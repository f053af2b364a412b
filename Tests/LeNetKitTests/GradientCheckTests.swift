import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Central finite differences at random points against the hand-written
/// backward passes, for every layer and for the whole model with its loss.
struct GradientCheckTests: GradientCheckHarness {
    @Test func testConv2D() throws {
        let shape = FeatureShape(channels: 3, height: 8, width: 7)
        let net = try network(shape, [Conv2D("conv", inChannels: 3, outChannels: 4, kernelSize: 3)])
        try check(net, input: randomValues(2 * shape.count, seed: 1), batch: 2)
    }

    @Test func testConv2DWithStrideAndPadding() throws {
        let shape = FeatureShape(channels: 2, height: 9, width: 8)
        let net = try network(shape, [Conv2D("conv", inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: 1)])
        try check(net, input: randomValues(3 * shape.count, seed: 2), batch: 3)
        let net2 = try network(shape, [Conv2D("conv", inChannels: 2, outChannels: 2, kernelSize: 5, stride: 3, padding: 2)])
        try check(net2, input: randomValues(2 * shape.count, seed: 3), batch: 2)
    }

    @Test func testLinear() throws {
        let shape = FeatureShape(channels: 4, height: 2, width: 3)
        let net = try network(shape, [Linear("fc", inFeatures: 24, outFeatures: 7)])
        try check(net, input: randomValues(5 * 24, seed: 4), batch: 5)
    }

    /// ReLU after a linear layer, with inputs kept away from the kink at 0.
    @Test func testReLU() throws {
        let net = try network(FeatureShape(features: 20), [ReLU("relu")])
        let x = randomValues(3 * 20, seed: 5).map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }
        try check(net, input: x, batch: 3)
    }

    @Test func testTanhAndScaledTanh() throws {
        try check(try network(FeatureShape(features: 30), [Tanh("tanh")]), input: randomValues(60, seed: 6, -2, 2), batch: 2, eps: 1e-3)
        try check(try network(FeatureShape(features: 30), [Tanh.lecun("tanh")]), input: randomValues(60, seed: 7, -2, 2), batch: 2, eps: 1e-3)
    }

    /// Max pooling on values with no near-ties, so ±eps never changes the argmax.
    @Test func testMaxPool() throws {
        let shape = FeatureShape(channels: 3, height: 6, width: 8)
        let count = 2 * shape.count
        var rng = SeededGenerator(seed: 8)
        var x = (0..<count).map { Float($0) * 0.05 }
        x.shuffle(using: &rng)
        try check(try network(shape, [MaxPool2D("pool")]), input: x, batch: 2)
        try check(try network(shape, [MaxPool2D("pool", kernelSize: 3, stride: 2)]), input: x, batch: 2)
    }

    /// 2×2 pooling on odd-sized planes with ties: the maxima and, for the
    /// gradient, the first maximum in scan order, as PyTorch routes it,
    /// against a direct loop; the last row and column get no gradient.
    /// Rows of 6 windows take both the four-window and the one-window path.
    @Test func testMaxPool2x2TiesAndOddSizes() throws {
        let (C, H, W, n, OH, OW) = (2, 7, 13, 3, 3, 6)
        let shape = FeatureShape(channels: C, height: H, width: W)
        let net = try network(shape, [MaxPool2D("pool")])
        #expect(net.outputShape == FeatureShape(channels: C, height: OH, width: OW))
        // Values from a small set, so most windows hold ties (zeros among them, as after a ReLU).
        var rng = SeededGenerator(seed: 21)
        let x = (0..<(n * shape.count)).map { _ in Float(Int.random(in: -1...2, using: &rng)) }
        let dy = (0..<(n * C * OH * OW)).map { Float($0 + 1) }
        _ = try net.input(batch: n).update(fromContentsOf: x)
        let y = net.forward(batch: n)
        _ = try net.outputGradient(batch: n).update(fromContentsOf: dy)
        net.backward(batch: n, inputGradient: true)
        var expectedDx = [Float](repeating: 0, count: x.count)
        for plane in 0..<(n * C) {
            for i in 0..<OH {
                for j in 0..<OW {
                    var at = plane * H * W + 2 * i * W + 2 * j
                    for (di, dj) in [(0, 1), (1, 0), (1, 1)] {
                        let k = plane * H * W + (2 * i + di) * W + 2 * j + dj
                        if x[k] > x[at] { at = k }
                    }
                    let o = (plane * OH + i) * OW + j
                    #expect(y[o] == x[at], "maximum of window \(o)")
                    expectedDx[at] += dy[o]
                }
            }
        }
        #expect(Array(UnsafeBufferPointer(start: net.inputGradient, count: x.count)) == expectedDx)
        // The plane kernel overwrites its rows whole, whatever they held.
        var dx = [Float](repeating: .nan, count: H * W)
        maxPool2x2Backward(&dx, dy, x, W: W, OH: OH, OW: OW)
        #expect(Array(dx[0..<2 * OH * W]) == Array(expectedDx[0..<2 * OH * W]))
    }

    @Test func testSoftmaxCrossEntropyThroughLinear() throws {
        let net = try network(FeatureShape(features: 12), [Linear("fc", inFeatures: 12, outFeatures: 5)])
        try check(net, input: randomValues(4 * 12, seed: 9), batch: 4, labels: [0, 4, 2, 2])
    }

    /// The whole CIFAR LeNet architecture with its loss, each tensor checked
    /// along a random direction d: (L(p + εd) − L(p − εd)) / 2ε against Σ g·d.
    ///
    /// Its ReLUs are swapped for tanh here: at random points a few of the
    /// network's 168+ hidden pre-activations sit within ε of ReLU's kink (seen:
    /// 1.4e-5 and 8.8e-7), where a difference quotient means nothing. ReLU has
    /// its own check above, and the exact ReLU network is held to PyTorch's
    /// gradients in PyTorchReferenceTests.
    @Test func testWholeCIFARLeNetWithLoss() throws {
        let net = try network(FeatureShape(channels: 3, height: 32, width: 32), [
            Conv2D("conv1", inChannels: 3, outChannels: 16, kernelSize: 5), Tanh(), MaxPool2D(),
            Conv2D("conv2", inChannels: 16, outChannels: 32, kernelSize: 5), Tanh(), MaxPool2D(),
            Linear("fc1", inFeatures: 800, outFeatures: 120), Tanh(),
            Linear("fc2", inFeatures: 120, outFeatures: 84), Tanh(),
            Linear("fc3", inFeatures: 84, outFeatures: 10),
        ], seed: 11)
        let n = 2
        let x = randomValues(n * 3 * 32 * 32, seed: 10)
        let labels: [Int32] = [3, 7]
        let loss = SoftmaxCrossEntropy(classes: 10)
        net.parameters.zeroGradients()
        _ = try value(net, x, n, labels: labels)
        _ = try loss.forward(net.activation(after: net.layers.count - 1), labels, batch: n)
        loss.backward(try net.outputGradient(batch: n))
        net.backward(batch: n, inputGradient: true)
        let g = Array(net.parameters.gradients)
        let gx = Array(UnsafeBufferPointer(start: net.inputGradient, count: x.count))
        // Small steps keep the probe off max-pool's ties; the loss is
        // evaluated in Double so they still resolve the slope.
        let eps: Float = 1e-3
        let p = net.parameters.values
        for (k, e) in net.parameters.entries.enumerated() {
            let d = randomValues(e.count, seed: UInt64(50 + k))
            let saved = Array(p[e.offset..<e.offset + e.count])
            var analytic = 0.0
            for i in 0..<e.count { analytic += Double(g[e.offset + i]) * Double(d[i]) }
            for i in 0..<e.count { p[e.offset + i] = saved[i] + eps * d[i] }
            let plus = try value(net, x, n, labels: labels)
            for i in 0..<e.count { p[e.offset + i] = saved[i] - eps * d[i] }
            let minus = try value(net, x, n, labels: labels)
            for i in 0..<e.count { p[e.offset + i] = saved[i] }
            let numeric = (plus - minus) / Double(2 * eps)
            #expect(abs(analytic - numeric) <= (1e-2 * abs(numeric) + 2e-4), "\(e.name) along a random direction")
        }
        let d = randomValues(x.count, seed: 99)
        let analytic = zip(gx, d).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let plus = try value(net, zip(x, d).map { $0 + eps * $1 }, n, labels: labels)
        let minus = try value(net, zip(x, d).map { $0 - eps * $1 }, n, labels: labels)
        let numeric = (plus - minus) / Double(2 * eps)
        #expect(abs(analytic - numeric) <= (1e-2 * abs(numeric) + 2e-4), "input along a random direction")
    }

    /// The softmax cross-entropy on known logits: log(1 + e) − 1 for [1, 0] with label 1... and stable for large logits.
    @Test func testLossValuesAndStability() throws {
        let loss = SoftmaxCrossEntropy(classes: 2)
        let logits: [Float] = [0, 1, 1000, 0]
        let labels: [Int32] = [1, 0]
        let value = try loss.forward(logits, labels, batch: 2)
        // sample 0: log(1 + e) − 1; sample 1: ≈ 0 (no overflow at 1000)
        #expect(abs(Double(value) - ((log(1 + M_E) - 1) / 2)) <= 1e-6)
        var d = [Float](repeating: 0, count: 4)
        d.withUnsafeMutableBufferPointer { loss.backward($0) }
        let p1 = Float(M_E / (1 + M_E))
        #expect(abs(d[0] - ((1 - p1) / 2)) <= 1e-6)
        #expect(abs(d[1] - ((p1 - 1) / 2)) <= 1e-6)
        #expect(abs(d[2] - 0) <= 1e-6)
        #expect(!(d.contains { $0.isNaN }))
        let pointerError = #expect(throws: (any Error).self) { try loss.forward(logits, [0, 2], batch: 2) }
        if let pointerError { #expect("\(pointerError)" == "loss: label 2 of sample 1 is outside 0..<2") }
        // The array form: the same loss, bitwise (the same sums), and the same errors.
        #expect(try loss.forward(logits, labels: [1, 0]) == value)
        let negativeError = #expect(throws: (any Error).self) { try loss.forward(logits, labels: [0, -1]) }
        if let negativeError { #expect("\(negativeError)" == "loss: label -1 of sample 1 is outside 0..<2") }
        let overflowError = #expect(throws: (any Error).self) { try loss.forward(logits, labels: [Int(Int32.max) + 1, 0]) }
        if let overflowError { #expect("\(overflowError)" == "loss: label 2147483648 of sample 0 is outside 0..<2") }
    }
}

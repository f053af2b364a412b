import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// LeNetKit against PyTorch: Scripts/make_reference.py ran the same network
/// on the same weights and inputs and stored what PyTorch computed.
struct PyTorchReferenceTests {
    /// Logits, loss, every parameter's gradient, and the weights after 3 Adam
    /// steps of the PyTorch tutorial's CIFAR-10 LeNet, batch 4.
    ///
    /// Bounds (`ErrorBound`): the forward pass sums conv1 75 (3·5·5), conv2
    /// 400 (16·5·5), fc1 800, fc2 120 and fc3 84 terms; the loss adds the
    /// log-sum-exp over 10 classes and the mean over 4; the gradients add the
    /// input gradients back through fc3 (10), fc2 (84), fc1 (120) and conv2
    /// (32·5·5 = 800), and their own sum over the batch, longest for conv1's
    /// weights (4·28·28 = 3136 positions).
    ///
    /// Adam is checked on PyTorch's own gradients: where a gradient is about
    /// 0, Adam's step is about lr·sign(g) whatever its size, so a rounding
    /// difference in g of 1e-9 can move a weight by up to 2·lr. Each step t
    /// here compares our gradient at our weights with PyTorch's (the weights
    /// agree to Adam's rounding, far below the gradient bound's effect), then
    /// gives our Adam PyTorch's gradient, so the weights after 3 steps differ
    /// by Adam's own rounding only: per step, one rounding of each weight
    /// (ε·|w|) and a few of the step itself (16·ε·lr bounds the moments',
    /// the square root's, the quotient's and the product's, the step being at
    /// most lr·|m̂/√v̂| ≤ 1.01·lr in the first 3 steps).
    @Test func testCIFARLeNetMatchesPyTorch() throws {
        let forwardK = 75 + 400 + 800 + 120 + 84
        _ = try compareWithPyTorch("cifar_lenet_reference", try Models.cifarLeNet(), forwardK: forwardK,
                                   backwardK: 10 + 84 + 120 + 800 + 3136)
    }

    /// The same for LeNet-5 (Scripts/make_reference.py's replica: C3's table
    /// as a weight mask, subsampling as avg_pool2d·4·w + b, 1.7159·tanh(2x/3)).
    ///
    /// Bounds: the forward pass sums c1 25, s2 4, c3 at most 150 (6 maps ×
    /// 25), s4 4, c5 400, f6 120 and output 84 terms, and each of the six
    /// squashing layers adds at most 5ε relative (TanhTests), counted as 5
    /// terms each. The gradients come back through output (10), f6 (84), c5
    /// (120 maps reach each input), c3 (at most 16 maps × 25 taps), the
    /// squashing layers' derivatives (5 each), and c1's weight gradient sums
    /// 4·28·28 = 3136 positions.
    ///
    /// C3's 60 missing connections (900 weights) are 0 in PyTorch's
    /// gradient and after its Adam steps, and exactly 0 here too.
    @Test func testLeNet5MatchesPyTorch() throws {
        let tanhTerms = 6 * 5
        let net = try compareWithPyTorch("lenet5_reference", try Models.lenet5(),
                                         forwardK: 25 + 4 + 150 + 4 + 400 + 120 + 84 + tanhTerms,
                                         backwardK: 10 + 84 + 120 + 400 + tanhTerms + 3136)
        let ref = try loadFixture("lenet5_reference")
        let weights = net.parameters.values(of: "c3.weight") ?? []
        let pytorch = try tensor(ref, "adam3.c3.weight"), gradient = try tensor(ref, "grad.c3.weight")
        var masked = 0
        for (oc, row) in Conv2D.lecunC3Table.enumerated() {
            for c in 0..<6 where !row.contains(c) {
                for k in 0..<25 {
                    let i = (oc * 6 + c) * 25 + k
                    #expect(weights[i] == 0, "c3.weight[\(oc), \(c)]")
                    #expect(pytorch[i] == 0)
                    #expect(gradient[i] == 0)
                    masked += 1
                }
            }
        }
        #expect(masked == 900)
    }

    /// One network against a fixture of Scripts/make_reference.py: logits,
    /// loss, every parameter's gradient, the gradients of Adam's second and
    /// third steps, and the weights after 3 Adam steps, each within its bound.
    /// - Parameters:
    ///   - forwardK: the forward pass's reduction lengths, added up.
    ///   - backwardK: what the backward pass adds to them.
    /// - Returns: the network after the 3 steps.
    func compareWithPyTorch(_ fixture: String, _ net: Network, forwardK: Int, backwardK: Int) throws -> Network {
        let ref = try loadFixture(fixture)
        let n = 4
        try FixedValues.fill(net.parameters)
        let x = FixedValues.values(n * net.inputShape.count, salt: 1000, bound: 1)
        let labels = try tensor(ref, "labels").map { Int32($0) }
        #expect(labels == FixedValues.labels(n, salt: 2000, classes: 10))
        let loss = SoftmaxCrossEntropy(classes: 10)
        let lossK = forwardK + 10 + 4
        let gradientK = lossK + backwardK

        func step() throws -> (logits: [Float], loss: Float) {
            _ = try net.input(batch: n).update(fromContentsOf: x)
            let logits = net.forward(batch: n)
            let value = try loss.forward(logits, labels, batch: n)
            net.parameters.zeroGradients()
            loss.backward(try net.outputGradient(batch: n))
            net.backward(batch: n)
            return (Array(UnsafeBufferPointer(start: logits, count: n * 10)), value)
        }
        var report: [String] = []
        func compareGradients(_ prefix: String) throws {
            for e in net.parameters.entries {
                let expected = try tensor(ref, prefix + e.name)
                let d = assertWithin(net.parameters.gradient(of: e.name) ?? [], expected, prefix + e.name,
                                     bound: ErrorBound.reduction(gradientK, of: expected), "ε·\(gradientK)·max|g|")
                report.append("\(prefix + e.name) \(d)")
            }
        }

        let (logits, value) = try step()
        let refLogits = try tensor(ref, "logits"), refLoss = try tensor(ref, "loss")
        report.append("logits \(assertWithin(logits, refLogits, "logits", bound: ErrorBound.reduction(forwardK, of: refLogits), "ε·\(forwardK)·max|z|"))")
        report.append("loss \(assertWithin([value], refLoss, "loss", bound: ErrorBound.reduction(lossK, of: refLoss), "ε·\(lossK)·loss"))")
        try compareGradients("grad.")

        try FixedValues.fill(net.parameters)
        let lr: Float = 1e-3
        let adam = try Adam(parameters: net.parameters, learningRate: lr)
        for t in 0..<3 {
            let prefix = t == 0 ? "grad." : "adam_grad\(t)."
            if t > 0 {
                _ = try step()
                try compareGradients(prefix)
            }
            for e in net.parameters.entries {
                let g = try tensor(ref, prefix + e.name)
                #expect(g.count == e.count)
                _ = UnsafeMutableBufferPointer(rebasing: net.parameters.gradients[e.offset..<e.offset + e.count]).update(fromContentsOf: g)
            }
            adam.step()
        }
        // (A masked layer's missing weights, which FixedValues.fill set, went
        // back to 0 in step 2's forward pass, and a 0 gradient keeps them there.)
        for e in net.parameters.entries {
            let expected = try tensor(ref, "adam3." + e.name)
            let magnitude = expected.reduce(0) { max($0, abs($1)) }
            let bound = 3 * (ErrorBound.epsilon * magnitude + 16 * ErrorBound.epsilon * lr)
            let d = assertWithin(net.parameters.values(of: e.name) ?? [], expected, "adam3." + e.name,
                                 bound: bound, "3 steps × (ε·max|w| + 16·ε·lr)")
            report.append("adam3.\(e.name) \(d)")
        }
        print("\(fixture): max abs difference against PyTorch:\n  " + report.joined(separator: "\n  "))
        return net
    }

    /// SGD with momentum and weight decay, Nesterov SGD, Adam with weight
    /// decay and AdamW, 3 steps each on a tiny network, against torch.optim.
    @Test func testOptimizersMatchPyTorch() throws {
        let ref = try loadFixture("optimizers_reference")
        let labels = try tensor(ref, "labels").map { Int32($0) }
        let x = FixedValues.values(4 * 6, salt: 3000, bound: 1)
        let recipes: [(String, (ParameterStore) throws -> any Optimizer)] = [
            ("sgd", { try SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01) }),
            ("nesterov", { try SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, nesterov: true) }),
            ("adamwd", { try Adam(parameters: $0, learningRate: 0.01, weightDecay: 0.01) }),
            ("adamw", { try Adam(parameters: $0, learningRate: 0.01, weightDecay: 0.1, decoupled: true) }),
        ]
        for (key, make) in recipes {
            let net = try Network(inputShape: FeatureShape(features: 6), layers: [
                Linear("fc1", inFeatures: 6, outFeatures: 5), ReLU(), Linear("fc2", inFeatures: 5, outFeatures: 3),
            ])
            try FixedValues.fill(net.parameters)
            let optimizer = try make(net.parameters)
            let loss = SoftmaxCrossEntropy(classes: 3)
            for _ in 0..<3 {
                _ = try net.input(batch: 4).update(fromContentsOf: x)
                _ = try loss.forward(net.forward(batch: 4), labels, batch: 4)
                net.parameters.zeroGradients()
                loss.backward(try net.outputGradient(batch: 4))
                net.backward(batch: 4)
                optimizer.step()
            }
            for e in net.parameters.entries {
                assertClose(net.parameters.values(of: e.name) ?? [], try tensor(ref, "\(key).\(e.name)"),
                            "\(key).\(e.name)", atol: 1e-6, rtol: 1e-5)
            }
        }
    }
}

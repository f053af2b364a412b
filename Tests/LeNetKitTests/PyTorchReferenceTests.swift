import XCTest
@testable import LeNetKit

/// LeNetKit against PyTorch: Scripts/make_reference.py ran the same network
/// on the same weights and inputs and stored what PyTorch computed.
final class PyTorchReferenceTests: XCTestCase {
    /// Logits, loss, every parameter's gradient, and the weights after 3 Adam
    /// steps of the seed's CIFAR LeNet, batch 4.
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
    func testCIFARLeNetMatchesPyTorch() throws {
        let ref = try loadFixture("cifar_lenet_reference")
        let n = 4
        let net = try Models.cifarLeNet()
        try FixedValues.fill(net.parameters)
        let x = FixedValues.values(n * 3 * 32 * 32, salt: 1000, bound: 1)
        let labels = try tensor(ref, "labels").map { Int32($0) }
        XCTAssertEqual(labels, FixedValues.labels(n, salt: 2000, classes: 10))
        let loss = SoftmaxCrossEntropy(classes: 10)
        let forwardK = 75 + 400 + 800 + 120 + 84
        let lossK = forwardK + 10 + 4
        let gradientK = lossK + 10 + 84 + 120 + 800 + 3136

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
                XCTAssertEqual(g.count, e.count)
                _ = UnsafeMutableBufferPointer(rebasing: net.parameters.gradients[e.offset..<e.offset + e.count]).update(fromContentsOf: g)
            }
            adam.step()
        }
        for e in net.parameters.entries {
            let expected = try tensor(ref, "adam3." + e.name)
            let magnitude = expected.reduce(0) { max($0, abs($1)) }
            let bound = 3 * (ErrorBound.epsilon * magnitude + 16 * ErrorBound.epsilon * lr)
            let d = assertWithin(net.parameters.values(of: e.name) ?? [], expected, "adam3." + e.name,
                                 bound: bound, "3 steps × (ε·max|w| + 16·ε·lr)")
            report.append("adam3.\(e.name) \(d)")
        }
        print("max abs difference against PyTorch:\n  " + report.joined(separator: "\n  "))
    }

    /// SGD with momentum and weight decay, Nesterov SGD, Adam with weight
    /// decay and AdamW, 3 steps each on a tiny network, against torch.optim.
    func testOptimizersMatchPyTorch() throws {
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

import XCTest
@testable import LeNetKit

/// LeNetKit against PyTorch: Scripts/make_reference.py ran the same network
/// on the same weights and inputs and stored what PyTorch computed.
final class PyTorchReferenceTests: XCTestCase {
    /// Logits, loss, every parameter's gradient, and the weights after 3 Adam
    /// steps of the seed's CIFAR LeNet, batch 4.
    func testCIFARLeNetMatchesPyTorch() throws {
        let ref = try loadFixture("cifar_lenet_reference")
        let n = 4
        let net = Models.cifarLeNet()
        try FixedValues.fill(net.parameters)
        let x = FixedValues.values(n * 3 * 32 * 32, salt: 1000, bound: 1)
        let labels = try tensor(ref, "labels").map { Int32($0) }
        XCTAssertEqual(labels, FixedValues.labels(n, salt: 2000, classes: 10))
        let loss = SoftmaxCrossEntropy(classes: 10)

        func step() throws -> (logits: [Float], loss: Float) {
            _ = net.input(batch: n).update(fromContentsOf: x)
            let logits = net.forward(batch: n)
            let value = try loss.forward(logits, labels, batch: n)
            net.parameters.zeroGradients()
            loss.backward(net.outputGradient(batch: n))
            net.backward(batch: n)
            return (Array(UnsafeBufferPointer(start: logits, count: n * 10)), value)
        }

        let (logits, value) = try step()
        var report: [String] = []
        report.append("logits \(assertClose(logits, try tensor(ref, "logits"), "logits", atol: 1e-5, rtol: 1e-4))")
        report.append("loss \(assertClose([value], try tensor(ref, "loss"), "loss", atol: 1e-6, rtol: 1e-5))")
        for e in net.parameters.entries {
            let d = assertClose(net.parameters.gradient(of: e.name) ?? [], try tensor(ref, "grad." + e.name),
                                "grad.\(e.name)", atol: 1e-6, rtol: 1e-3)
            report.append("grad.\(e.name) \(d)")
        }

        // 3 Adam steps from the same start, on the same batch. Where a
        // gradient is ~0, Adam's m/√v turns a 1e-9 difference into a visible
        // one (its step is lr·sign(g)), hence atol 1e-5 = 1% of lr.
        try FixedValues.fill(net.parameters)
        let adam = Adam(parameters: net.parameters, learningRate: 1e-3)
        for _ in 0..<3 {
            _ = try step()
            adam.step()
        }
        for e in net.parameters.entries {
            let d = assertClose(net.parameters.values(of: e.name) ?? [], try tensor(ref, "adam3." + e.name),
                                "adam3.\(e.name)", atol: 1e-5, rtol: 1e-4)
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
        let recipes: [(String, (ParameterStore) -> any Optimizer)] = [
            ("sgd", { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01) }),
            ("nesterov", { SGD(parameters: $0, learningRate: 0.1, momentum: 0.9, nesterov: true) }),
            ("adamwd", { Adam(parameters: $0, learningRate: 0.01, weightDecay: 0.01) }),
            ("adamw", { Adam(parameters: $0, learningRate: 0.01, weightDecay: 0.1, decoupled: true) }),
        ]
        for (key, make) in recipes {
            let net = try Network(inputShape: FeatureShape(features: 6), layers: [
                Linear("fc1", inFeatures: 6, outFeatures: 5), ReLU(), Linear("fc2", inFeatures: 5, outFeatures: 3),
            ])
            try FixedValues.fill(net.parameters)
            let optimizer = make(net.parameters)
            let loss = SoftmaxCrossEntropy(classes: 3)
            for _ in 0..<3 {
                _ = net.input(batch: 4).update(fromContentsOf: x)
                _ = try loss.forward(net.forward(batch: 4), labels, batch: 4)
                net.parameters.zeroGradients()
                loss.backward(net.outputGradient(batch: 4))
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

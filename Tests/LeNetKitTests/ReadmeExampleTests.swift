import Foundation
import Testing
import LeNetKit  // not @testable: the README's example uses the public API only

/// The README's "one training step" example, verbatim, so it keeps compiling and working.
struct ReadmeExampleTests {
    @Test func testOneTrainingStep() throws {
        let net = try Models.cifarLeNet(seed: 0)
        let adam = try Adam(parameters: net.parameters, learningRate: 1e-3)
        let loss = SoftmaxCrossEntropy(classes: 10)

        let n = 36
        let images = [Float](repeating: 0.1, count: n * 3 * 32 * 32)      // (N, C, H, W), normalized
        let labels = [Int32](repeating: 3, count: n)                        // (N)
        _ = try net.input(batch: n).update(fromContentsOf: images)
        let logits = net.forward(batch: n)                                  // (N, 10)
        let value = try loss.forward(logits, labels, batch: n)
        net.parameters.zeroGradients()
        loss.backward(try net.outputGradient(batch: n))
        net.backward(batch: n)
        adam.step()

        // Identical images and labels: the step must lower that loss.
        let again = try loss.forward(net.forward(batch: n), labels, batch: n)
        #expect(again < value)
        #expect(abs(value - Float(log(10.0))) <= 0.2)  // near-uniform at initialization
    }
}

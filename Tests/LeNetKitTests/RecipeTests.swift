import Foundation
import Testing
@testable import LeNetKit

/// The pieces of the training recipes against what PyTorch computes
/// (Fixtures/recipe_reference.safetensors, from Scripts/make_recipe_reference.py):
/// label smoothing, the one-cycle schedule, warm-up before cosine annealing.
struct RecipeTests {
    /// `nn.CrossEntropyLoss(label_smoothing: α)` and its gradient, for
    /// α = 0, 0.1, 0.3, on 7 rows of logits up to about 20 in size.
    ///
    /// Bounds: PyTorch's figures are float64; ours are float32 sums of K
    /// terms (the softmax's, and Σ q·z), each within K·ε of the sum of the
    /// absolute terms: the loss per row within (K + 2)·ε·max|z| (the two
    /// sums and log-sum-exp's shift), the gradient's entries within
    /// K·ε·1/N (probabilities are at most 1; the mean divides by N).
    @Test(arguments: ["0.0", "0.1", "0.3"])
    func testLabelSmoothingIsPyTorchs(_ alpha: String) throws {
        let fixture = try loadFixture("recipe_reference")
        let logits = try tensor(fixture, "smoothing.logits"), labels = try tensor(fixture, "smoothing.labels")
        let n = labels.count, K = 10
        let loss = SoftmaxCrossEntropy(classes: K, smoothing: Float(alpha) ?? -1)
        let value = try logits.withUnsafeBufferPointer { z in
            try loss.forward(z.baseAddress!, labels: labels.map { Int($0) })
        }
        let magnitude = logits.map(abs).max() ?? 0
        let expected = try tensor(fixture, "smoothing.\(alpha).loss")[0]
        #expect(abs(value - expected) <= ErrorBound.reduction(K + 2, magnitude: magnitude), "loss \(value) vs \(expected)")
        var gradient = [Float](repeating: 0, count: n * K)
        gradient.withUnsafeMutableBufferPointer { loss.backward($0) }
        let bound = ErrorBound.reduction(K, magnitude: 1) / Float(n)
        _ = assertClose(gradient, try tensor(fixture, "smoothing.\(alpha).grad"), "dloss/dlogits, α = \(alpha)", atol: bound, rtol: 0)
    }

    /// α = 0 is the plain loss, bitwise: the same operations on the same numbers.
    @Test func testNoSmoothingIsThePlainLoss() throws {
        let logits = randomValues(5 * 10, seed: 4, -6, 6), labels = [3, 0, 9, 9, 2]
        let plain = SoftmaxCrossEntropy(classes: 10), zero = SoftmaxCrossEntropy(classes: 10, smoothing: 0)
        let a = try logits.withUnsafeBufferPointer { try plain.forward($0.baseAddress!, labels: labels) }
        let b = try logits.withUnsafeBufferPointer { try zero.forward($0.baseAddress!, labels: labels) }
        #expect(a.bitPattern == b.bitPattern)
        var ga = [Float](repeating: 0, count: 50), gb = [Float](repeating: 0, count: 50)
        ga.withUnsafeMutableBufferPointer { plain.backward($0) }
        gb.withUnsafeMutableBufferPointer { zero.backward($0) }
        #expect(ga.map(\.bitPattern) == gb.map(\.bitPattern))
        // And smoothing moves the loss toward the mean over classes:
        // loss_α = (1 − α)·loss_0 + α·mean_k(−log p_k), per row.
        let smooth = SoftmaxCrossEntropy(classes: 10, smoothing: 0.2)
        let c = try logits.withUnsafeBufferPointer { try smooth.forward($0.baseAddress!, labels: labels) }
        var uniform = 0.0
        for s in 0..<5 {
            let z = logits[s * 10..<(s + 1) * 10].map(Double.init), m = z.max() ?? 0
            let lse = log(z.map { exp($0 - m) }.reduce(0, +)) + m
            uniform += z.map { lse - $0 }.reduce(0, +) / 10
        }
        let expected = 0.8 * Double(a) + 0.2 * uniform / 5
        #expect(abs(Double(c) - expected) <= Double(ErrorBound.reduction(12, magnitude: 6)))
    }

    /// `OneCycleLR(max_lr: 0.004, total_steps: 137, cycle_momentum: False)`,
    /// step by step. Both compute the same Double formula and round it to
    /// float32 (PyTorch stores its float64 rates as float32 in the fixture),
    /// so they agree within a float32 rounding or two of the rate.
    @Test func testOneCycleIsPyTorchs() throws {
        let expected = try tensor(try loadFixture("recipe_reference"), "onecycle.lr")
        var options = TrainingOptions()
        options.schedule = .onecycle
        options.learningRate = 0.004
        options.epochs = 1
        let rates = (0..<137).map { options.learningRate(atStep: $0, stepsPerEpoch: 137) }
        for (t, (ours, theirs)) in zip(rates, expected).enumerated() {
            #expect(abs(ours - theirs) <= 2 * theirs.ulp, "step \(t): \(ours) vs \(theirs)")
        }
        #expect(rates.first == Float(Double(options.learningRate) / 25))
        // The peak, 0.3·T − 1 = 40.1, falls between steps: step 40 is just under it.
        #expect(rates.max() == rates[40] && rates[40] < 0.004 && rates[40] > 0.004 * 0.9999)
        // Past the last step it stays at the last rate.
        #expect(options.learningRate(atStep: 500, stepsPerEpoch: 137) == rates.last)
    }

    /// 10 steps of linear warm-up, then cosine annealing over the 20 left,
    /// as PyTorch's `SequentialLR(LinearLR, CosineAnnealingLR)`.
    @Test func testWarmupThenCosineIsPyTorchs() throws {
        let expected = try tensor(try loadFixture("recipe_reference"), "warmup_cosine.lr")
        var options = TrainingOptions()
        options.schedule = .cosine
        options.learningRate = 0.002
        options.epochs = 3
        options.warmupEpochs = 1
        try options.validate()
        for t in 0..<30 {
            let ours = options.learningRate(atStep: t, stepsPerEpoch: 10)
            // PyTorch's cosine is recursive (each step from the last): its
            // float64 drift over 20 steps is far below a float32 rounding.
            #expect(abs(ours - expected[t]) <= 2 * expected[t].ulp, "step \(t): \(ours) vs \(expected[t])")
        }
        // Warm-up with constant and step schedules: the ramp, then as without it.
        options.schedule = .step
        options.stepEpochs = 2
        #expect(options.learningRate(atStep: 4, stepsPerEpoch: 10) == Float(0.002 * 5.0 / 10))
        #expect(options.learningRate(atStep: 12, stepsPerEpoch: 10) == 0.002)
        #expect(options.learningRate(atStep: 21, stepsPerEpoch: 10) == options.learningRate * options.stepGamma)
    }

    @Test func testRecipeOptionsAreChecked() {
        var options = TrainingOptions()
        options.labelSmoothing = 1
        assertError("TrainingOptions.labelSmoothing", "[0, 1)") { try options.validate() }
        options.labelSmoothing = 0.1
        options.schedule = .onecycle
        options.warmupEpochs = 2
        assertError("TrainingOptions.warmupEpochs", "onecycle") { try options.validate() }
        options.schedule = .cosine
        options.warmupEpochs = 10
        assertError("TrainingOptions.warmupEpochs", "fewer than the 10 epochs") { try options.validate() }
    }
}

import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

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

    /// Flip test-time augmentation: each image's prediction is the mean of
    /// its and its mirror's softmax, computed here one image at a time with
    /// `predict` (the same layers, other batches: logits within the forward
    /// chain's bound; a probability moves at most as much as a logit).
    @Test func testFlipTestTimeAugmentationAveragesTheMirror() throws {
        let net = try TrainingTests.smallNetwork(seed: 3)
        let data = try TrainingTests.squares(count: 40, seed: 12)
        let tta = try net.evaluate(on: data, normalization: .half, batchSize: 16, threads: 2, keepsLogits: true,
                                   testTimeAugmentation: .flip)
        let K = 10, size = data.imageSize
        var correct = 0, loss = 0.0, worst: Float = 0
        for i in 0..<data.count {
            let bytes = Array(data.images[i * size..<(i + 1) * size])
            let image = bytes.map { (Float($0) / 255 - 0.5) / 0.5 }
            var mirror = image
            for c in 0..<3 { for h in 0..<32 { for w in 0..<32 { mirror[c * 1024 + h * 32 + w] = image[c * 1024 + h * 32 + 31 - w] } } }
            let a = try net.predict(image), b = try net.predict(mirror)
            func softmax(_ z: [Float]) -> [Double] {
                let m = Double(z.max() ?? 0), e = z.map { exp(Double($0) - m) }, s = e.reduce(0, +)
                return e.map { $0 / s }
            }
            let p = zip(softmax(a), softmax(b)).map { ($0 + $1) / 2 }
            let best = p.indices.max { p[$0] < p[$1] } ?? 0
            if best == Int(data.labels[i]) { correct += 1 }
            loss -= log(p[Int(data.labels[i])])
            for k in 0..<K { worst = max(worst, abs(Float(p[k]) - expf(tta.logits[i * K + k]))) }
        }
        // The small network: 75 + 100 terms on the way to a logit, of at most a few units.
        let bound = ErrorBound.reduction(75 + 100, magnitude: 8)
        #expect(worst <= bound, "probabilities differ by \(worst), bound \(bound)")
        #expect(tta.correct == correct)
        #expect(abs(tta.loss - loss / Double(data.count)) <= Double(bound) * 4)
        // The mirror view is read mirrored: fillMirrored gives image i's columns reversed.
        var x = [Float](repeating: 0, count: size), plain = x, y = [Int32](repeating: 0, count: 1)
        data.fillMirrored(batch: [5], normalization: .half, into: &x, labels: &y)
        #expect(y[0] == Int32(data.labels[5]))
        data.fill(batch: [5], normalization: .half, into: &plain, labels: &y)
        let mirroredBack = (0..<size).map { (i: Int) -> Float in
            let row = i / 32, column = i % 32
            return plain[row * 32 + 31 - column]
        }
        #expect(x == mirroredBack)
    }

    /// On images that are their own mirror, flip TTA predicts what one view does.
    @Test func testFlipOnSymmetricImagesChangesNothing() throws {
        let net = try TrainingTests.smallNetwork(seed: 5)
        var images = [UInt8](repeating: 0, count: 20 * 3072)
        var rng = SeededGenerator(seed: 2)
        for n in 0..<20 { for c in 0..<3 { for h in 0..<32 { for w in 0..<16 {
            let v = UInt8(truncatingIfNeeded: rng.next())
            images[n * 3072 + c * 1024 + h * 32 + w] = v
            images[n * 3072 + c * 1024 + h * 32 + 31 - w] = v
        } } } }
        let data = try ImageDataset(name: "mirrors", channels: 3, height: 32, width: 32, images: images,
                                    labels: (0..<20).map { UInt8($0 % 10) }, classNames: (0..<10).map { "c\($0)" })
        let one = try net.evaluate(on: data, normalization: .half, keepsLogits: true)
        let two = try net.evaluate(on: data, normalization: .half, keepsLogits: true, testTimeAugmentation: .flip)
        #expect(one.confusion == two.confusion)
        #expect(abs(one.loss - two.loss) <= Double(ErrorBound.reduction(75 + 100, magnitude: 8)))
    }

    /// A time budget ends `fit` by one of its two rules (the fitted
    /// schedule is done, or the budget is spent), with a checkpoint that
    /// records both the schedule's length and the seconds spent; resumed
    /// with the same budget, there is nothing left to train.
    @Test func testTimeBudgetStopsAndResumes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lenetkit-budget-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let train = try TrainingTests.squares(count: 200, seed: 1), test = try TrainingTests.squares(count: 50, seed: 2)
        var options = TrainingOptions()
        options.batchSize = 10
        options.schedule = .onecycle
        options.timeBudget = 1.5
        options.threads = 1
        let trainer = try Trainer(network: try TrainingTests.smallNetwork(), dataset: train, options: options)
        let path = dir.appendingPathComponent("b.safetensors").path
        var epochs: [EpochResult] = []
        let outcome = try trainer.fit(test: test, checkpoint: path, epochEnd: { epochs.append($0) })
        #expect(outcome == .finished)
        let steps = try #require(trainer.scheduleSteps)
        // The budget rule stops when the seconds spent plus those kept for
        // the last epoch's end reach it. What is kept is the epoch end before
        // (evaluation, checkpoint write, the caller's report), recorded as
        // `budgetReserve`; an evaluation's own seconds leave out the
        // checkpoint's write and can be far less (CI saw 1.479 s spent with
        // evaluations under 21 ms). Both recorded figures are taken after the
        // decision and neither can shrink, so their sum bounds it from above.
        let reserve = try #require(trainer.budgetReserve)
        #expect(trainer.optimizer.stepCount == steps || trainer.budgetSecondsUsed + reserve >= 1.5,
                "stopped at step \(trainer.optimizer.stepCount) of \(steps) after \(trainer.budgetSecondsUsed) s, \(reserve) s kept")
        #expect(trainer.optimizer.stepCount <= steps)
        #expect(trainer.budgetSecondsUsed > 0)
        #expect(!epochs.isEmpty && epochs.allSatisfy { $0.evaluation != nil })
        #expect(epochs.dropLast().allSatisfy { $0.isComplete })

        let resumed = try Trainer(network: try TrainingTests.smallNetwork(seed: 9), dataset: train, options: options)
        try resumed.resume(from: path)
        #expect(resumed.scheduleSteps == steps)
        #expect(resumed.budgetSecondsUsed.bitPattern == trainer.budgetSecondsUsed.bitPattern)
        // What the budget kept for the last evaluation comes back too: without
        // it a run stopped by the budget rule (not the schedule's end) took
        // one more step when resumed on a loaded machine.
        #expect(trainer.budgetReserve != nil && resumed.budgetReserve?.bitPattern == trainer.budgetReserve?.bitPattern)
        #expect(resumed.optimizer.stepCount == trainer.optimizer.stepCount)
        // The budget is spent (or the schedule done): no step is taken, one evaluation reported.
        var after: [EpochResult] = []
        #expect(try resumed.fit(test: test, epochEnd: { after.append($0) }) == .finished)
        #expect(resumed.optimizer.stepCount == trainer.optimizer.stepCount)
        #expect(after.count == 1)
    }

    /// `--recipe fast` gives its options, and a flag given beside it wins.
    @Test(.disabledUnderSanitizers) func testRecipeFlagsAndOverrides() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lenetkit-recipe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try CLITests.makeCIFAR(dir, train: 200, test: 50)
        let log = dir.appendingPathComponent("log.jsonl").path
        let run = try runLenet(["train", "--recipe", "fast", "--data", dir.path, "--time-budget", "3", "--lr", "0.002",
                                "--threads", "2", "--log-json", log])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("batch 64, adamw lr 0.002 (onecycle), label smoothing 0.1, a time budget of 3 s"), "\(run.stderr)")
        let fast = TrainingRecipe.fast.options
        #expect(fast.batchSize == 64 && fast.schedule == .onecycle && fast.epochs == 7 && fast.timeBudget == nil && fast.augmentation == nil)
        #expect(TrainingRecipe.best.options.augmentation == .cifar && TrainingRecipe.best.options.testTimeAugmentation == .flip)
        // `lenet train --help` gives each recipe in words (wrapped: compared with single spaces).
        let help = try runLenet(["train", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(help.contains("lenet5-fashion: 60 epochs, batch 64, adamw lr 0.003 (onecycle), label smoothing 0.1, "
            + "augmented (crop 1, flip), flip test-time augmentation, weight decay 0.05;"), "\(help)")
        // A recipe's crop padding reaches the trainer (here on CIFAR images, with a flag after it).
        let fashion = try runLenet(["train", "--recipe", "lenet5-fashion", "--data", dir.path, "--epochs", "1", "--threads", "2"])
        #expect(fashion.status == 0, "\(fashion.stderr)")
        #expect(fashion.stderr.contains("augmented (crop 1, flip), flip test-time augmentation"), "\(fashion.stderr)")
        #expect(fashion.stdout.contains("epoch 1/1 "), "\(fashion.stdout)")
        // Every epoch's record carries the wall-clock seconds since the start, increasing.
        let records = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        let wall = records.compactMap { $0["wall_seconds"] as? Double }
        #expect(wall.count == records.count && !wall.isEmpty && wall == wall.sorted())
    }
}

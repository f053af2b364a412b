import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Weight averaging (`--ema`): PyTorch's `AveragedModel` with
/// `get_ema_multi_avg_fn`, updated after every step, evaluated and saved
/// as the weights, and resumed to the bit.
struct WeightAverageTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// 90 images in batches of 16 (6 steps an epoch), Adam, decay 0.8.
    func options(epochs: Int = 2, ema: Double? = 0.8) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs
        o.batchSize = 16
        o.seed = 3
        o.ema = ema
        o.threads = 2
        return o
    }

    /// Bound on how far two float32 runs of the recurrence a ← a + w·(p − a)
    /// (w = 1 − decay ≤ ½) drift apart, or one run from the exact one: each
    /// update rounds p − a (ε/2·2M, times w), the product (ε/2·w·2M) and
    /// the add (ε/2·M), at most (2w + ½)·ε·M ≤ 1.5·ε·M with M the largest
    /// |weight|, and carries the error before it times ∂a'/∂a = decay;
    /// summed, 1.5·ε·M/(1 − decay). Twice that covers two runs that round
    /// apart (PyTorch's lerp is fused, ours is not).
    static func bound(decay: Double, magnitude: Float) -> Float {
        3 * ErrorBound.epsilon * magnitude / Float(1 - decay)
    }

    /// The 12 updates of Fixtures/recipe_reference.safetensors: the first
    /// copies, each after moves 10% of the way, as PyTorch's.
    @Test func testWeightAverageIsPyTorchs() throws {
        let fixture = try loadFixture("recipe_reference")
        let weights = try tensor(fixture, "ema.weights"), expected = try tensor(fixture, "ema.average")
        let store = try ParameterStore(entries: [.init(name: "weight", shape: [37], offset: 0, count: 37, initBound: 0)])
        let average = try WeightAverage(parameters: store, decay: 0.9)
        #expect(average.values == Array(store.values))  // before any update: the weights themselves
        let magnitude = weights.map(abs).max() ?? 0
        for k in 0..<12 {
            _ = store.values.update(from: weights[k * 37..<(k + 1) * 37])
            average.update()
            let want = Array(expected[k * 37..<(k + 1) * 37])
            if k == 0 {
                #expect(average.values == want, "the first update copies")
            } else {
                assertClose(average.values, want, "average after update \(k + 1)",
                            atol: Self.bound(decay: 0.9, magnitude: magnitude), rtol: 0)
            }
        }
        #expect(average.updates == 12)
        // withAverageInPlace shows the average, then puts the weights back bitwise.
        let trained = Array(store.values), averaged = average.values
        average.withAverageInPlace { #expect(Array(store.values) == averaged) }
        #expect(Array(store.values).map(\.bitPattern) == trained.map(\.bitPattern))
    }

    /// The trainer updates the average after every step: it follows the
    /// exact recurrence over the weights after each step.
    @Test func testTrainerAveragesAfterEveryStep() throws {
        let data = try TrainingTests.squares(count: 90, seed: 1)
        let network = try TrainingTests.smallNetwork()
        let trainer = try Trainer(network: network, dataset: data, options: options())
        let average = try #require(trainer.weightAverage)
        var snapshots: [[Float]] = []
        for _ in 0..<2 { _ = try trainer.trainEpoch(progress: { _ in snapshots.append(Array(network.parameters.values)) }) }
        #expect(snapshots.count == 12 && average.updates == 12)
        let w = Double(Float(1 - 0.8 as Double))  // the code's weight, exactly
        var exact = snapshots[0].map(Double.init)
        for p in snapshots.dropFirst() {
            for i in exact.indices { exact[i] += w * (Double(p[i]) - exact[i]) }
        }
        let magnitude = snapshots.joined().map(abs).max() ?? 0
        // One run from the exact recurrence, plus the reference's own rounding to Float (ε/2·M).
        assertClose(average.values, exact.map { Float($0) }, "average after 12 steps",
                    atol: Self.bound(decay: 0.8, magnitude: magnitude) / 2 + ErrorBound.epsilon / 2 * magnitude, rtol: 0)
        // And it is not the weights: the average lags them.
        #expect(average.values != Array(network.parameters.values))
    }

    /// `fit` evaluates the average, and the checkpoint's weights file holds
    /// it while the state holds the trained weights; the network keeps the
    /// trained weights between epochs.
    @Test func testFitEvaluatesAndSavesTheAverage() throws {
        let dir = try temporaryDirectory()
        let data = try TrainingTests.squares(count: 90, seed: 1), test = try TrainingTests.squares(count: 40, seed: 2)
        let network = try TrainingTests.smallNetwork()
        let trainer = try Trainer(network: network, dataset: data, options: options())
        let average = try #require(trainer.weightAverage)
        let path = dir.appendingPathComponent("ema.safetensors").path
        var evaluated: [[Float]] = []
        var last: EpochResult?
        try trainer.fit(test: test, checkpoint: path, epochEnd: {
            evaluated.append(Array(network.parameters.values))
            last = $0
        })
        #expect(evaluated.count == 2)
        #expect(evaluated.last == average.values, "epochEnd sees the averaged weights")
        #expect(Array(network.parameters.values) != average.values, "the trained weights are back after")

        let weights = try SafetensorsFile.read(path: path), state = try SafetensorsFile.read(path: Checkpoint.statePath(for: path))
        #expect(weights.metadata[Checkpoint.Key.ema] == "0.8")
        for e in network.parameters.entries {
            #expect(weights[e.name]?.values == Array(average.values[e.offset..<e.offset + e.count]), "\(e.name): the average")
            #expect(state[Checkpoint.trainedPrefix + e.name]?.values == network.parameters.values(of: e.name), "\(e.name): trained")
        }
        #expect(state["ema.updates"]?.values == [12])
        // The evaluation `fit` reported is the saved model's.
        let saved = try TrainingTests.smallNetwork(seed: 5)
        try Checkpoint.load(weights, into: saved, source: path)
        let own = try saved.evaluate(on: test, normalization: .half)
        #expect(last?.evaluation?.correct == own.correct)
        #expect(last?.evaluation != nil)
    }

    /// A checkpoint saved from `epochEnd`, where the network holds the
    /// average, is the one `fit` saves: the average as the weights, the
    /// trained weights in the state; and nesting `withAveragedWeights` there
    /// changes nothing.
    @Test func testSavingFromEpochEndSavesTheSame() throws {
        let dir = try temporaryDirectory()
        let data = try TrainingTests.squares(count: 90, seed: 1), test = try TrainingTests.squares(count: 40, seed: 2)
        let network = try TrainingTests.smallNetwork()
        let trainer = try Trainer(network: network, dataset: data, options: options(epochs: 1))
        let own = dir.appendingPathComponent("fit.safetensors").path, inside = dir.appendingPathComponent("end.safetensors").path
        var nested: [Float] = [], outer: [Float] = []
        try trainer.fit(test: test, checkpoint: own, epochEnd: { _ in
            outer = Array(network.parameters.values)
            trainer.withAveragedWeights { nested = Array(network.parameters.values) }
            try trainer.saveCheckpoint(to: inside)
            let error = #expect(throws: LeNetError.self) { try trainer.resume(from: own) }
            #expect(error.map { "\($0)" } == "\(own): cannot resume inside withAveragedWeights (the network holds the weight average)")
        })
        let average = try #require(trainer.weightAverage)
        #expect(outer == average.values && nested == outer)
        for file in [own, inside, Checkpoint.statePath(for: own), Checkpoint.statePath(for: inside)] {
            let tensors = try SafetensorsFile.read(path: file).tensors
            let reference = try SafetensorsFile.read(path: file.hasSuffix(".state") ? Checkpoint.statePath(for: own) : own).tensors
            #expect(tensors == reference, "\(file)")
        }
        let state = try SafetensorsFile.read(path: Checkpoint.statePath(for: inside))
        #expect(state["training.fc1.weight"]?.values == network.parameters.values(of: "fc1.weight"))
    }

    /// Stopped mid-epoch and resumed in new objects, a run with an average
    /// ends with bitwise the weights and average of one that never stopped.
    @Test func testStoppedAndResumedIsBitwiseOneRun() throws {
        let dir = try temporaryDirectory()
        let data = try TrainingTests.squares(count: 90, seed: 1), test = try TrainingTests.squares(count: 40, seed: 2)
        let straight = try TrainingTests.smallNetwork()
        let t1 = try Trainer(network: straight, dataset: data, options: options(epochs: 3))
        try t1.fit(test: test)

        let path = dir.appendingPathComponent("stop.safetensors").path
        let t2 = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options(epochs: 3))
        var asked = 0
        // Asked before each epoch and step: 1 + 6 in epoch 1, then 1 + 2 for
        // epoch 2's first two steps; the 11th ask stops it after them.
        #expect(try t2.fit(test: test, checkpoint: path, shouldStop: { asked += 1; return asked == 11 }) == .stopped)
        #expect(t2.stepInEpoch == 2)

        let resumed = try TrainingTests.smallNetwork(seed: 99)
        let t3 = try Trainer(network: resumed, dataset: data, options: options(epochs: 3))
        try t3.resume(from: path)
        #expect(t3.weightAverage?.updates == 8)
        #expect(try t3.fit(test: test, checkpoint: path) == .finished)
        #expect(Array(resumed.parameters.values).map(\.bitPattern) == Array(straight.parameters.values).map(\.bitPattern))
        #expect(t3.weightAverage?.values.map(\.bitPattern) == t1.weightAverage?.values.map(\.bitPattern))
    }

    /// A checkpoint resumes only with the averaging it was written with,
    /// and a state missing its trained weights is named with the tensor.
    @Test func testMismatchedOrDamagedAverageIsRefused() throws {
        let dir = try temporaryDirectory()
        let data = try TrainingTests.squares(count: 90, seed: 1)
        let withEMA = dir.appendingPathComponent("with.safetensors").path
        let without = dir.appendingPathComponent("without.safetensors").path
        let t = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options(epochs: 1))
        _ = try t.trainEpoch()
        try t.saveCheckpoint(to: withEMA)
        let plain = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options(epochs: 1, ema: nil))
        _ = try plain.trainEpoch()
        try plain.saveCheckpoint(to: without)

        func failure(_ path: String, ema: Double?) -> String {
            do {
                let trainer = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options(ema: ema))
                try trainer.resume(from: path)
                return "resumed"
            } catch {
                return "\(error)"
            }
        }
        let statePath = Checkpoint.statePath(for: withEMA)
        #expect(failure(withEMA, ema: nil) == "\(statePath): was written with weight averaging (ema 0.8); resume with TrainingOptions.ema 0.8")
        #expect(failure(without, ema: 0.8) == "\(Checkpoint.statePath(for: without)): was written without weight averaging; resume without TrainingOptions.ema (this run: 0.8)")
        #expect(failure(withEMA, ema: 0.9) == "\(statePath): was written with TrainingOptions.ema 0.8; this run averages with 0.9")
        #expect(failure(withEMA, ema: 0.8) == "resumed")

        var state = try SafetensorsFile.read(path: statePath)
        state.tensors.removeAll { $0.name == "training.fc1.weight" }
        try state.write(path: statePath)
        try? FileManager.default.removeItem(atPath: Checkpoint.previousStatePath(for: withEMA))
        #expect(failure(withEMA, ema: 0.8) == "\(statePath): missing tensor 'training.fc1.weight' (expected shape [10, 100]; the trained weights beside the average)")

        for bad: Double in [0, 1, -0.5, .nan, .infinity] {
            var o = options()
            o.ema = bad
            let error = #expect(throws: LeNetError.self) { try o.validate() }
            #expect(error.map { "\($0)" } == "TrainingOptions.ema: must be in (0, 1), got \(bad)")
        }
    }

    /// `lenet train --ema` says so, and `lenet eval` of its checkpoint gives
    /// the test accuracy its last epoch printed: the average is the model.
    @Test(.disabledUnderSanitizers) func testTrainWithEMAFlag() throws {
        let dir = try temporaryDirectory()
        try CLITests.makeCIFAR(dir, train: 200, test: 50)
        let out = dir.appendingPathComponent("m.safetensors").path
        let run = try runLenet(["train", "--data", dir.path, "--epochs", "2", "--ema", "0.9", "--threads", "2", "--output", out])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("weight average (EMA 0.9)"), "\(run.stderr)")
        let trained = try #require(run.stdout.split(separator: "\n").last { $0.hasPrefix("epoch 2/2") })
        let accuracy = try #require(trained.range(of: #"test accuracy [0-9.]+%"#, options: .regularExpression))
        let eval = try runLenet(["eval", "--weights", out, "--data", dir.path])
        #expect(eval.status == 0, "\(eval.stderr)")
        #expect(eval.stdout.contains("accuracy " + trained[accuracy].dropFirst("test accuracy ".count)), "\(trained) / \(eval.stdout)")
    }
}

import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// The trainer, checkpoints and evaluation on small generated datasets.
struct TrainingTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// Images whose class is written in them: class c lights a 6×6 square at
    /// one of 10 places, on noise. A working trainer learns it in a few epochs.
    static func squares(count: Int, channels: Int = 3, seed: UInt64) throws -> ImageDataset {
        var rng = SeededGenerator(seed: seed)
        let side = 32
        var images = [UInt8](repeating: 0, count: count * channels * side * side)
        var labels = [UInt8](repeating: 0, count: count)
        for n in 0..<count {
            let c = Int(rng.next() % 10)
            labels[n] = UInt8(c)
            let top = 3 + (c / 5) * 14 + Int(rng.next() % 4), left = 1 + (c % 5) * 6
            for ch in 0..<channels {
                let plane = (n * channels + ch) * side * side
                for p in 0..<(side * side) { images[plane + p] = UInt8(rng.next() % 90) }
                for i in top..<top + 6 { for j in left..<left + 5 { images[plane + i * side + j] = 230 } }
            }
        }
        return try ImageDataset(name: "squares", channels: channels, height: side, width: side, images: images,
                                labels: labels, classNames: (0..<10).map { "place \($0)" })
    }

    /// A small, fast network for the trainer's own tests.
    static func smallNetwork(seed: UInt64 = 1) throws -> Network {
        let net = try Network(inputShape: FeatureShape(channels: 3, height: 32, width: 32), layers: [
            Conv2D("conv1", inChannels: 3, outChannels: 4, kernelSize: 5, stride: 3), ReLU(), MaxPool2D("pool"),
            Linear("fc1", inFeatures: 4 * 5 * 5, outFeatures: 10),
        ])
        var rng = SeededGenerator(seed: seed)
        net.parameters.initialize(using: &rng)
        return net
    }

    func options(epochs: Int = 2, batch: Int = 16, seed: UInt64 = 3) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs
        o.batchSize = batch
        o.seed = seed
        return o
    }

    @Test func testCIFARLeNetLearnsSquares() throws {
        let train = try Self.squares(count: 600, seed: 1), test = try Self.squares(count: 200, seed: 2)
        let net = try Models.cifarLeNet(seed: 5)
        let before = try net.evaluate(on: test, normalization: .half)
        let trainer = try Trainer(network: net, dataset: train, options: options(epochs: 4, batch: 20))
        var losses: [Double] = []
        for _ in 0..<4 { losses.append(try trainer.trainEpoch().loss) }
        let after = try net.evaluate(on: test, normalization: .half)
        #expect(before.accuracy < 0.3)
        #expect(after.accuracy > 0.9, "losses \(losses)")
        #expect(losses[3] < losses[0] * 0.5)
        #expect(trainer.imagesSeen == 2400)
        #expect(after.confusion.flatMap { $0 }.reduce(0, +) == 200)
        #expect(after.correct == (0..<10).reduce(0) { $0 + after.confusion[$1][$1] })
    }

    @Test func testSameSeedGivesBitwiseSameWeights() throws {
        let data = try Self.squares(count: 100, seed: 1)
        func run(_ seed: UInt64) throws -> [Float] {
            let net = try Self.smallNetwork()
            let trainer = try Trainer(network: net, dataset: data, options: options(seed: seed))
            for _ in 0..<2 { _ = try trainer.trainEpoch() }
            return Array(net.parameters.values)
        }
        let a = try run(3), b = try run(3), c = try run(4)
        #expect(a == b)
        #expect(a != c, "a different shuffling seed should change the weights")
    }

    /// Training 3 epochs straight, or 1 epoch, a checkpoint, a new process's
    /// worth of objects, and 2 more: the same weights to the bit.
    @Test func testResumeContinuesExactly() throws {
        let dir = try temporaryDirectory()
        let data = try Self.squares(count: 90, seed: 1)
        for optimizer in TrainingOptions.OptimizerKind.allCases {
            var opts = options(epochs: 3, batch: 16)
            opts.optimizer = optimizer
            opts.learningRate = optimizer == .sgd ? 0.01 : 1e-3
            opts.weightDecay = 1e-4
            let straight = try Self.smallNetwork()
            let t1 = try Trainer(network: straight, dataset: data, options: opts)
            for _ in 0..<3 { _ = try t1.trainEpoch() }

            let path = dir.appendingPathComponent("ck-\(optimizer).safetensors").path
            let first = try Self.smallNetwork()
            let t2 = try Trainer(network: first, dataset: data, options: opts)
            _ = try t2.trainEpoch()
            try t2.saveCheckpoint(to: path)
            // A lenetkit-2 state between epochs: the trainer's own state, no interrupted epoch.
            let saved = try trainingState(ofCheckpoint: path)
            #expect(try SafetensorsFile.read(path: Checkpoint.statePath(for: path)).metadata["format"] == "lenetkit-2")
            #expect(saved.optimizer == optimizer && saved.epoch == 1 && saved.epochStep == 0 && saved.imagesSeen == 90)
            #expect(saved.interruptedEpoch == nil && saved.timeBudget == nil && saved.ema == nil)
            #expect(saved.shuffleState.count == 4)

            let resumed = try Self.smallNetwork(seed: 99)  // different init: all of it must come from the file
            let t3 = try Trainer(network: resumed, dataset: data, options: opts)
            try t3.resume(from: path)
            #expect(t3.epoch == 1)
            #expect(t3.imagesSeen == 90)
            #expect(t3.optimizer.stepCount == 6)
            for _ in 0..<2 { _ = try t3.trainEpoch() }
            #expect(Array(resumed.parameters.values) == Array(straight.parameters.values), "\(optimizer)")
        }
    }

    /// `fit`, the loop `lenet train` runs: stopped mid-epoch (the position
    /// saved), resumed by new objects and fitted on, it ends with the weights
    /// of a fit that never stopped, to the bit; each epoch's end sees its
    /// evaluation, which is the network's own evaluation after that epoch.
    @Test func testFitStoppedAndResumedIsBitwiseOneFit() throws {
        let dir = try temporaryDirectory()
        let data = try Self.squares(count: 90, seed: 1), test = try Self.squares(count: 40, seed: 2)
        let opts = options(epochs: 3, batch: 16)  // 6 steps an epoch
        let straight = try Self.smallNetwork()
        let t1 = try Trainer(network: straight, dataset: data, options: opts)
        var seen: [EpochResult] = []
        #expect(try t1.fit(test: test, epochEnd: { seen.append($0) }) == .finished)
        #expect(seen.map(\.epoch) == [1, 2, 3])
        #expect(seen.map(\.images) == [90, 90, 90])
        #expect(try seen.last?.evaluation?.correct == straight.evaluate(on: test, normalization: opts.normalization).correct)
        #expect(seen.last?.evaluation?.count == 40)
        #expect(try t1.fit(test: test, epochEnd: { _ in Issue.record("no epoch is left") }) == .finished)

        let path = dir.appendingPathComponent("fit.safetensors").path
        let first = try Self.smallNetwork()
        let t2 = try Trainer(network: first, dataset: data, options: opts)
        var asked = 0
        // Asked before each epoch and each step: 1 + 6 in epoch 1, then 1 + 3
        // for epoch 2's first three steps; the 12th ask stops it after them.
        #expect(try t2.fit(test: test, checkpoint: path, shouldStop: { asked += 1; return asked == 12 }) == .stopped)
        #expect(t2.epoch == 1)
        #expect(t2.stepInEpoch == 3)
        // Saved as a lenetkit-2 state, with the interrupted epoch's figures.
        let saved = try trainingState(ofCheckpoint: path)
        #expect(saved.epoch == 1 && saved.epochStep == 3 && saved.imagesSeen == 90 + 48)
        #expect(saved.interruptedEpoch?.batchSize == 16 && saved.interruptedEpoch?.examples == 90)
        #expect(saved.interruptedEpoch?.images == 48)

        let resumed = try Self.smallNetwork(seed: 99)
        let t3 = try Trainer(network: resumed, dataset: data, options: opts)
        try t3.resume(from: path)
        #expect(t3.epoch == 1)
        #expect(t3.stepInEpoch == 3)
        var ends: [Int] = []
        #expect(try t3.fit(test: test, checkpoint: path, epochEnd: { ends.append($0.epoch) }) == .finished)
        #expect(ends == [2, 3])
        #expect(Array(resumed.parameters.values) == Array(straight.parameters.values))
        // The checkpoint written after the last epoch holds those weights.
        #expect(try SafetensorsFile.read(path: path)["fc1.weight"]?.values == straight.parameters.values(of: "fc1.weight"))
        let error = #expect(throws: (any Error).self) { try t3.fit(epochs: 0) }
        if let error { #expect("\(error)" == "fit(epochs:): must be > 0, got 0") }
    }

    @Test func testCheckpointIsAPyTorchStateDict() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("model.safetensors").path
        let net = try Models.cifarLeNet(seed: 7)
        try Checkpoint.saveWeights(net, to: path, metadata: ["model": "cifar-lenet", "epoch": "3"])
        let file = try SafetensorsFile.read(path: path)
        #expect(file.tensors.map(\.name).sorted() == [
            "conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight", "fc1.bias", "fc1.weight",
            "fc2.bias", "fc2.weight", "fc3.bias", "fc3.weight",
        ])
        #expect(file["conv1.weight"]?.shape == [16, 3, 5, 5])
        #expect(file["conv2.weight"]?.shape == [32, 16, 5, 5])
        #expect(file["fc1.weight"]?.shape == [120, 800])
        #expect(file["fc3.bias"]?.shape == [10])
        #expect(file["fc1.weight"]?.values == net.parameters.values(of: "fc1.weight"))
        #expect(file.metadata["epoch"] == "3")
        #expect(file.metadata["format"] == "lenetkit-2")

        // And back: a file without metadata (as PyTorch writes it) is recognized by its names.
        let bare = dir.appendingPathComponent("bare.safetensors").path
        try SafetensorsFile(tensors: file.tensors).write(path: bare)
        let loaded = try Checkpoint.loadNetwork(path: bare)
        #expect(loaded.network.networkDescription.name == "cifar-lenet")
        #expect(Array(loaded.network.parameters.values) == Array(net.parameters.values))
        #expect(loaded.normalization == .half)
    }

    @Test func testBadCheckpointsGiveClearErrors() throws {
        let dir = try temporaryDirectory()
        let net = try Models.cifarLeNet()
        let good = Checkpoint.tensors(of: net)
        func write(_ name: String, _ tensors: [SafetensorsTensor], metadata: [String: String] = [:]) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try SafetensorsFile(tensors: tensors, metadata: metadata).write(path: path)
            return path
        }
        let missing = try write("missing.safetensors", good.filter { $0.name != "fc2.bias" })
        assertError("missing.safetensors", "missing tensor 'fc2.bias'") { try Checkpoint.loadNetwork(path: missing, description: .builtIn("cifar-lenet")) }
        assertError("missing.safetensors", "match no known model") { try Checkpoint.loadNetwork(path: missing) }

        var reshaped = good
        reshaped[0] = SafetensorsTensor(name: "conv1.weight", shape: [16, 75], values: reshaped[0].values)
        let wrongShape = try write("shape.safetensors", reshaped, metadata: ["model": "cifar-lenet"])
        assertError("shape.safetensors", "tensor 'conv1.weight' has shape [16, 75], expected [16, 3, 5, 5]") {
            try Checkpoint.loadNetwork(path: wrongShape)
        }

        var nan = good
        nan[1].values[3] = .nan
        let nanPath = try write("nan.safetensors", nan, metadata: ["model": "cifar-lenet"])
        assertError("nan.safetensors", "non-finite", "conv1.bias") { try Checkpoint.loadNetwork(path: nanPath) }

        let unknown = try write("unknown.safetensors", good, metadata: ["model": "alexnet"])
        assertError("unknown.safetensors", "unknown model 'alexnet'") { try Checkpoint.loadNetwork(path: unknown) }

        let extra = try write("extra.safetensors", good + [SafetensorsTensor(name: "fc4.weight", shape: [1], values: [0])],
                              metadata: ["model": "cifar-lenet"])
        assertError("extra.safetensors", "unexpected tensor 'fc4.weight'") { try Checkpoint.loadNetwork(path: extra) }

        // An unsupported dtype and a damaged header, written by hand.
        let header = #"{"conv1.weight":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#
        var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8)
        bytes += [UInt8](repeating: 0, count: 8)
        let dtypePath = dir.appendingPathComponent("dtype.safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: dtypePath))
        assertError("dtype.safetensors", "I64") { try Checkpoint.loadNetwork(path: dtypePath) }
        let truncatedPath = dir.appendingPathComponent("truncated.safetensors").path
        try Data(bytes.prefix(20)).write(to: URL(fileURLWithPath: truncatedPath))
        assertError("truncated.safetensors", "header length") { try Checkpoint.loadNetwork(path: truncatedPath) }
    }

    @Test func testResumeRefusesMismatchedState() throws {
        let dir = try temporaryDirectory()
        let data = try Self.squares(count: 40, seed: 1)
        let path = dir.appendingPathComponent("ck.safetensors").path
        let trainer = try Trainer(network: try Self.smallNetwork(), dataset: data, options: options())
        _ = try trainer.trainEpoch()
        try trainer.saveCheckpoint(to: path)
        var sgd = options()
        sgd.optimizer = .sgd
        let other = try Trainer(network: try Self.smallNetwork(), dataset: data, options: sgd)
        assertError("ck.safetensors.state", "optimizer 'adam'") { try other.resume(from: path) }
        // The state one epoch ahead of the weights: what a crash between the two writes leaves.
        _ = try trainer.trainEpoch()
        try rewriteTrainingState(ofCheckpoint: path) { $0.replacingOccurrences(of: #""epoch":1,"#, with: #""epoch":2,"#) }
        let fresh = try Trainer(network: try Self.smallNetwork(), dataset: data, options: options())
        assertError("ck.safetensors.state", "is from epoch 2, the weights from epoch 1") { try fresh.resume(from: path) }
        try FileManager.default.removeItem(atPath: Checkpoint.statePath(for: path))
        assertError("ck.safetensors.state") { try fresh.resume(from: path) }
    }

    @Test func testDivergingLossStopsWithEpochAndStep() throws {
        let data = try Self.squares(count: 64, seed: 1)
        var o = options(epochs: 1, batch: 8)
        o.optimizer = .sgd
        o.learningRate = 1e30
        let trainer = try Trainer(network: try Self.smallNetwork(), dataset: data, options: o)
        assertError("training", "at epoch 1, step", "lower TrainingOptions.learningRate") { try trainer.trainEpoch() }
    }

    @Test func testBadOptionsNameTheOption() throws {
        let data = try Self.squares(count: 10, seed: 1)
        var o = options()
        o.batchSize = 0
        assertError("TrainingOptions.batchSize", "must be > 0, got 0") { try Trainer(network: try Self.smallNetwork(), dataset: data, options: o) }
        o = options()
        o.learningRate = -0.1
        assertError("TrainingOptions.learningRate", "positive", "-0.1") { try Trainer(network: try Self.smallNetwork(), dataset: data, options: o) }
        o = options()
        o.epochs = 0
        assertError("TrainingOptions.epochs") { try o.validate() }
        o = options()
        o.momentum = 1.5
        assertError("TrainingOptions.momentum") { try o.validate() }
        // A dataset whose images do not fit the model.
        let gray = try Self.squares(count: 10, channels: 1, seed: 1)
        assertError("squares", "1×32×32", "3×32×32") { try Trainer(network: try Self.smallNetwork(), dataset: gray, options: options()) }
    }

    /// No allocation per step: the buffers a step uses stay where they are.
    @Test func testStepsReuseTheirBuffers() throws {
        let data = try Self.squares(count: 64, seed: 1)
        let net = try Models.cifarLeNet()
        let trainer = try Trainer(network: net, dataset: data, options: options(batch: 16))
        try trainer.step(0..<16)
        let input = try net.input(batch: 16).baseAddress, logits = net.forward(batch: 16)
        for s in 1..<4 { try trainer.step(s * 16..<(s + 1) * 16) }
        #expect(try net.input(batch: 16).baseAddress == input)
        #expect(net.forward(batch: 16) == logits)
        #expect(net.capacity == 16)
    }
}

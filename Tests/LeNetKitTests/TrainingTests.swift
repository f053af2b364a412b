import Foundation
import Testing
@testable import LeNetKit

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
        let trainer = try Trainer(network: net, model: .cifarLeNet, dataset: train, options: options(epochs: 4, batch: 20))
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
        var seen: [FitEpoch] = []
        #expect(try t1.fit(test: test, epochEnd: { seen.append($0) }) == .finished)
        #expect(seen.map(\.result.epoch) == [1, 2, 3])
        #expect(seen.map(\.result.images) == [90, 90, 90])
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

        let resumed = try Self.smallNetwork(seed: 99)
        let t3 = try Trainer(network: resumed, dataset: data, options: opts)
        try t3.resume(from: path)
        #expect(t3.epoch == 1)
        #expect(t3.stepInEpoch == 3)
        var ends: [Int] = []
        #expect(try t3.fit(test: test, checkpoint: path, epochEnd: { ends.append($0.result.epoch) }) == .finished)
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
        #expect(file.metadata["format"] == "lenetkit-1")

        // And back: a file without metadata (as PyTorch writes it) is recognized by its names.
        let bare = dir.appendingPathComponent("bare.safetensors").path
        try SafetensorsFile(tensors: file.tensors).write(path: bare)
        let loaded = try Checkpoint.loadNetwork(path: bare)
        #expect(loaded.model == .cifarLeNet)
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
        assertError("missing.safetensors", "missing tensor 'fc2.bias'") { try Checkpoint.loadNetwork(path: missing, model: .cifarLeNet) }
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
        let state = try SafetensorsFile.read(path: Checkpoint.statePath(for: path))
        var ahead = state
        ahead.metadata["epoch"] = "2"
        try ahead.write(path: Checkpoint.statePath(for: path))
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

struct ScheduleTests {
    @Test func testCosineAndStepSchedules() {
        var o = TrainingOptions()
        o.learningRate = 0.1
        o.epochs = 4
        #expect(o.learningRate(atStep: 123, stepsPerEpoch: 10) == 0.1)  // constant
        o.schedule = .cosine
        #expect(o.learningRate(atStep: 0, stepsPerEpoch: 10) == 0.1)
        #expect(abs(o.learningRate(atStep: 20, stepsPerEpoch: 10) - 0.05) <= 1e-7)
        #expect(abs(o.learningRate(atStep: 10, stepsPerEpoch: 10) - Float(0.05 * (1 + cos(Double.pi / 4)))) <= 1e-7)
        #expect(abs(o.learningRate(atStep: 40, stepsPerEpoch: 10) - 0) <= 1e-9)
        o.schedule = .step
        o.stepEpochs = 2
        o.stepGamma = 0.5
        #expect(o.learningRate(atStep: 19, stepsPerEpoch: 10) == 0.1)
        #expect(o.learningRate(atStep: 20, stepsPerEpoch: 10) == 0.05)
        #expect(o.learningRate(atStep: 45, stepsPerEpoch: 10) == 0.025)
        o.stepGamma = 0
        #expect(throws: (any Error).self) { try o.validate() }
    }

    /// The trainer hands the schedule's rate to the optimizer before every step.
    @Test func testTrainerFollowsTheSchedule() throws {
        let data = try TrainingTests.squares(count: 40, seed: 1)
        var o = TrainingOptions()
        o.epochs = 2
        o.batchSize = 10
        o.schedule = .cosine
        let trainer = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: o)
        _ = try trainer.trainEpoch()
        #expect(trainer.optimizer.learningRate == o.learningRate(atStep: 3, stepsPerEpoch: 4))
        _ = try trainer.trainEpoch()
        #expect(trainer.optimizer.learningRate == o.learningRate(atStep: 7, stepsPerEpoch: 4))
        #expect(trainer.optimizer.learningRate < 1e-4)
    }
}

struct DataParallelTests {
    /// Splitting a batch across threads, each with its own replica, gives
    /// the gradient of the whole batch: the same as one part, up to rounding.
    @Test func testPartsAddUpToTheWholeBatchGradient() throws {
        let data = try TrainingTests.squares(count: 30, seed: 4)
        func gradient(threads: Int) throws -> (grad: [Float], loss: Float, weights: [Float]) {
            let saved = Parallelism.threads
            defer { Parallelism.threads = saved }
            Parallelism.threads = threads
            let net = try Models.cifarLeNet(seed: 9)
            var o = TrainingOptions()
            o.batchSize = 30
            let trainer = try Trainer(network: net, dataset: data, options: o)
            let loss = try trainer.step(0..<30)
            return (Array(net.parameters.gradients), loss, Array(net.parameters.values))
        }
        let one = try gradient(threads: 1), three = try gradient(threads: 3)
        // Bounds (ErrorBound): the forward chain sums 75 + 400 + 800 + 120 + 84
        // terms, the loss 10 classes and 30 images; the gradients add the
        // input gradients through fc3, fc2, fc1 and conv2 (10 + 84 + 120 + 800)
        // and the longest weight-gradient sum, conv1's over 30·28·28 positions.
        let forwardK = 75 + 400 + 800 + 120 + 84, lossK = forwardK + 10 + 30
        let gradientK = lossK + 10 + 84 + 120 + 800 + 30 * 28 * 28
        #expect(abs(one.loss - three.loss) <= ErrorBound.reduction(lossK, magnitude: one.loss))
        let gradientBound = ErrorBound.reduction(gradientK, of: one.grad)
        assertWithin(three.grad, one.grad, "gradient, 3 parts vs 1", bound: gradientBound, "ε·\(gradientK)·max|g|")
        // Adam's first step is lr·g/(|g| + ε): about lr·sign(g). Where |g| is
        // within the gradient bound its sign may differ (2·lr); elsewhere the
        // weights differ by Adam's own rounding (ε·|w| + 16·ε·lr).
        let lr = TrainingOptions().learningRate
        let bounds = one.grad.indices.map { i -> Float in
            let rounding = ErrorBound.epsilon * abs(one.weights[i]) + 16 * ErrorBound.epsilon * lr
            return abs(one.grad[i]) > gradientBound ? 3 * rounding : 2 * lr + 3 * rounding
        }
        assertWithin(three.weights, one.weights, "weights after one Adam step", bounds: bounds,
                     "ε·|w| + 16·ε·lr, and 2·lr where |g| ≤ the gradient bound")
        #expect(one.grad.filter { $0 != 0 }.count != 0)
    }

    /// The trainer's update inside the parallel region is bitwise the update
    /// after it. Bitwise by construction: both arms split each batch into the
    /// same two parts through the same kernels, and the in-region update adds
    /// the replicas' gradients in the same part order, element by element,
    /// before the same per-element arithmetic. The test fails unless the
    /// in-region path really ran for every step (it needs two free cores; a
    /// busy machine may make Dispatch start the parts one after the other,
    /// when the trainer falls back, so it tries again).
    @Test func testUpdateInPartsIsBitwiseTheUpdateAfterTheParts() throws {
        guard ProcessInfo.processInfo.activeProcessorCount >= 2 else {
            try Test.cancel("the update inside the parallel region needs two cores")
        }
        let data = try TrainingTests.squares(count: 40, seed: 6)
        let saved = Parallelism.threads
        defer { Parallelism.threads = saved }
        Parallelism.threads = 2
        for kind in TrainingOptions.OptimizerKind.allCases {
            var o = TrainingOptions()
            o.batchSize = 20
            o.optimizer = kind
            o.weightDecay = 0.01
            func train(inParts: Bool) throws -> (values: [Float], gradients: [Float], losses: [Float], inRegion: Int) {
                let net = try Models.cifarLeNet(seed: 3)
                let trainer = try Trainer(network: net, dataset: data, options: o)
                trainer.updatesInParts = inParts
                let losses = try [trainer.step(0..<20), trainer.step(20..<40), trainer.step(5..<25)]
                #expect(trainer.optimizer.stepCount == 3)
                return withExtendedLifetime(net) {
                    (Array(net.parameters.values), Array(net.parameters.gradients), losses, trainer.stepsUpdatedInParts)
                }
            }
            var inParts = try train(inParts: true)
            for _ in 0..<20 where inParts.inRegion < 3 { inParts = try train(inParts: true) }
            #expect(inParts.inRegion == 3, "\(kind): the update inside the region never ran for all 3 steps in 21 tries")
            let after = try train(inParts: false)
            #expect(after.inRegion == 0)
            #expect(inParts.losses == after.losses, "\(kind)")
            #expect(inParts.values == after.values, "\(kind): weights differ")
            #expect(inParts.gradients == after.gradients, "\(kind): gradients differ")
            let initial = try Models.cifarLeNet(seed: 3)
            withExtendedLifetime(initial) { #expect(inParts.values != Array(initial.parameters.values)) }
        }
    }

    /// The partitioned update itself, on any machine and with more parts
    /// than cores: each part's `update(part:of:)` run one after another (as
    /// the region would run them at once on disjoint blocks) gives bitwise
    /// the gather-then-`step()` result, after the same data-parallel passes
    /// (bitwise the same gradients: same split, same kernels).
    @Test func testPartitionedUpdateIsBitwiseTheWholeStep() throws {
        let n = 20
        let x = FixedValues.values(n * 3 * 32 * 32, salt: 77, bound: 1)
        let labels = FixedValues.labels(n, salt: 78, classes: 10)
        func train(threads: Int, kind: TrainingOptions.OptimizerKind, inParts: Bool) throws -> [Float] {
            let net = try Models.cifarLeNet(seed: 3)
            let optimizer: any PartitionedOptimizer = kind == .sgd
                ? try SGD(parameters: net.parameters, learningRate: 0.01, momentum: 0.9, weightDecay: 0.01)
                : try Adam(parameters: net.parameters, learningRate: 1e-3, weightDecay: 0.01, decoupled: kind == .adamw)
            let losses = (0..<threads).map { _ in SoftmaxCrossEntropy(classes: 10) }
            for _ in 0..<3 {
                try net.dataParallel(batch: n, threads: threads) { part, replica, range in
                    let m = range.count, size = 3 * 32 * 32
                    _ = try replica.input(batch: m).update(fromContentsOf: x[range.lowerBound * size..<range.upperBound * size])
                    let logits = replica.forward(batch: m)
                    _ = try losses[part].forward(logits, Array(labels[range]), batch: m)
                    replica.parameters.zeroGradients()
                    losses[part].backward(try replica.outputGradient(batch: m), meanOver: n)
                    replica.backward(batch: m)
                }
                let parts = net.parts(batch: n, threads: threads)
                #expect(parts == threads)
                if inParts {
                    for part in 0..<parts { optimizer.update(part: part, of: parts) { net.gatherGradients(parts: parts, range: $0) } }
                    optimizer.finishStep()
                } else {
                    net.gatherGradients(parts: parts)
                    optimizer.step()
                }
            }
            #expect(optimizer.stepCount == 3)
            return withExtendedLifetime(net) { Array(net.parameters.values) }
        }
        for threads in [2, 3, 5] {
            for kind in TrainingOptions.OptimizerKind.allCases {
                let inParts = try train(threads: threads, kind: kind, inParts: true)
                let whole = try train(threads: threads, kind: kind, inParts: false)
                #expect(inParts == whole, "\(kind), \(threads) parts: weights differ")
                let initial = try Models.cifarLeNet(seed: 3)
                withExtendedLifetime(initial) { #expect(inParts != Array(initial.parameters.values)) }
            }
        }
    }

    /// Work after the parts runs on every part or on none, and says which;
    /// a part's error skips it on all parts.
    @Test func testWorkAfterThePartsRunsOnEveryPartOrNone() throws {
        let net = try Models.cifarLeNet(seed: 1)
        for threads in 1...6 {
            let parts = net.parts(batch: 12, threads: threads)
            let bodies = Counter(), afters = Counter()
            let ran = try net.dataParallel(batch: 12, threads: threads, { _, _, _ in bodies.add() }) { _, total in
                #expect(total == parts)
                afters.add()
            }
            #expect(bodies.value == parts)
            #expect(afters.value == (ran ? parts : 0), "\(threads) threads")
            if threads == 1 { #expect(ran) }
            let failingAfters = Counter()
            let error = #expect(throws: (any Error).self) {
                try net.dataParallel(batch: 12, threads: threads, { part, _, _ in
                    if part == parts - 1 { throw LeNetError("part \(part) failed") }
                }) { _, _ in failingAfters.add() }
            }
            if let error { #expect((error as? LeNetError)?.message == "part \(parts - 1) failed") }
            #expect(failingAfters.value == 0)
        }
    }

    @Test func testEvaluationIsTheSameOnAnyThreadCount() throws {
        let data = try TrainingTests.squares(count: 50, seed: 5)
        let net = try Models.cifarLeNet(seed: 2)
        let saved = Parallelism.threads
        defer { Parallelism.threads = saved }
        Parallelism.threads = 1
        let a = try net.evaluate(on: data, normalization: .half, batchSize: 16, misclassifiedLimit: 50)
        Parallelism.threads = 3
        let b = try net.evaluate(on: data, normalization: .half, batchSize: 16, misclassifiedLimit: 50)
        // One thread and three split the batches into other parts, so the
        // fully connected gemms round differently: logits by at most the
        // forward chain's bound (75 + 400 + 800 + 120 + 84 terms), the mean loss
        // by that plus its log-sum-exp and mean. A class can change only where
        // an image's two top logits are closer than twice the logit bound;
        // none of these 50 is, so the counts agree exactly.
        let forwardK = 75 + 400 + 800 + 120 + 84
        for i in 0..<data.count {
            let image = data.images[i * data.imageSize..<(i + 1) * data.imageSize].map { (Float($0) / 255 - 0.5) / 0.5 }
            let z = try net.predict(image).sorted(by: >)
            let bound = ErrorBound.reduction(forwardK, magnitude: z.map(abs).max() ?? 0)
            #expect(z[0] - z[1] > 2 * bound, "image \(i): its class could change with the rounding")
        }
        #expect(a.confusion == b.confusion)
        #expect(a.correct == b.correct)
        #expect(abs(a.loss - b.loss) <= Double(ErrorBound.reduction(forwardK + 10 + 50, magnitude: Float(a.loss))))
        #expect(a.misclassified.map(\.index) == b.misclassified.map(\.index))
        #expect(a.count == 50)
    }
}

/// A count that parallel parts can add to.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

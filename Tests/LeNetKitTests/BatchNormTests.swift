import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// BatchNorm2d and Dropout: train and evaluation modes, non-trainable
/// buffers, PyTorch's numbers, gradients, checkpoints and ONNX.
struct BatchNormTests: GradientCheckHarness, UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// The CIFAR LeNet with a BatchNorm2d after each convolution, described here.
    static func cifarLeNetWithBatchNorm() throws -> NetworkDescription {
        var d = try NetworkDescription.builtIn("cifar-lenet")
        d.name = "cifar-lenet-bn"
        d.layers.insert(BatchNorm2D.Configuration(name: "bn2", numFeatures: 32), at: 4)
        d.layers.insert(BatchNorm2D.Configuration(name: "bn1", numFeatures: 16), at: 1)
        return d
    }

    /// A network of one BatchNorm2d(3) on (3, 5, 6) samples with the
    /// fixture's weight, bias and running statistics.
    func fixtureLayer(_ fixture: SafetensorsFile) throws -> Network {
        let net = try Network(NetworkDescription(inputShape: FeatureShape(channels: 3, height: 5, width: 6),
                                                 layers: [BatchNorm2D.Configuration(name: "bn", numFeatures: 3)]))
        try net.parameters.setValues(try tensor(fixture, "weight"), of: "bn.weight")
        try net.parameters.setValues(try tensor(fixture, "bias"), of: "bn.bias")
        try net.buffers.setValues(try tensor(fixture, "running_mean0"), of: "bn.running_mean")
        try net.buffers.setValues(try tensor(fixture, "running_var0"), of: "bn.running_var")
        return net
    }

    /// One pass of `net` (mode `training`) on x with upstream gradient dy:
    /// (y, dx, dweight, dbias).
    func pass(_ net: Network, x: [Float], dy: [Float], training: Bool) throws -> (y: [Float], dx: [Float], dw: [Float], db: [Float]) {
        let n = x.count / net.inputShape.count
        net.parameters.zeroGradients()
        _ = try net.input(batch: n).update(fromContentsOf: x)
        let y = Array(UnsafeBufferPointer(start: net.forward(batch: n, training: training), count: x.count))
        _ = try net.outputGradient(batch: n).update(fromContentsOf: dy)
        net.backward(batch: n, inputGradient: true)
        return (y, Array(UnsafeBufferPointer(start: net.inputGradient, count: x.count)),
                net.parameters.gradient(of: "bn.weight") ?? [], net.parameters.gradient(of: "bn.bias") ?? [])
    }

    /// Scripts/make_batchnorm_reference.py: PyTorch's train-mode forward and
    /// backward with batch statistics, the running-statistics update over
    /// two batches, and the eval-mode forward and backward.
    ///
    /// Bounds: each statistic is a Double sum, so μ and σ² carry one float
    /// rounding (ε); x̂ = (x − μ)·(1/σ) rounds three times, y = γ·x̂ + β
    /// twice more, so |y − y*| ≤ ~6ε·(|γ|·|x̂| + |β|). PyTorch's own float32
    /// answer sits within the same of the exact one, so the two are held to
    /// twice that against each other, and ours alone to it against the
    /// fixture's float64 answer. dx = γ/σ·(dy − mean(dy) − x̂·mean(dy·x̂))
    /// rounds each of its four terms a few times: 8ε·|γ/σ|·(|dy| + |mean dy|
    /// + |x̂|·|mean(dy·x̂)|). dγ and dβ are sums of M = 120 products, summed in
    /// Double here and by a float reduction in PyTorch: ε·M·Σ|terms|.
    @Test func testBatchNormMatchesPyTorch() throws {
        let f = try loadFixture("batchnorm_reference")
        let x = try tensor(f, "x"), dy = try tensor(f, "dy"), gamma = try tensor(f, "weight"), beta = try tensor(f, "bias")
        let eps = ErrorBound.epsilon, HW = 30, C = 3
        let net = try fixtureLayer(f)
        let train = try pass(net, x: x, dy: dy, training: true)
        let exactY = try tensor(f, "double.train.y"), exactDx = try tensor(f, "double.train.dx")
        // |x̂| from the exact output: (y − β)/γ.
        let xhat = exactY.indices.map { i -> Float in let c = (i / HW) % C; return abs((exactY[i] - beta[c]) / gamma[c]) }
        let yBounds = xhat.indices.map { i -> Float in let c = (i / HW) % C; return 6 * eps * (abs(gamma[c]) * xhat[i] + abs(beta[c]) + 1) }
        assertWithin(train.y, exactY, "train y against float64", bounds: yBounds, "6ε·(|γ·x̂| + |β| + 1)")
        assertWithin(train.y, try tensor(f, "train.y"), "train y against PyTorch", bounds: yBounds.map { 2 * $0 }, "twice the one-sided bound")
        // Per channel: mean |dy| and mean |dy·x̂| over its M = 120 values.
        func channelMean(_ f: (Int) -> Float) -> [Float] {
            (0..<C).map { c in (0..<4).flatMap { s in (0..<HW).map { (s * C + c) * HW + $0 } }.map(f).reduce(0, +) / 120 }
        }
        let meanDy = channelMean { abs(dy[$0]) }, meanDyXhat = channelMean { abs(dy[$0]) * xhat[$0] }
        let inverseStd = (0..<C).map { c -> Float in
            // 1/σ from the exact answer: y's slope over x is γ/σ.
            let i = c * HW, j = c * HW + 1
            return abs((exactY[i] - exactY[j]) / (x[i] - x[j])) / abs(gamma[c])
        }
        let dxBounds = dy.indices.map { i -> Float in
            let c = (i / HW) % C
            return 8 * eps * abs(gamma[c]) * inverseStd[c] * (abs(dy[i]) + meanDy[c] + xhat[i] * meanDyXhat[c])
        }
        assertWithin(train.dx, exactDx, "train dx against float64", bounds: dxBounds, "8ε·|γ/σ|·(|dy| + |mean dy| + |x̂|·|mean dy·x̂|)")
        assertWithin(train.dx, try tensor(f, "train.dx"), "train dx against PyTorch", bounds: dxBounds.map { 2 * $0 }, "twice that")
        let sumBound = { (c: Int, terms: [Float]) -> Float in ErrorBound.reduction(120, magnitude: terms.map(abs).max() ?? 0) * 120 }
        let dbBound = (0..<C).map { c in sumBound(c, dy) }
        assertWithin(train.db, try tensor(f, "train.dbias"), "train dβ", bounds: dbBound, "ε·M·M·max|dy|")
        assertWithin(train.dw, try tensor(f, "train.dweight"), "train dγ", bounds: dbBound.map { $0 * 4 }, "ε·M·M·max|dy·x̂| (|x̂| < 4)")

        // The running statistics after this batch, then after a second.
        let statBound: Float = 4 * eps * 4  // a few roundings of values below 4
        assertWithin(net.buffers.values(of: "bn.running_mean") ?? [], try tensor(f, "train.running_mean"), "running mean",
                     bound: statBound, "a few roundings of values below 4")
        assertWithin(net.buffers.values(of: "bn.running_var") ?? [], try tensor(f, "train.running_var"), "running var",
                     bound: statBound, "a few roundings of values below 4")
        _ = try pass(net, x: try tensor(f, "x2"), dy: dy, training: true)
        assertWithin(net.buffers.values(of: "bn.running_mean") ?? [], try tensor(f, "train2.running_mean"), "running mean, 2",
                     bound: 2 * statBound, "two updates")
        assertWithin(net.buffers.values(of: "bn.running_var") ?? [], try tensor(f, "train2.running_var"), "running var, 2",
                     bound: 2 * statBound, "two updates")

        // Evaluation: the running statistics of the fixture, unchanged by the pass.
        let fresh = try fixtureLayer(f)
        let before = Array(fresh.buffers.values)
        let eval = try pass(fresh, x: x, dy: dy, training: false)
        #expect(Array(fresh.buffers.values) == before, "evaluation leaves the running statistics")
        let evalY = try tensor(f, "eval.y")
        assertWithin(eval.y, evalY, "eval y", bounds: evalY.indices.map { 8 * eps * (abs(evalY[$0]) + abs(x[$0]) * 4 + 4) },
                     "a few roundings of x·scale + shift")
        let evalDx = try tensor(f, "eval.dx")
        assertWithin(eval.dx, evalDx, "eval dx", bounds: evalDx.map { 4 * eps * abs($0) }, "dy·γ/σ, a few roundings")
        assertWithin(eval.db, try tensor(f, "eval.dbias"), "eval dβ", bounds: dbBound, "ε·M·M·max|dy|")
        assertWithin(eval.dw, try tensor(f, "eval.dweight"), "eval dγ", bounds: dbBound.map { $0 * 4 }, "ε·M·M·max|dy·x̂|")
        // The inference path runs evaluation mode.
        let inferred = try fresh.predict(x)
        assertWithin(inferred, evalY, "infer", bounds: evalY.indices.map { 8 * eps * (abs(evalY[$0]) + abs(x[$0]) * 4 + 4) }, "as eval y")
    }

    /// Central differences through the batch statistics (train mode).
    @Test func testBatchNormGradient() throws {
        let shape = FeatureShape(channels: 3, height: 4, width: 5)
        // BatchNorm first, so the input gradient goes through the batch
        // statistics. (A bias before it would have a gradient of exactly 0:
        // the mean takes it away.)
        let net = try network(shape, [BatchNorm2D("bn", features: 3), Conv2D("conv", inChannels: 3, outChannels: 4, kernelSize: 3),
                                      Tanh("t")])
        // γ and β away from their 1 and 0, so their gradients are not special.
        try net.parameters.setValues([1.3, 0.7, -0.9], of: "bn.weight")
        try net.parameters.setValues([0.1, -0.2, 0.3], of: "bn.bias")
        try check(net, input: randomValues(3 * shape.count, seed: 12), batch: 3, eps: 1e-2)
    }

    /// Dropout: the mask's share of zeros is p, kept values are scaled by
    /// 1/(1 − p), backward uses the same mask; evaluation is the identity.
    @Test func testDropout() throws {
        let net = try Network(NetworkDescription(inputShape: FeatureShape(features: 1000),
                                                 layers: [Dropout.Configuration(name: "drop", p: 0.3)]))
        let x = randomValues(4000, seed: 3, 0.5, 2)
        let dy = randomValues(4000, seed: 4)
        _ = try net.input(batch: 4).update(fromContentsOf: x)
        let y = Array(UnsafeBufferPointer(start: net.forward(batch: 4), count: 4000))
        _ = try net.outputGradient(batch: 4).update(fromContentsOf: dy)
        net.backward(batch: 4, inputGradient: true)
        let dx = Array(UnsafeBufferPointer(start: net.inputGradient, count: 4000))
        let zeros = y.filter { $0 == 0 }.count
        // Binomial(4000, 0.3): mean 1200, standard deviation 29; 5σ either side.
        #expect(abs(zeros - 1200) < 145, "\(zeros) zeros")
        for i in 0..<4000 {
            if y[i] == 0 {
                #expect(dx[i] == 0)
            } else {
                #expect(y[i] == x[i] * (1 / 0.7))
                #expect(dx[i] == dy[i] * (1 / 0.7))
            }
        }
        // Another pass draws another mask.
        let again = Array(UnsafeBufferPointer(start: net.forward(batch: 4), count: 4000))
        #expect(again != y)
        #expect(try net.predict(x) == x, "evaluation is the identity")
        #expect(Array(UnsafeBufferPointer(start: net.forward(batch: 4, training: false), count: 4000)) == x)
    }

    /// Central differences through a fixed mask: the same mask for each
    /// evaluation, by resetting the layer's draw (a fresh network per
    /// evaluation from the same description).
    @Test func testDropoutGradient() throws {
        let d = NetworkDescription(inputShape: FeatureShape(features: 12), layers: [
            Linear.Configuration(name: "fc", inFeatures: 12, outFeatures: 10), Dropout.Configuration(name: "drop", p: 0.4),
            Linear.Configuration(name: "out", inFeatures: 10, outFeatures: 3),
        ])
        let x = randomValues(2 * 12, seed: 5), dy = randomValues(2 * 3, seed: 6)
        func objective(_ w: [Float]) throws -> (Double, [Float]) {
            let net = try Network(d, seed: 1)
            _ = net.parameters.values.update(from: w)
            _ = try net.input(batch: 2).update(fromContentsOf: x)
            let y = net.forward(batch: 2)
            var total = 0.0
            for i in 0..<6 { total += Double(y[i]) * Double(dy[i]) }
            net.parameters.zeroGradients()
            _ = try net.outputGradient(batch: 2).update(fromContentsOf: dy)
            net.backward(batch: 2)
            return (total, Array(net.parameters.gradients))
        }
        let initial = try Network(d, seed: 1)  // kept alive while its values are copied
        let w = Array(initial.parameters.values)
        let (_, analytic) = try objective(w)
        var worst = 0.0
        for i in stride(from: 0, to: w.count, by: 7) {
            var plus = w, minus = w
            plus[i] += 1e-2
            minus[i] -= 1e-2
            let numeric = (try objective(plus).0 - objective(minus).0) / 2e-2
            let error = abs(numeric - Double(analytic[i])) / max(1e-3, abs(numeric) + abs(Double(analytic[i])))
            if error > 1e-2 { Issue.record("parameter \(i): analytic \(analytic[i]), numeric \(numeric)") }
            worst = max(worst, error)
        }
        #expect(worst < 1e-2)
    }

    /// The CIFAR LeNet with BatchNorm trains, and its running statistics move (part 0's),
    /// are saved beside the weights and load back; the weight file loads
    /// in PyTorch's names.
    @Test func testCIFARLeNetBNTrainsAndSavesItsStatistics() throws {
        let train = try TrainingTests.squares(count: 96, seed: 3), test = try TrainingTests.squares(count: 64, seed: 4)
        var options = TrainingOptions()
        options.batchSize = 16
        options.epochs = 3
        options.threads = 2
        let net = try Network(Self.cifarLeNetWithBatchNorm(), seed: 2)
        let trainer = try Trainer(network: net, dataset: train, options: options)
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("bn.safetensors").path
        _ = try trainer.fit(epochs: 3, test: test, checkpoint: path)
        let stats = Array(net.buffers.values)
        #expect(stats != [Float](repeating: 0, count: 16) + [Float](repeating: 1, count: 16) + [Float](repeating: 0, count: 32)
            + [Float](repeating: 1, count: 32))
        #expect(stats.allSatisfy { $0.isFinite })
        let file = try SafetensorsFile.read(path: path)
        #expect(file["bn1.running_mean"]?.shape == [16])
        #expect(file["bn2.running_var"]?.values == net.buffers.values(of: "bn2.running_var"))
        let loaded = try Checkpoint.loadNetwork(path: path)
        #expect(loaded.network.networkDescription.name == "cifar-lenet-bn")
        #expect(Array(loaded.network.buffers.values) == stats)
        let a = try loaded.network.evaluate(on: test, normalization: .half, batchSize: 32, threads: 1)
        let b = try net.evaluate(on: test, normalization: .half, batchSize: 32, threads: 1)
        #expect(a.accuracy == b.accuracy)
        #expect(a.accuracy > 0.3, "accuracy \(a.accuracy) on a task the plain LeNet learns in a few epochs")
    }

    /// The ONNX graph has BatchNormalization over the running statistics
    /// and Identity for dropout.
    @Test func testONNXNodes() throws {
        let d = NetworkDescription(inputShape: FeatureShape(channels: 3, height: 32, width: 32),
                                   layers: try Self.cifarLeNetWithBatchNorm().layers + [Dropout.Configuration(name: "drop")])
        let net = try Network(d, seed: 1)
        let bytes = try ONNXExport.encode(net, metadata: .init(model: "x", normalization: .half, classNames: (0..<10).map(String.init)))
        let text = String(decoding: bytes, as: UTF8.self)
        for needle in ["BatchNormalization", "bn1.running_mean", "bn2.running_var", "epsilon", "Identity"] {
            #expect(text.contains(needle), "\(needle)")
        }
    }

    /// The inference path folds each BatchNorm into the convolution before
    /// it (cifar-lenet-bn's conv+BN+pool+ReLU is one fused step): the step
    /// against the four layers run one by one in evaluation mode, with
    /// running statistics and γ, β far from their initial values (some γ
    /// negative, so the fold must come before the pool).
    ///
    /// Bound, per pooled output: the convolution's sum of K + 1 terms rounds
    /// within (K + 1)·u·Σ|terms| on either path and is then scaled by |s|;
    /// the affine map and the fold's own products add a few roundings of
    /// |s·z| + |t|: ε·((K + 1)·|s|·A + 4·(|s|·A + |t|)), A the pooled sum
    /// of |w|·|x| + |b|.
    @Test(.enabled(if: CPUFeatures.avx2FMA, "the fused kernel needs AVX2 and FMA"))
    func testBatchNormFoldsIntoTheFusedConvolution() throws {
        let net = try Network(.builtIn("cifar-lenet-bn"), seed: 3)
        for (k, name) in ["bn1", "bn2"].enumerated() {
            let C = k == 0 ? 16 : 32
            try net.parameters.setValues(FixedValues.values(C, salt: 80 + k, bound: 1.5), of: "\(name).weight")
            try net.parameters.setValues(FixedValues.values(C, salt: 82 + k, bound: 0.5), of: "\(name).bias")
            try net.buffers.setValues(FixedValues.values(C, salt: 84 + k, bound: 0.3), of: "\(name).running_mean")
            try net.buffers.setValues(FixedValues.values(C, salt: 86 + k, bound: 0.5).map { $0 + 0.6 }, of: "\(name).running_var")
        }
        let n = 3
        _ = try net.input(batch: n).update(fromContentsOf: FixedValues.values(n * net.inputShape.count, salt: 88, bound: 1))
        net.forward(batch: n, training: false)
        for step in net.inferenceSteps.prefix(2) {
            #expect(step.kind == "fused conv+BN+pool+ReLU")
            let i = step.layers.lowerBound
            let (input, expected, y) = runStep(step, of: net, batch: n)
            guard let conv = net.layers[i] as? Conv2D, let (w, b) = conv.values, let bn = net.layers[i + 1] as? BatchNorm2D else {
                Issue.record("layers \(step.layers)")
                return
            }
            let OC = conv.outChannels, g = conv.geometry(for: i == 0 ? net.inputShape : net.shapes[i - 1])
            let gamma = net.parameters.values(of: bn.name + ".weight") ?? [], beta = net.parameters.values(of: bn.name + ".bias") ?? []
            let mean = net.buffers.values(of: bn.name + ".running_mean") ?? [], variance = net.buffers.values(of: bn.name + ".running_var") ?? []
            let s = (0..<OC).map { gamma[$0] / (variance[$0] + bn.epsilon).squareRoot() }
            let t = (0..<OC).map { beta[$0] - mean[$0] * s[$0] }
            let W = Array(UnsafeBufferPointer(start: w, count: OC * g.patch)).map(abs), B = Array(UnsafeBufferPointer(start: b, count: OC)).map(abs)
            let CHW = g.channels * g.height * g.width, out = expected.count / n, plane = out / OC
            var bounds: [Float] = []
            for sample in 0..<n {
                var a = [Float](repeating: 0, count: out)
                convPoolReLUNaive(&a, input[sample * CHW..<(sample + 1) * CHW].map(abs), W, B, g, outChannels: OC)
                bounds += a.indices.map { j in
                    let oc = j / plane, e = ErrorBound.epsilon
                    return e * (Float(g.patch + 1) * abs(s[oc]) * a[j] + 4 * (abs(s[oc]) * a[j] + abs(t[oc])))
                }
            }
            assertWithin(y, expected, "\(conv.name)+\(bn.name)", bounds: bounds, "ε·((K + 1)·|s|·A + 4·(|s|·A + |t|))")
        }
        #expect(Array(UnsafeBufferPointer(start: net.activations[4].pointer, count: 3 * 16 * 14 * 14)).contains { $0 > 0 })
    }

    /// The report's feature map runs evaluation mode: BatchNorm's running
    /// statistics are the same after it, and so are Dropout's next masks.
    @Test func testFeatureMapLeavesTheRunningStatistics() throws {
        var d = try Self.cifarLeNetWithBatchNorm()
        d.layers.insert(Dropout.Configuration(name: "drop", p: 0.5), at: d.layers.count - 1)
        let net = try Network(d, seed: 1)
        _ = net.buffers.values.update(from: FixedValues.values(net.buffers.count, salt: 90, bound: 0.5).map { $0 + 0.6 })
        let before = Array(net.buffers.values)
        let test = try TrainingTests.squares(count: 40, seed: 5)
        _ = try FeatureMap(network: net, dataset: test, normalization: .half)
        #expect(Array(net.buffers.values) == before)
    }

    /// BatchNorm over 1×1 maps needs two samples in every training pass:
    /// a batch and thread count that would give a part one is refused,
    /// naming the layer.
    @Test func testBatchNormOverOneValueNeedsTwoSamples() throws {
        let d = NetworkDescription(inputShape: FeatureShape(features: 4), layers: [
            Linear.Configuration(name: "fc", inFeatures: 4, outFeatures: 6), BatchNorm2D.Configuration(name: "bn", numFeatures: 6),
            Linear.Configuration(name: "out", inFeatures: 6, outFeatures: 2),
        ])
        let data = try ImageDataset(name: "tiny", channels: 4, height: 1, width: 1, images: FixedValues.labels(4 * 9, salt: 3, classes: 200).map(UInt8.init),
                                    labels: FixedValues.labels(9, salt: 4, classes: 2).map(UInt8.init), classNames: ["a", "b"])
        var options = TrainingOptions()
        options.batchSize = 4
        options.threads = 1
        // 9 images in batches of 4: the last batch has one.
        assertError("bn", "needs 2 samples here, and a step would give it 1") { try Trainer(network: Network(d), dataset: data, options: options) }
        options.threads = 5
        options.batchSize = 9  // parts of 1 and 2
        assertError("bn", "needs 2 samples") { try Trainer(network: Network(d), dataset: data, options: options) }
        options.threads = 2
        _ = try Trainer(network: Network(d), dataset: data, options: options)  // parts of 4 and 5
    }

    /// Dropout's masks follow the network's seed (and only its own stream:
    /// the weights are the same with or without it).
    @Test func testDropoutMasksFollowTheSeed() throws {
        let d = NetworkDescription(inputShape: FeatureShape(features: 64), layers: [
            Linear.Configuration(name: "fc", inFeatures: 64, outFeatures: 64), Dropout.Configuration(name: "drop", p: 0.5),
        ])
        func mask(_ seed: UInt64) throws -> [Bool] {
            let net = try Network(d, seed: seed)
            _ = try net.input(batch: 2).update(fromContentsOf: [Float](repeating: 1, count: 128))
            let y = net.forward(batch: 2)
            return (0..<128).map { y[$0] == 0 }
        }
        #expect(try mask(1) == mask(1))
        #expect(try mask(1) != mask(2))
        let plain = try Network(NetworkDescription(inputShape: d.inputShape, layers: [d.layers[0]]), seed: 1)
        let withDropout = try Network(d, seed: 1)  // kept alive while its values are read
        #expect(Array(withDropout.parameters.values) == Array(plain.parameters.values))
    }

    /// A run of a BatchNorm network stopped after an epoch and resumed is
    /// bitwise one run: the running statistics travel in the weights file,
    /// and the state file matches those weights, statistics included.
    @Test func testStoppedAndResumedIsBitwiseOneRun() throws {
        // Every weight and statistic comes from the checkpoint: the resumed
        // network starts from another seed.
        try stoppedAndResumed(Self.cifarLeNetWithBatchNorm(), resumedSeed: 99)
        // Dropout's masks follow the network's seed (as `lenet train --resume
        // --seed` gives it) and the step, so a resumed run draws the same ones.
        var dropout = try Self.cifarLeNetWithBatchNorm()
        dropout.layers.insert(Dropout.Configuration(name: "drop", p: 0.3), at: dropout.layers.count - 3)
        try stoppedAndResumed(dropout, resumedSeed: 4)
    }

    func stoppedAndResumed(_ description: NetworkDescription, resumedSeed: UInt64) throws {
        let train = try TrainingTests.squares(count: 64, seed: 6)
        var options = TrainingOptions()
        options.batchSize = 16
        options.epochs = 2
        options.threads = 2
        let straight = try Network(description, seed: 4)
        let one = try Trainer(network: straight, dataset: train, options: options)
        for _ in 0..<2 { _ = try one.trainEpoch() }

        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("half.safetensors").path
        let first = try Trainer(network: try Network(description, seed: 4), dataset: train, options: options)
        _ = try first.trainEpoch()
        try first.saveCheckpoint(to: path)
        let resumedNetwork = try Network(description, seed: resumedSeed)
        let second = try Trainer(network: resumedNetwork, dataset: train, options: options)
        try second.resume(from: path)
        _ = try second.trainEpoch()
        #expect(Array(resumedNetwork.parameters.values) == Array(straight.parameters.values))
        #expect(Array(resumedNetwork.buffers.values) == Array(straight.buffers.values))
    }
}

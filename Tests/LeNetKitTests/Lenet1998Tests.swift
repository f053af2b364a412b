import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// The 1998 paper's LeNet-5 parts: the RBF output, the MAP loss, the SDLM
/// optimizer and its curvature pass, the paper's initialization and the
/// LeNet-1 and LeNet-4 descriptions.
struct Lenet1998Tests {
    static let j = TrainingOptions.paperMapConstant

    /// A network of the given layers on `features` inputs.
    func network(features: Int, _ layers: [any LayerConfiguration]) throws -> Network {
        try Network(NetworkDescription(inputShape: FeatureShape(features: features), layers: layers))
    }

    /// Scripts/make_lenet1998_reference.py: the prototypes are the drawings;
    /// z, the MAP loss and its gradients are PyTorch's.
    ///
    /// Bounds: each z is a sum of 84 squares, summed here in Double and
    /// rounded once, by PyTorch in float32: |Δz| ≤ 84·ε·|z| against
    /// PyTorch, ε·|z| against the float64 answer. The loss is −z_D plus a
    /// log-sum-exp: its error is that of z (the log-sum-exp moves by at most
    /// the largest change of its terms) plus a few roundings, 4ε·(|z_D| + |E|).
    /// dz = p − onehot moves by at most half the change of z (a probability's
    /// derivatives sum to at most ½ in absolute value) plus 4ε. dx_j =
    /// −2 Σ_i dz_i (x_j − w_ij) is 10 products of factors off by those bounds.
    @Test func testRBFAndMAPLossMatchPyTorch() throws {
        let f = try loadFixture("lenet1998_reference")
        #expect(try tensor(f, "prototypes") == RBF.digitBitmaps.flatMap { $0 }, "the fixture was made from other drawings")
        let x = try tensor(f, "rbf.x"), labels = try tensor(f, "rbf.labels").map { Int($0) }
        let n = labels.count, eps = ErrorBound.epsilon
        let net = try network(features: 84, [RBF.Configuration(name: "output", inFeatures: 84, outFeatures: 10)])
        _ = try net.input(batch: n).update(fromContentsOf: x)
        let z = Array(UnsafeBufferPointer(start: net.forward(batch: n), count: n * 10))
        let expectedZ = try tensor(f, "rbf.z"), exactZ = try tensor(f, "double.rbf.z")
        assertWithin(z, expectedZ, "z", bounds: expectedZ.map { 84 * eps * abs($0) + 2 * eps * abs($0) }, "84·ε·|z|, PyTorch's float32 sum")
        assertWithin(z, exactZ, "z (float64)", bounds: exactZ.map { 2 * eps * abs($0) }, "one rounding of a Double sum")

        let loss = SoftmaxCrossEntropy(classes: 10, mapConstant: Self.j)
        let value = try loss.forward(z, labels: labels)
        let exactLoss = try tensor(f, "double.map.loss")[0]
        let zBound = exactZ.reduce(0) { max($0, 2 * eps * abs($1)) }
        let lossBound = 2 * zBound + 4 * eps * (exactZ.map(abs).max() ?? 0 + abs(exactLoss))
        assertWithin([value], [exactLoss], "MAP loss", bound: lossBound, "twice z's bound plus 4ε·(|z| + |E|)")
        assertWithin([value], try tensor(f, "map.loss"), "MAP loss vs PyTorch float32",
                     bound: lossBound + 84 * eps * (exactZ.map(abs).max() ?? 0), "PyTorch's own z error added")

        let dz = try net.outputGradient(batch: n)
        loss.backward(dz)
        let gradient = Array(dz)
        let dzBound = zBound / 2 + 4 * eps
        assertWithin(gradient, try tensor(f, "double.map.dz"), "dz", bound: dzBound, "half z's bound plus 4ε")
        assertWithin(gradient, try tensor(f, "map.dz"), "dz vs PyTorch float32",
                     bound: dzBound + 42 * eps * (exactZ.map(abs).max() ?? 0), "PyTorch's own z error, halved, added")

        net.backward(batch: n, inputGradient: true)
        let dx = Array(UnsafeBufferPointer(start: net.inputGradient, count: n * 84))
        let w = RBF.digitBitmaps
        // |dx_j| ≤ 2 Σ_i |dz_i|·|x_j − w_ij|: each factor off by its bound, each product rounded.
        let dxBounds = (0..<n * 84).map { k -> Float in
            let s = k / 84, jj = k % 84
            return (0..<10).reduce(Float(0)) { sum, i in
                let d = abs(x[k] - w[i][jj]), g = abs(gradient[s * 10 + i])
                return sum + 2 * (dzBound * d + g * d * 8 * eps)
            } + 8 * eps * abs(dx[k])
        }
        assertWithin(dx, try tensor(f, "double.rbf.dx"), "dx", bounds: dxBounds, "2Σ_i (dz bound·|x − w| + 8ε·|dz·(x − w)|)")
    }

    /// One SDLM step of Linear(6→84) → scaled tanh → RBF → MAP loss: the
    /// curvature averaged over 8 samples, the gradient of one, and the
    /// update, each against PyTorch (Scripts/make_lenet1998_reference.py).
    ///
    /// Bounds, relative to each value's own size: the curvature is a sum of
    /// 10 terms 4(x − w)²·p(1 − p) and one 2·Σdz; x carries the forward's
    /// error (6-term sums and a tanh within a few ulp, ~16ε relative), p
    /// moves by half of z's error (84 terms of x's error times 2|x − w| ≤ 6),
    /// so each term is held to 64ε·(its size) plus that: 2e-4 relative to the
    /// largest curvature covers it. The gradient is the same chain once: 1e-4
    /// of its largest. The step η/(μ + h)·g is within the two bounds' sum.
    @Test func testSDLMStepMatchesPyTorch() throws {
        let f = try loadFixture("lenet1998_reference")
        let net = try network(features: 6, [
            Linear.Configuration(name: "f6", inFeatures: 6, outFeatures: 84), Tanh.Configuration.lecun("f6.tanh"),
            RBF.Configuration(name: "output", inFeatures: 84, outFeatures: 10),
        ])
        try net.parameters.setValues(try tensor(f, "sdlm.weight"), of: "f6.weight")
        try net.parameters.setValues(try tensor(f, "sdlm.bias"), of: "f6.bias")
        let u = try tensor(f, "sdlm.u"), labels = try tensor(f, "sdlm.labels").map { Int32($0) }
        let n = labels.count, P = net.parameters.count
        _ = try net.input(batch: n).update(fromContentsOf: u)
        let logits = net.forward(batch: n)
        let loss = SoftmaxCrossEntropy(classes: 10, mapConstant: Self.j)
        _ = try labels.withUnsafeBufferPointer { try loss.forward(logits, $0.baseAddress!, batch: n) }
        loss.backward(try net.outputGradient(batch: n), meanOver: 1)
        var outputCurvature = [Float](repeating: 0, count: n * 10)
        outputCurvature.withUnsafeMutableBufferPointer { loss.curvature(into: $0.baseAddress!) }
        var sum = [Float](repeating: 0, count: P)
        try outputCurvature.withUnsafeBufferPointer { h in
            try sum.withUnsafeMutableBufferPointer { try net.accumulateCurvature(batch: n, outputCurvature: h.baseAddress!, into: $0.baseAddress!) }
        }
        let h = sum.map { $0 / Float(n) }
        let expectedH = try tensor(f, "sdlm.curvature.weight") + tensor(f, "sdlm.curvature.bias")
        let hBound = 2e-4 * (expectedH.map(abs).max() ?? 0)
        assertWithin(h, expectedH, "curvature", bound: hBound, "2e-4 of the largest: the forward's error through 10 RBF terms")
        #expect(net.parameters.gradients.allSatisfy { $0 == 0 }, "the pass leaves the gradients at 0")
        #expect(Array(net.parameters.values) == (try tensor(f, "sdlm.weight") + tensor(f, "sdlm.bias")), "the pass restores the weights")

        let sdlm = try SDLM(parameters: net.parameters, learningRate: 0.01, mu: 0.02)
        h.withUnsafeBufferPointer { sdlm.setCurvature($0, samples: n) }
        _ = try net.input(batch: 1).update(fromContentsOf: try tensor(f, "sdlm.step_u"))
        let one = net.forward(batch: 1)
        _ = try loss.forward(one, labels: [Int(try tensor(f, "sdlm.step_label")[0])])
        net.parameters.zeroGradients()
        loss.backward(try net.outputGradient(batch: 1))
        net.backward(batch: 1)
        let expectedG = try tensor(f, "sdlm.grad.weight") + tensor(f, "sdlm.grad.bias")
        let gBound = 1e-4 * (expectedG.map(abs).max() ?? 0)
        assertWithin(Array(net.parameters.gradients), expectedG, "gradient", bound: gBound, "1e-4 of the largest")
        sdlm.step()
        let after = try tensor(f, "sdlm.after.weight") + tensor(f, "sdlm.after.bias")
        let rate = 0.01 / 0.02 as Float  // the largest η/(μ + h)
        let stepBound = rate * (gBound + (expectedG.map(abs).max() ?? 0) * hBound / 0.02) + 4 * ErrorBound.epsilon
        assertWithin(Array(net.parameters.values), after, "after one step", bound: stepBound,
                     "η/μ·(the gradient's bound + |g|·the curvature's bound/μ)")
        #expect(sdlm.stepCount == 1)
    }

    /// The curvature pass against finite differences of the network's own
    /// gradient, where the Gauss–Newton diagonal is the exact second
    /// derivative: Linear(3→84) → RBF with one class (so the loss's Hessian
    /// in z is its diagonal, p(1 − p)), each weight reaching the loss
    /// through one RBF input. Inputs near the prototype put p mid-range, so
    /// the MAP loss's rubbish term and its softmax both curve.
    ///
    /// Bound: the central difference of a Float gradient at ±δ carries the
    /// gradient's rounding, r·G/δ (G its largest value, r = 84·ε from the
    /// 84-term sum behind p), and a truncation error that the difference
    /// between the δ and δ/2 estimates measures (4/3 of it bounds the δ
    /// estimate's, the error being O(δ²)).
    @Test func testCurvatureIsTheFiniteDifferenceOfTheGradient() throws {
        let net = try network(features: 3, [
            Linear.Configuration(name: "f6", inFeatures: 3, outFeatures: 84),
            RBF.Configuration(name: "output", inFeatures: 84, outFeatures: 1),
        ])
        var rng = SeededGenerator(seed: 7)
        let prototype = RBF.digitBitmaps[0]
        // The bias puts F6's output near the prototype: y ≈ j, p ≈ ½.
        let weight = (0..<84 * 3).map { _ in rng.uniform(-0.3, 0.3) }
        let bias = prototype.map { $0 * 0.7 + rng.uniform(-0.05, 0.05) }
        try net.parameters.setValues(weight, of: "f6.weight")
        try net.parameters.setValues(bias, of: "f6.bias")
        let u: [Float] = [0.4, -0.7, 0.9]
        let loss = SoftmaxCrossEntropy(classes: 1, mapConstant: Self.j)
        func gradient() throws -> [Float] {
            _ = try net.input(batch: 1).update(fromContentsOf: u)
            _ = try loss.forward(net.forward(batch: 1), labels: [0])
            net.parameters.zeroGradients()
            loss.backward(try net.outputGradient(batch: 1))
            net.backward(batch: 1)
            return Array(net.parameters.gradients)
        }
        let g0 = try gradient()
        let p = loss.lastProbabilities[0]
        #expect(p > 0.05 && p < 0.95, "p = \(p): the test wants the softmax's curvature")
        var h = [Float](repeating: 0, count: net.parameters.count)
        var hz: [Float] = [0]
        hz.withUnsafeMutableBufferPointer { loss.curvature(into: $0.baseAddress!) }
        try hz.withUnsafeBufferPointer { z in
            try h.withUnsafeMutableBufferPointer { try net.accumulateCurvature(batch: 1, outputCurvature: z.baseAddress!, into: $0.baseAddress!) }
        }
        let G = g0.map(abs).max() ?? 0
        let checked = Array(stride(from: 0, to: net.parameters.count, by: 7))
        for k in checked {
            func difference(_ delta: Float) throws -> Float {
                let saved = net.parameters.values[k]
                net.parameters.values[k] = saved + delta
                let plus = try gradient()[k]
                net.parameters.values[k] = saved - delta
                let minus = try gradient()[k]
                net.parameters.values[k] = saved
                return (plus - minus) / (2 * delta)
            }
            let delta: Float = 1e-2
            let coarse = try difference(delta), fine = try difference(delta / 2)
            let bound = 84 * ErrorBound.epsilon * G / (delta / 2) + 4 / 3 * abs(coarse - fine) + 1e-6
            #expect(abs(h[k] - fine) <= bound, "parameter \(k): curvature \(h[k]), finite difference \(fine) (bound \(bound))")
        }
    }

    /// Each rule of the curvature pass on a convolution with a table, a
    /// trainable subsampling, a scaled tanh and a linear layer, against the
    /// formulas written out by hand: h_w = Σ over w's connections of u²·h_a,
    /// h_u = Σ w²·h_a, h_a = f′(a)²·h_x. Two samples, the output curvature given.
    @Test func testCurvatureRulesMatchTheirFormulas() throws {
        let net = try Network(NetworkDescription(inputShape: FeatureShape(channels: 2, height: 6, width: 6), layers: [
            Conv2D.Configuration(name: "c", inChannels: 2, outChannels: 3, kernelSize: 3, table: [[0], [1], [0, 1]]),
            Subsampling.Configuration(name: "s", channels: 3), Tanh.Configuration.lecun("t"),
            Linear.Configuration(name: "f", inFeatures: 12, outFeatures: 2),
        ]), seed: 3)
        let n = 2
        var rng = SeededGenerator(seed: 11)
        let x = (0..<n * 72).map { _ in rng.uniform(-1, 1) }
        _ = try net.input(batch: n).update(fromContentsOf: x)
        net.forward(batch: n)
        _ = try net.outputGradient(batch: n).update(fromContentsOf: [0.3, -0.2, 0.1, 0.4])
        let hOut: [Float] = [0.5, 1.5, 2.0, 0.25]
        var h = [Float](repeating: 0, count: net.parameters.count)
        try hOut.withUnsafeBufferPointer { z in
            try h.withUnsafeMutableBufferPointer { try net.accumulateCurvature(batch: n, outputCurvature: z.baseAddress!, into: $0.baseAddress!) }
        }
        func values(_ name: String) -> [Float] { net.parameters.values(of: name) ?? [] }
        func slice(_ name: String) -> [Float] {
            guard let e = net.parameters.entries.first(where: { $0.name == name }) else { return [] }
            return Array(h[e.offset..<e.offset + e.count])
        }
        let fw = values("f.weight"), cw = values("c.weight"), sw = values("s.weight")
        let conv = net.activation(after: 0), tanh = net.activation(after: 2)
        // By hand, per sample: Linear, tanh, subsampling, convolution.
        var hfw = [Float](repeating: 0, count: 24), hfb = [Float](repeating: 0, count: 2)
        var hsw = [Float](repeating: 0, count: 3), hsb = [Float](repeating: 0, count: 3)
        var hcw = [Float](repeating: 0, count: 3 * 2 * 9), hcb = [Float](repeating: 0, count: 3)
        for s in 0..<n {
            var hx = [Float](repeating: 0, count: 12)  // at the tanh's output
            for o in 0..<2 {
                let ho = hOut[s * 2 + o]
                hfb[o] += ho
                for i in 0..<12 {
                    hfw[o * 12 + i] += tanh[s * 12 + i] * tanh[s * 12 + i] * ho
                    hx[i] += fw[o * 12 + i] * fw[o * 12 + i] * ho
                }
            }
            var ha = [Float](repeating: 0, count: 12)  // at the subsampling's output
            for i in 0..<12 {
                let t = tanh[s * 12 + i] / 1.7159
                let derivative = 1.7159 * (2.0 / 3.0) * (1 - t * t)
                ha[i] = derivative * derivative * hx[i]
            }
            var hc = [Float](repeating: 0, count: 3 * 16)  // at the convolution's output (3, 4, 4)
            for c in 0..<3 {
                for i in 0..<2 {
                    for jj in 0..<2 {
                        let hs = ha[c * 4 + i * 2 + jj]
                        hsb[c] += hs
                        for (di, dj) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                            let q = c * 16 + (2 * i + di) * 4 + 2 * jj + dj
                            hsw[c] += conv[s * 48 + q] * conv[s * 48 + q] * hs
                            hc[q] += sw[c] * sw[c] * hs
                        }
                    }
                }
            }
            let table = [[0], [1], [0, 1]]
            for oc in 0..<3 {
                for p in 0..<16 {
                    let ha = hc[oc * 16 + p]
                    hcb[oc] += ha
                    for ic in table[oc] {
                        for k in 0..<9 {
                            let v = x[s * 72 + ic * 36 + (p / 4 + k / 3) * 6 + p % 4 + k % 3]
                            hcw[(oc * 2 + ic) * 9 + k] += v * v * ha
                        }
                    }
                }
            }
        }
        _ = cw
        for (name, expected) in [("f.weight", hfw), ("f.bias", hfb), ("s.weight", hsw), ("s.bias", hsb), ("c.weight", hcw), ("c.bias", hcb)] {
            let bound = 64 * ErrorBound.epsilon * (expected.map(abs).max() ?? 0)
            assertWithin(slice(name), expected, name, bound: bound, "sums of at most 64 non-negative terms, rounded two ways")
        }
    }

    /// The paper's initialization: every weight within ±2.4/F of its unit's
    /// fan-in F, C3's table maps by their own fan-in; the prototypes are
    /// the drawings; and the same seed draws the same numbers as PyTorch's
    /// bounds do, scaled.
    @Test func testLeCunInitializationBounds() throws {
        let description = try NetworkDescription.builtIn("lenet5-rbf")
        let lecun = try Network(description, seed: 5, initialization: .lecun)
        let pytorch = try Network(description, seed: 5)
        for (name, fanIn) in [("c1.weight", 25), ("f6.weight", 120), ("c5.weight", 400), ("s2.weight", 4)] {
            let values = lecun.parameters.values(of: name) ?? []
            let bound = 2.4 / Float(fanIn)
            #expect(values.allSatisfy { abs($0) <= bound }, "\(name) beyond ±2.4/\(fanIn)")
            #expect((values.map(abs).max() ?? 0) > 0.9 * bound, "\(name) does not fill ±2.4/\(fanIn)")
            let scaled = (pytorch.parameters.values(of: name) ?? []).map { $0 * 2.4 / Float(fanIn).squareRoot() }
            assertWithin(values, scaled, name, bound: 4 * ErrorBound.epsilon * bound, "the same draw, scaled: a few roundings")
        }
        // C3's maps read 3, 4 or 6 of S2's maps: each drawn within its own fan-in.
        let c3 = lecun.parameters.values(of: "c3.weight") ?? []
        for (oc, inputs) in Conv2D.lecunC3Table.enumerated() {
            let row = c3[oc * 150..<(oc + 1) * 150]
            #expect(row.allSatisfy { abs($0) <= 2.4 / Float(inputs.count * 25) }, "map \(oc)")
        }
        #expect(lecun.buffers.values(of: "output.prototypes") == RBF.digitBitmaps.flatMap { $0 })
    }

    /// LeNet-1 and LeNet-4 as docs/LENET5.md gives them, and LeNet-5 with
    /// its RBF output: parameters counted by hand.
    @Test func testPaperNetworksHaveTheirParameterCounts() throws {
        // LeNet-1: C1 4·(25 + 1), S2 4·2, C3 12·(2·25 + 1), S4 12·2, output 10·(192 + 1).
        #expect(try Network(NetworkDescription.builtIn("lenet1")).trainableParameterCount == 104 + 8 + 612 + 24 + 1930)
        // LeNet-4: C1 104, S2 8·(4 + 1), C3 16·(8·25 + 1), S4 16·2, F5 120·401, output 10·121.
        #expect(try Network(NetworkDescription.builtIn("lenet4")).trainableParameterCount == 104 + 40 + 3216 + 32 + 48120 + 1210)
        // LeNet-5 with RBF: the paper's 60,000 (its fixed prototypes are a buffer, not trained).
        let rbf = try Network(NetworkDescription.builtIn("lenet5-rbf"))
        #expect(rbf.trainableParameterCount == 60_000)
        #expect(rbf.buffers.count == 840)
    }

    /// The digit drawings differ pairwise in at least 14 of 84 cells (the
    /// squared distance 56 that j = 14 is a quarter of).
    @Test func testPrototypesAreFarApart() {
        var closest = Int.max
        for a in 0..<10 {
            for b in a + 1..<10 {
                closest = min(closest, zip(RBF.digitBitmaps[a], RBF.digitBitmaps[b]).filter { $0 != $1 }.count)
            }
        }
        #expect(closest == 14)
        #expect(Self.j == Float(4 * closest) / 4)
    }

    /// SDLM refuses a network a curvature rule cannot cross.
    @Test func testSDLMRefusesBatchNorm() throws {
        let net = try Network(NetworkDescription(inputShape: FeatureShape(channels: 2, height: 4, width: 4), layers: [
            BatchNorm2D.Configuration(name: "bn", numFeatures: 2), Flatten.Configuration(name: "flat"),
            Linear.Configuration(name: "fc", inFeatures: 32, outFeatures: 3),
        ]))
        #expect(throws: LeNetError.self) { try net.checkCurvature() }
    }

    /// A directory of MNIST IDX files: `train` and `test` images of 28×28
    /// with a bar whose place depends on the label.
    static func makeMNIST(_ dir: URL, train: Int, test: Int) throws {
        func header(_ magic: UInt32, _ dims: [Int]) -> [UInt8] {
            ([magic] + dims.map { UInt32($0) }).flatMap { v in (0..<4).map { UInt8((v >> (24 - 8 * $0)) & 0xFF) } }
        }
        for (split, n) in [("train", train), ("t10k", test)] {
            var images = header(0x0000_0803, [n, 28, 28]), labels = header(0x0000_0801, [n])
            for k in 0..<n {
                let label = k % 10
                labels.append(UInt8(label))
                images += (0..<784).map { p in (p / 28 >= 4 + label * 2 && p / 28 < 8 + label * 2 && (p % 28) > 6 && (p % 28) < 21) ? 255 : 0 }
            }
            try Data(images).write(to: dir.appendingPathComponent("\(split)-images-idx3-ubyte"))
            try Data(labels).write(to: dir.appendingPathComponent("\(split)-labels-idx1-ubyte"))
        }
    }

    /// `lenet train` on MNIST: `--augment` crops but never mirrors a digit;
    /// `--recipe lenet5-1998` trains the RBF network by SDLM, distorted, and
    /// resumes; LeNet-1 reads the digits unpadded; bad SDLM and MAP flags
    /// are one error line naming the flag.
    @Test(.disabledUnderSanitizers) func testTrainingCommandOnMNIST() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lenetkit-mnist-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.makeMNIST(dir, train: 60, test: 20)
        let augmented = try runLenet(["train", "--data", dir.path, "--augment", "--epochs", "1", "--threads", "1"])
        #expect(augmented.status == 0, "\(augmented.stderr)")
        #expect(augmented.stderr.contains("augmented (crop 4)") && !augmented.stderr.contains("flip"), "\(augmented.stderr)")

        let checkpoint = dir.appendingPathComponent("rbf.safetensors").path
        let paper = try runLenet(["train", "--data", dir.path, "--recipe", "lenet5-1998", "--distort", "affine", "--epochs", "1",
                                  "--curvature-samples", "30", "--output", checkpoint])
        #expect(paper.status == 0, "\(paper.stderr)")
        for words in ["training lenet5-rbf (60,000 parameters)", "batch 1, sdlm (μ 1.0) lr 0.0005 (lecun-1998)", "affine distortions",
                      "MAP loss (j 14.0)", "LeCun initialization"] {
            #expect(paper.stderr.contains(words), "\(words): \(paper.stderr)")
        }
        let resumed = try runLenet(["train", "--data", dir.path, "--recipe", "lenet5-1998", "--distort", "affine", "--epochs", "2",
                                    "--curvature-samples", "30", "--resume", checkpoint, "--output", checkpoint])
        #expect(resumed.status == 0 && resumed.stdout.contains("epoch 2/2 "), "\(resumed.stderr)")
        let state = try SafetensorsFile.read(path: checkpoint + ".state")
        // One curvature per stored value: C3's dense weight holds 900 masked entries beside the 60,000.
        #expect(state["sdlm.curvature"]?.values.count == 60_900)
        #expect(state["sdlm.curvature_samples"]?.values == [30])

        let small = try runLenet(["train", "--data", dir.path, "--model", "lenet1", "--recipe", "lenet5-1998", "--sdlm-mu", "0.02",
                                  "--epochs", "1"])
        #expect(small.status == 0 && small.stderr.contains("training lenet1 (2,678 parameters)"), "\(small.stderr)")

        for (flags, subject) in [(["--map-constant", "5"], "--map-constant"), (["--optimizer", "sdlm", "--sdlm-mu", "0"], "--sdlm-mu"),
                                 (["--loss", "map", "--map-constant=-1"], "--map-constant")] {
            let bad = try runLenet(["train", "--data", dir.path, "--epochs", "1"] + flags)
            #expect(bad.status != 0 && bad.stderr.contains(subject), "\(flags): \(bad.stderr)")
            #expect(bad.stderr.split(separator: "\n").count == 1, "\(flags): one line, got \(bad.stderr)")
        }
    }
}

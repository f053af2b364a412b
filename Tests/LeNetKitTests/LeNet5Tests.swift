import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// LeNet-5 of LeCun et al. 1998: the paper's numbers, the C3 connection
/// table, the two new layers against finite differences and a naive
/// reference, and the masked C3 weights through optimizer steps.
struct LeNet5Tests: GradientCheckHarness {
    // MARK: - The paper's numbers

    struct Row {
        var name: String, input: String, output: String
        var kernel: String?, kernels: Int?
        var parameters: Int, connections: Int
    }

    /// Section II-B of the paper, layer by layer, with the squashing layers
    /// (no parameters, no connections counted) in between.
    let expectedRows: [Row] = [
        Row(name: "c1", input: "1×32×32", output: "6×28×28", kernel: "5×5", kernels: 6, parameters: 156, connections: 122_304),
        Row(name: "c1.tanh", input: "6×28×28", output: "6×28×28", parameters: 0, connections: 0),
        Row(name: "s2", input: "6×28×28", output: "6×14×14", kernel: "2×2", kernels: 6, parameters: 12, connections: 5_880),
        Row(name: "s2.tanh", input: "6×14×14", output: "6×14×14", parameters: 0, connections: 0),
        Row(name: "c3", input: "6×14×14", output: "16×10×10", kernel: "5×5", kernels: 16, parameters: 1_516, connections: 151_600),
        Row(name: "c3.tanh", input: "16×10×10", output: "16×10×10", parameters: 0, connections: 0),
        Row(name: "s4", input: "16×10×10", output: "16×5×5", kernel: "2×2", kernels: 16, parameters: 32, connections: 2_000),
        Row(name: "s4.tanh", input: "16×5×5", output: "16×5×5", parameters: 0, connections: 0),
        Row(name: "c5", input: "16×5×5", output: "120", kernel: "5×5", kernels: 120, parameters: 48_120, connections: 48_120),
        Row(name: "c5.tanh", input: "120", output: "120", parameters: 0, connections: 0),
        Row(name: "f6", input: "120", output: "84", parameters: 10_164, connections: 10_164),
        Row(name: "f6.tanh", input: "84", output: "84", parameters: 0, connections: 0),
        Row(name: "output", input: "84", output: "10", parameters: 850, connections: 850),
    ]

    @Test func testSummaryHasThePapersNumbers() throws {
        let net = try Models.lenet5()
        let rows = net.summary()
        #expect(rows.map(\.name) == expectedRows.map(\.name))
        for (r, e) in zip(rows, expectedRows) {
            #expect(r.input.description == e.input, "\(e.name) input")
            #expect(r.output.description == e.output, "\(e.name) output")
            #expect(r.kernel == e.kernel, "\(e.name) kernel")
            #expect(r.kernels == e.kernels, "\(e.name) kernels")
            #expect(r.parameters == e.parameters, "\(e.name) parameters")
            #expect(r.connections == e.connections, "\(e.name) connections")
        }
        // 156 + 12 + 1,516 + 32 + 48,120 + 10,164 + 850 = 60,850.
        #expect(rows.reduce(0) { $0 + $1.parameters } == (156 + 12 + 1_516 + 32 + 48_120 + 10_164 + 850) as Int)
        #expect(rows.reduce(0) { $0 + $1.parameters } == 60_850)
        // The paper's 340,908 has an RBF output of 84·10 = 840 connections;
        // a linear output with biases has 850.
        #expect(rows.reduce(0) { $0 + $1.connections } == 340_918)
        #expect(net.outputShape == FeatureShape(features: 10))

        // The store keeps c3.weight dense: 900 more values than parameters.
        #expect(net.parameters.count == 60_850 + (16 * 6 - 60) * 25)
        #expect(net.parameters.entries.map(\.name) == [
            "c1.weight", "c1.bias", "s2.weight", "s2.bias", "c3.weight", "c3.bias",
            "s4.weight", "s4.bias", "c5.weight", "c5.bias", "f6.weight", "f6.bias",
            "output.weight", "output.bias",
        ])
        #expect(net.parameters["c3.weight"]?.shape == [16, 6, 5, 5])
        #expect(net.parameters["s2.weight"]?.shape == [6])
        #expect(net.parameters["s4.bias"]?.shape == [16])

        let table = net.summaryTable()
        print(table)
        #expect(table.contains("60,850"), "\(table)")
        #expect(table.contains("340,918"), "\(table)")
    }

    @Test func testWithoutSquashingAfterC1() throws {
        let rows = try Models.lenet5(squashC1: false).summary()
        #expect(rows.map(\.name) == expectedRows.map(\.name).filter { $0 != "c1.tanh" })
        #expect(rows.reduce(0) { $0 + $1.parameters } == 60_850)
        #expect(rows.reduce(0) { $0 + $1.connections } == 340_918)
    }

    @Test func testKindsName() throws {
        let kinds = Dictionary(uniqueKeysWithValues: try Models.lenet5().summary().map { ($0.name, $0.kind) })
        #expect(kinds["c1"] == "Conv2D 5×5")
        #expect(kinds["s2"] == "Subsampling 2×2")
        #expect(kinds["c3"] == "PartialConv2D 5×5")
        #expect(kinds["s4"] == "Subsampling 2×2")
        #expect(kinds["c5"] == "Conv2D 5×5")
        #expect(kinds["f6"] == "Linear")
        #expect(kinds["output"] == "Linear")
        #expect(kinds["s2.tanh"] == Tanh.lecun().kind)
    }

    // MARK: - Table I

    /// LeCun et al. 1998, Table I, as printed: row = S2 map, column = C3 map.
    let paperTableI = [
        "X...XXX..XXXX.XX",
        "XX...XXX..XXXX.X",
        "XXX...XXX..X.XXX",
        ".XXX..XXXX..X.XX",
        "..XXX..XXXX.XX.X",
        "...XXX..XXXX.XXX",
    ]

    @Test func testC3TableIsTableI() {
        let table = Conv2D.lecunC3Table
        #expect(table.count == 16)
        for oc in 0..<16 {
            let fromPaper = Set((0..<6).filter { Array(paperTableI[$0])[oc] == "X" })
            #expect(Set(table[oc]) == fromPaper, "C3 map \(oc)")
            #expect(table[oc].count == Set(table[oc]).count, "C3 map \(oc) lists a map twice")
        }
        #expect(paperTableI.joined().filter { $0 == "X" }.count == 60)
        #expect(table.map(\.count) == Array(repeating: 3, count: 6) + Array(repeating: 4, count: 9) + [6])
        #expect(table.reduce(0) { $0 + $1.count } == (6 * 3 + 6 * 4 + 3 * 4 + 6) as Int)
        #expect(table[0] == [0, 1, 2])
        #expect(table[5] == [5, 0, 1])
        #expect(table[11] == [5, 0, 1, 2])
        #expect(table[12] == [0, 1, 3, 4])
        #expect(table[13] == [1, 2, 4, 5])
        #expect(table[14] == [0, 2, 3, 5])

        let c3 = Conv2D("c3", inChannels: 6, outChannels: 16, kernelSize: 5, table: table)
        #expect(c3.connectedPairs == 60)
        #expect(c3.trainableParameterCount == 60 * 25 + 16)
        #expect(c3.connections(for: FeatureShape(channels: 6, height: 14, width: 14)) == (60 * 25 + 16) * 100)
    }

    @Test func testBadTablesAndShapesThrowNamingTheLayer() {
        func error(_ layer: any Layer, _ input: FeatureShape = FeatureShape(channels: 6, height: 14, width: 14)) -> String {
            do {
                _ = try Network(inputShape: input, layers: [layer])
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        #expect(error(Conv2D("c3", inChannels: 6, outChannels: 2, kernelSize: 5, table: [[0, 6], [1]])) == "c3: row 0 of the connection table, [0, 6], must list distinct input maps in 0..<6")
        #expect(error(Conv2D("c3", inChannels: 6, outChannels: 2, kernelSize: 5, table: [[1, 1], [1]])) == "c3: row 0 of the connection table, [1, 1], must list distinct input maps in 0..<6")
        #expect(error(Conv2D("c3", inChannels: 6, outChannels: 2, kernelSize: 5, table: [[0], []])) == "c3: row 1 of the connection table, [], must list distinct input maps in 0..<6")
        #expect(error(Conv2D("c3", inChannels: 6, outChannels: 3, kernelSize: 5, table: [[0], [1]])) == "c3: the connection table has 2 rows for 3 output maps")
        #expect(error(Conv2D("c3", inChannels: 6, outChannels: 1, kernelSize: 15, table: [[0]])) == "c3: a 15×15 kernel (stride 1, padding 0) does not fit input 6×14×14")
        #expect(error(Subsampling("s2", channels: 4)) == "s2: expects 4 input channels, got 6 (input 6×14×14)")
        #expect(error(Subsampling("s2", channels: 6, kernelSize: 3), FeatureShape(channels: 6, height: 2, width: 9)) == "s2: a 3×3 window does not fit input 6×2×9")
    }

    // MARK: - Subsampling

    @Test func testSubsamplingKnownValues() throws {
        // One 4×5 map (the last column has no window), w = 2, b = 0.5.
        let net = try Network(inputShape: FeatureShape(channels: 1, height: 4, width: 5), layers: [Subsampling("s", channels: 1)])
        try net.parameters.setValues([2], of: "s.weight")
        try net.parameters.setValues([0.5], of: "s.bias")
        let x = (1...20).map(Float.init)
        let y = try net.predict(x)
        // windows: {1,2,6,7}, {3,4,8,9}, {11,12,16,17}, {13,14,18,19}
        #expect(y == [32.5, 48.5, 112.5, 128.5] as [Float])

        _ = try net.outputGradient(batch: 1).update(fromContentsOf: [1, 10, 100, 1000] as [Float])
        net.parameters.zeroGradients()
        net.backward(batch: 1, inputGradient: true)
        #expect(net.parameters.gradient(of: "s.weight") == [69_856] as [Float])  // 1·16 + 10·24 + 100·56 + 1000·64
        #expect(net.parameters.gradient(of: "s.bias") == [1111])
        let dx = Array(UnsafeBufferPointer(start: net.inputGradient, count: 20))
        #expect(dx == [2, 2, 20, 20, 0,
                            2, 2, 20, 20, 0,
                            200, 200, 2000, 2000, 0,
                            200, 200, 2000, 2000, 0])
        // Backward adds into the parameter gradients.
        net.backward(batch: 1)
        #expect(net.parameters.gradient(of: "s.bias") == [2222])
    }

    @Test func testSubsamplingGradients() throws {
        let shape = FeatureShape(channels: 3, height: 6, width: 7)
        let net = try network(shape, [Subsampling("s", channels: 3)])
        try check(net, input: randomValues(3 * shape.count, seed: 1), batch: 3)
        let net3 = try network(FeatureShape(channels: 2, height: 7, width: 9), [Subsampling("s", channels: 2, kernelSize: 3)])
        try check(net3, input: randomValues(2 * 2 * 7 * 9, seed: 2), batch: 2)
        // With the squashing function after it, as in the model.
        let squashed = try network(shape, [Subsampling("s", channels: 3), Tanh.lecun()])
        try check(squashed, input: randomValues(2 * shape.count, seed: 3), batch: 2, eps: 1e-3)
    }

    @Test func testSubsamplingInitBound() throws {
        let net = try Models.lenet5(seed: 5)
        for name in ["s2.weight", "s2.bias", "s4.weight", "s4.bias"] {
            let v = net.parameters.values(of: name) ?? []
            #expect(!v.isEmpty)
            #expect(v.allSatisfy { abs($0) <= 0.5 }, "\(name): \(v)")
            #expect(net.parameters[name]?.initBound == 0.5)
        }
    }

    // MARK: - PartialConv2D

    /// A small table with every kind of row: one map, several, all.
    let smallTable = [[0], [1, 2], [3, 0, 2], [3, 1], [0, 1, 2, 3]]

    func smallPartial() -> Conv2D {
        Conv2D("pc", inChannels: 4, outChannels: 5, kernelSize: 3, table: smallTable)
    }

    func maskedIndices(_ table: [[Int]], inChannels C: Int, kernel K: Int) -> [Int] {
        var out: [Int] = []
        for (oc, row) in table.enumerated() {
            for c in 0..<C where !row.contains(c) {
                out += ((oc * C + c) * K..<(oc * C + c + 1) * K)
            }
        }
        return out
    }

    @Test func testPartialConvGradients() throws {
        let shape = FeatureShape(channels: 4, height: 7, width: 6)
        let layer = smallPartial()
        let net = try network(shape, [layer])
        var rng = SeededGenerator(seed: 4)
        layer.initialize(using: &rng)
        let x = randomValues(2 * shape.count, seed: 5)
        try check(net, input: x, batch: 2, samples: 60)

        // Every masked weight gets exactly 0 gradient; the others do not.
        let masked = maskedIndices(smallTable, inChannels: 4, kernel: 9)
        #expect(masked.count == (20 - 12) * 9)
        try backwardOnce(net, x, batch: 2, seed: 6)
        let g = net.parameters.gradient(of: "pc.weight") ?? []
        #expect(g.count == 5 * 4 * 9)
        for i in masked { #expect(g[i] == 0, "masked pc.weight[\(i)] has gradient \(g[i])") }
        let maskedSet = Set(masked)
        #expect(g.indices.filter { !maskedSet.contains($0) }.allSatisfy { g[$0] != 0 })
        // A masked weight does not change the output: its difference quotient is 0 too.
        let p = net.parameters.values
        let offset = net.parameters["pc.weight"]?.offset ?? 0
        for i in masked.prefix(12) {
            p[offset + i] = 0.3
            let plus = try value(net, x, 2, weights: randomValues(2 * 5 * 5 * 4, seed: 7))
            p[offset + i] = 0
            let zero = try value(net, x, 2, weights: randomValues(2 * 5 * 5 * 4, seed: 7))
            #expect(plus == zero, "masked pc.weight[\(i)] changed the output")
        }
    }

    @Test func testPartialConvMatchesNaiveReference() throws {
        // C3's own shapes: (N, 6, 14, 14) → (N, 16, 10, 10).
        let table = Conv2D.lecunC3Table
        let shape = FeatureShape(channels: 6, height: 14, width: 14)
        let layer = Conv2D("c3", inChannels: 6, outChannels: 16, kernelSize: 5, table: table)
        let net = try Network(inputShape: shape, layers: [layer])
        var rng = SeededGenerator(seed: 8)
        layer.initialize(using: &rng)
        let n = 3
        let x = randomValues(n * shape.count, seed: 9)
        let dy = randomValues(n * 16 * 100, seed: 10)
        let w = net.parameters.values(of: "c3.weight") ?? []
        let b = net.parameters.values(of: "c3.bias") ?? []

        let y = try net.predict(x)
        _ = try net.outputGradient(batch: n).update(fromContentsOf: dy)
        net.parameters.zeroGradients()
        net.backward(batch: n, inputGradient: true)
        let dx = Array(UnsafeBufferPointer(start: net.inputGradient, count: x.count))

        let g = ConvGeometry(channels: 6, height: 14, width: 14, kernelH: 5, kernelW: 5)
        var yRef = [Float](repeating: 0, count: y.count)
        var dxRef = [Float](repeating: 0, count: x.count)
        var dwRef = [Float](repeating: 0, count: w.count)
        var dbRef = [Float](repeating: 0, count: b.count)
        partialConv2dForwardNaive(&yRef, x, w, b, batch: n, table: table, g)
        partialConv2dBackwardNaive(&dxRef, &dwRef, &dbRef, dy, x, w, batch: n, table: table, g)
        // Bounds: each sum's length times ε times its Σ|terms|, the naive
        // kernels run on absolute values. A map reads at most 6 of the input
        // maps (6·25 taps + bias); dx sums over 16·25 taps, dW and db over
        // 3·10·10 positions.
        var yAbs = [Float](repeating: 0, count: y.count), dxAbs = [Float](repeating: 0, count: x.count)
        var dwAbs = [Float](repeating: 0, count: w.count), dbAbs = [Float](repeating: 0, count: b.count)
        partialConv2dForwardNaive(&yAbs, x.map(abs), w.map(abs), b.map(abs), batch: n, table: table, g)
        partialConv2dBackwardNaive(&dxAbs, &dwAbs, &dbAbs, dy.map(abs), x.map(abs), w.map(abs), batch: n, table: table, g)
        assertWithin(y, yRef, "c3 output", bounds: ErrorBound.sums(6 * 25 + 1, absolute: yAbs), "151·ε·Σ|terms|")
        assertWithin(dx, dxRef, "c3 dx", bounds: ErrorBound.sums(16 * 25, absolute: dxAbs), "400·ε·Σ|terms|")
        assertWithin(net.parameters.gradient(of: "c3.weight") ?? [], dwRef, "c3 dw",
                     bounds: ErrorBound.sums(n * 100, absolute: dwAbs), "300·ε·Σ|terms|")
        assertWithin(net.parameters.gradient(of: "c3.bias") ?? [], dbRef, "c3 db",
                     bounds: ErrorBound.sums(n * 100, absolute: dbAbs), "300·ε·Σ|terms|")
        for i in maskedIndices(table, inChannels: 6, kernel: 25) {
            #expect(dwRef[i] == 0)
            #expect(net.parameters.gradient(of: "c3.weight")?[i] == 0)
        }
    }

    /// A generic initializer fills every entry; forward holds the masked
    /// ones at zero, so the layer still computes the table's convolution.
    @Test func testForwardReappliesTheMask() throws {
        let shape = FeatureShape(channels: 4, height: 6, width: 6)
        let layer = smallPartial()
        let net = try network(shape, [layer])  // generic init: masked entries nonzero
        let masked = maskedIndices(smallTable, inChannels: 4, kernel: 9)
        #expect(masked.contains { (net.parameters.values(of: "pc.weight") ?? [])[$0] != 0 })
        let x = randomValues(shape.count, seed: 11)
        let y = try net.predict(x)
        let w = net.parameters.values(of: "pc.weight") ?? []
        for i in masked { #expect(w[i] == 0) }
        var yRef = [Float](repeating: 0, count: y.count)
        partialConv2dForwardNaive(&yRef, x, w, net.parameters.values(of: "pc.bias") ?? [], batch: 1, table: smallTable,
                                  ConvGeometry(channels: 4, height: 6, width: 6, kernelH: 3, kernelW: 3))
        assertClose(y, yRef, "pc output after a generic init")
    }

    @Test func testC3InitBoundsPerMap() throws {
        let net = try Models.lenet5(seed: 12)
        let w = net.parameters.values(of: "c3.weight") ?? []
        let b = net.parameters.values(of: "c3.bias") ?? []
        let table = Conv2D.lecunC3Table
        for oc in 0..<16 {
            let bound = 1 / Float(table[oc].count * 25).squareRoot()
            for c in 0..<6 {
                let block = w[(oc * 6 + c) * 25..<(oc * 6 + c + 1) * 25]
                if table[oc].contains(c) {
                    #expect(block.allSatisfy { abs($0) <= bound && $0 != 0 }, "c3 map \(oc) from \(c)")
                    // Drawn over the whole range, not a narrower one.
                    #expect(block.map { abs($0) }.max() ?? 0 > bound / 2)
                } else {
                    #expect(block.allSatisfy { $0 == 0 }, "c3 map \(oc) has a weight from map \(c)")
                }
            }
            #expect(abs(b[oc]) <= bound)
        }
        // Seeded: the same seed gives the same network, another seed another.
        // (Each network is bound to a name: `parameters.values` is a view
        // into storage that a temporary network would free before the copy.)
        let same = try Models.lenet5(seed: 12), other = try Models.lenet5(seed: 13)
        withExtendedLifetime((same, other)) {
            #expect(Array(same.parameters.values) == Array(net.parameters.values))
            #expect(Array(other.parameters.values) != Array(net.parameters.values))
        }
    }

    /// Masked weights stay exactly 0 through optimizer steps, checked right
    /// after each step (before a forward pass could re-zero them).
    @Test func testMaskedWeightsStayZeroThroughAdamAndSGD() throws {
        let masked = maskedIndices(Conv2D.lecunC3Table, inChannels: 6, kernel: 25)
        #expect(masked.count == 900)
        let optimizers: [(String, (ParameterStore) throws -> any CheckpointedOptimizer)] = [
            ("Adam", { try Adam(parameters: $0, learningRate: 1e-2, weightDecay: 1e-2) }),
            ("SGD", { try SGD(parameters: $0, learningRate: 0.05, momentum: 0.9, weightDecay: 1e-2, nesterov: true) }),
        ]
        for (label, make) in optimizers {
            let net = try Models.lenet5(seed: 14)
            let optimizer = try make(net.parameters)
            let loss = SoftmaxCrossEntropy(classes: 10)
            let n = 4
            let x = randomValues(n * 32 * 32, seed: 15)
            let labels: [Int32] = [1, 7, 3, 9]
            let c3 = net.parameters["c3.weight"]
            let before = net.parameters.values(of: "c3.weight") ?? []
            var losses: [Float] = []
            for step in 0..<5 {
                _ = try net.input(batch: n).update(fromContentsOf: x)
                let logits = net.forward(batch: n)
                losses.append(try loss.forward(logits, labels, batch: n))
                net.parameters.zeroGradients()
                loss.backward(try net.outputGradient(batch: n))
                net.backward(batch: n)
                let g = net.parameters.gradient(of: "c3.weight") ?? []
                #expect(masked.allSatisfy { g[$0] == 0 }, "\(label) step \(step): a masked gradient is nonzero")
                optimizer.step()
                let w = net.parameters.values(of: "c3.weight") ?? []
                let leaks = masked.filter { w[$0] != 0 }
                #expect(leaks.isEmpty, "\(label) step \(step): masked c3.weight\(leaks.prefix(5)) = \(leaks.prefix(5).map { w[$0] })")
            }
            // The optimizer did move the connected weights, and learned something.
            let after = net.parameters.values(of: "c3.weight") ?? []
            #expect(before != after, "\(label)")
            #expect(losses.last ?? .infinity < losses.first ?? 0, "\(label) losses \(losses)")
            // Adam's moments of the masked entries are 0 as well.
            for t in optimizer.stateTensors() where t.values.count == net.parameters.count {
                let offset = c3?.offset ?? 0
                #expect(masked.allSatisfy { t.values[offset + $0] == 0 }, "\(label) \(t.name)")
            }
        }
    }

    // MARK: - The whole network

    /// Per-coordinate central differences through the whole LeNet-5 with its
    /// loss: smooth everywhere (tanh, no max-pool), so every coordinate works.
    @Test func testWholeLeNet5WithLossPerCoordinate() throws {
        let net = try Models.lenet5(seed: 16)
        let n = 2
        try check(net, input: randomValues(n * 32 * 32, seed: 17), batch: n, labels: [4, 8],
                  eps: 1e-2, tolerance: 1e-2, samples: 140, seed: 18)
    }

    /// Each parameter tensor and the input along a random direction d:
    /// (L(p + εd) − L(p − εd)) / 2ε against Σ g·d. Directions confined to the
    /// connected C3 entries, as an optimizer sees them.
    @Test func testWholeLeNet5WithLossAlongRandomDirections() throws {
        for squashC1 in [true, false] {
            let net = try Models.lenet5(seed: 19, squashC1: squashC1)
            let n = 3
            let x = randomValues(n * 32 * 32, seed: 20)
            let labels: [Int32] = [0, 5, 9]
            try backwardOnce(net, x, batch: n, labels: labels)
            let g = Array(net.parameters.gradients)
            let gx = Array(UnsafeBufferPointer(start: net.inputGradient, count: x.count))
            let maskedC3 = Set(maskedIndices(Conv2D.lecunC3Table, inChannels: 6, kernel: 25))
            let eps: Float = 1e-3
            let p = net.parameters.values
            for (k, e) in net.parameters.entries.enumerated() {
                var d = randomValues(e.count, seed: UInt64(60 + k))
                if e.name == "c3.weight" { for i in maskedC3 { d[i] = 0 } }
                let saved = Array(p[e.offset..<e.offset + e.count])
                var analytic = 0.0
                for i in 0..<e.count { analytic += Double(g[e.offset + i]) * Double(d[i]) }
                for i in 0..<e.count { p[e.offset + i] = saved[i] + eps * d[i] }
                let plus = try value(net, x, n, labels: labels)
                for i in 0..<e.count { p[e.offset + i] = saved[i] - eps * d[i] }
                let minus = try value(net, x, n, labels: labels)
                for i in 0..<e.count { p[e.offset + i] = saved[i] }
                let numeric = (plus - minus) / Double(2 * eps)
                #expect(abs(analytic - numeric) <= (1e-2 * abs(numeric) + 2e-4), "\(e.name) along a random direction (squashC1 \(squashC1))")
            }
            let d = randomValues(x.count, seed: 99)
            let analytic = zip(gx, d).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let plus = try value(net, zip(x, d).map { $0 + eps * $1 }, n, labels: labels)
            let minus = try value(net, zip(x, d).map { $0 - eps * $1 }, n, labels: labels)
            let numeric = (plus - minus) / Double(2 * eps)
            #expect(abs(analytic - numeric) <= (1e-2 * abs(numeric) + 2e-4), "input along a random direction")
        }
    }

    /// The 2×2 subsampling's vector kernel against the generic loops, on
    /// sides with and without a vector tail (OW = 14, 5, 3, 7). Each window
    /// sums 4 values in another order (bound ε·4·|w|·Σ|x| + ε·|b|); dw sums
    /// every window of a map over the batch (n·OH·OW windows of 4, plus
    /// the lanes' reduction), db its n·OH·OW gradients; dx is w·dy either
    /// way, bit for bit.
    @Test func testPairwiseSubsamplingMatchesTheGenericLoops() throws {
        for (h, w) in [(28, 28), (10, 10), (6, 6), (14, 14), (4, 12)] {
            let n = 3, C = 2
            let shape = FeatureShape(channels: C, height: h, width: w)
            let net = try Network(inputShape: shape, layers: [Subsampling("s", channels: C)])
            try net.reserve(batch: n)  // the layer learns its input's shape
            guard let layer = net.layers[0] as? Subsampling else { Issue.record("not a Subsampling"); return }
            #expect(layer.isPairwise)
            try FixedValues.fill(net.parameters)
            let x = FixedValues.values(n * shape.count, salt: 77, bound: 2)
            let out = n * C * (h / 2) * (w / 2)
            let dy = FixedValues.values(out, salt: 78, bound: 1)
            var fast = [Float](repeating: .nan, count: out), naive = fast
            layer.forward(&fast, x, batch: n)
            layer.forwardNaive(&naive, x, batch: n)
            let wMax = (net.parameters.values(of: "s.weight") ?? []).map(abs).max() ?? 0
            let bMax = (net.parameters.values(of: "s.bias") ?? []).map(abs).max() ?? 0
            assertWithin(fast, naive, "forward \(h)×\(w)", bound: ErrorBound.epsilon * (4 * wMax * 4 * 2 + bMax), "ε·4·|w|·Σ|x| + ε·|b|")

            var dxFast = [Float](repeating: .nan, count: x.count), dxNaive = dxFast
            net.parameters.zeroGradients()
            layer.backward(&dxFast, dy, x, fast, batch: n)
            let gradFast = Array(net.parameters.gradients)
            net.parameters.zeroGradients()
            layer.backwardNaive(&dxNaive, dy, x, naive, batch: n)
            let gradNaive = Array(net.parameters.gradients)
            #expect(dxFast == dxNaive, "dx \(h)×\(w)")
            let windows = n * (h / 2) * (w / 2)
            // dw: Σ over windows of |dy|·(Σ of 4 |x|) ≤ windows·1·8; db: windows·1.
            assertWithin(Array(gradFast[0..<C]), Array(gradNaive[0..<C]), "dw \(h)×\(w)",
                         bound: ErrorBound.reduction(windows + 4, magnitude: Float(windows) * 8), "ε·(windows + 4)·Σ|dy·s|")
            assertWithin(Array(gradFast[C..<2 * C]), Array(gradNaive[C..<2 * C]), "db \(h)×\(w)",
                         bound: ErrorBound.reduction(windows, magnitude: Float(windows)), "ε·windows·Σ|dy|")
        }
    }
}

import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Adam's update against its formula, element by element, and its handling
/// of subnormal moments.
struct OptimizerTests {
    /// One Adam step on 19 parameters (two vector blocks of 8 and a scalar
    /// tail of 3) whose moments start subnormal, tiny but normal, or
    /// ordinary, with zero and non-zero gradients: moments that come out
    /// subnormal are stored as 0, everything else is bitwise the formula,
    /// and the weights are bitwise what the formula gives with the
    /// subnormals kept (what PyTorch computes).
    @Test func testAdamFlushesSubnormalMomentsAndKeepsTheWeights() throws {
        let count = 19
        let store = try ParameterStore(entries: [.init(name: "w", shape: [count], offset: 0, count: count, initBound: 1)])
        let subnormal = Float.leastNormalMagnitude / 64  // ~1.8e-40
        var p = [Float](), g = [Float](), m = [Float](), v = [Float]()
        for i in 0..<count {
            p.append(0.5 - Float(i) * 0.03)
            g.append(i % 3 == 0 ? 0 : Float(i) * 1e-3 - 0.01)
            switch i % 4 {
            case 0: m.append(subnormal); v.append(subnormal)
            case 1: m.append(-subnormal); v.append(1e-12)
            case 2: m.append(1.1e-38); v.append(2e-38)  // normal, subnormal after one step when g = 0
            default: m.append(Float(i) * 1e-4); v.append(Float(i) * 1e-7)
            }
        }
        _ = store.values.update(fromContentsOf: p)
        _ = store.gradients.update(fromContentsOf: g)
        let adam = try Adam(parameters: store, learningRate: 0.01)
        try adam.loadState { name in
            ["adam.exp_avg": m, "adam.exp_avg_sq": v, "adam.step": [4]][name]
        }
        adam.step()
        let state = Dictionary(uniqueKeysWithValues: adam.stateTensors().map { ($0.name, $0.values) })
        let (mOut, vOut) = (state["adam.exp_avg"] ?? [], state["adam.exp_avg_sq"] ?? [])
        // The formula with IEEE subnormals (x86's default mode outside the update).
        // (The scalars in Double from the Float hyperparameters, as Adam does.)
        let (lr, beta1, beta2): (Float, Float, Float) = (0.01, 0.9, 0.999)
        let t = 5.0
        let stepSize = Float(Double(lr) / (1 - pow(Double(beta1), t)))
        let bias2Sqrt = Float((1 - pow(Double(beta2), t)).squareRoot())
        #if arch(x86_64) && canImport(Glibc)
        let flushes = true  // LeNetKit flushes subnormals where it can set the FPU's mode
        #else
        let flushes = false
        #endif
        var flushed = 0
        for i in 0..<count {
            let m1 = m[i] + (1 - beta1) * (g[i] - m[i])
            let v1 = v[i] * beta2 + (1 - beta2) * g[i] * g[i]
            let p1 = p[i] - stepSize * (m1 / (v1.squareRoot() / bias2Sqrt + 1e-8))
            #expect(store.values[i] == p1, "weight \(i)")
            let mExpected: Float = flushes && m1.isSubnormal ? 0 : m1, vExpected: Float = flushes && v1.isSubnormal ? 0 : v1
            if m1.isSubnormal || v1.isSubnormal { flushed += 1 }
            #expect(mOut[i] == mExpected, "first moment \(i)")
            #expect(vOut[i] == vExpected, "second moment \(i)")
        }
        #expect(flushed >= 5, "the case should hold subnormal moments")
        if flushes { #expect(!(mOut.contains { $0.isSubnormal } || vOut.contains { $0.isSubnormal })) }
    }

    /// SGD's momentum buffer: a subnormal entry with a zero gradient is
    /// stored as 0 (it would shrink by μ a step and stick at the least
    /// subnormal); ordinary entries follow torch.optim.SGD's formula.
    @Test func testSGDFlushesSubnormalMomentum() throws {
        let store = try ParameterStore(entries: [.init(name: "w", shape: [3], offset: 0, count: 3, initBound: 1)])
        _ = store.values.update(fromContentsOf: [0.25, -0.5, 1])
        _ = store.gradients.update(fromContentsOf: [0, 0, 0.125])
        let sgd = try SGD(parameters: store, learningRate: 0.1, momentum: 0.9)
        let tiny = Float.leastNonzeroMagnitude
        try sgd.loadState { ["sgd.step": [3], "sgd.momentum_buffer": [tiny, 0.5, 0.25]][$0] }
        sgd.step()
        let buffer = sgd.stateTensors().first { $0.name == "sgd.momentum_buffer" }?.values ?? []
        #if arch(x86_64) && canImport(Glibc)
        #expect(buffer[0] == 0)
        #else
        #expect(buffer[0] == tiny)  // 0.9 × the least subnormal rounds back to it
        #endif
        #expect(buffer[1] == Float(0.9) * 0.5)
        #expect(buffer[2] == Float(0.9) * 0.25 + 0.125)
        #expect(Array(store.values) == [0.25, -0.5 - Float(0.1) * (Float(0.9) * 0.5), 1 - Float(0.1) * (Float(0.9) * 0.25 + 0.125)])
    }

    /// A step count that is not a whole number from 0 to 10⁹ is refused with
    /// one error (Adam and SGD alike), never converted with a trap; the
    /// optimizer keeps its state.
    @Test func testStepCountsFromAFileAreChecked() throws {
        let store = try ParameterStore(entries: [.init(name: "w", shape: [3], offset: 0, count: 3, initBound: 1)])
        let adam = try Adam(parameters: store), sgd = try SGD(parameters: store, learningRate: 0.1, momentum: 0)
        for bad: Float in [.infinity, -.infinity, .nan, 1e30, 1.5e9, -1, 2.5] {
            assertError("the Adam step count (adam.step) is \(bad)") {
                try adam.loadState { ["adam.exp_avg": [0, 0, 0], "adam.exp_avg_sq": [0, 0, 0], "adam.step": [bad]][$0] }
            }
            assertError("the SGD step count (sgd.step) is \(bad)") { try sgd.loadState { ["sgd.step": [bad]][$0] } }
        }
        #expect(adam.stepCount == 0)
        #expect(sgd.stepCount == 0)
        try adam.loadState { ["adam.exp_avg": [0, 0, 0], "adam.exp_avg_sq": [0, 0, 0], "adam.step": [1e9]][$0] }
        try sgd.loadState { ["sgd.step": [7]][$0] }
        #expect(adam.stepCount == 1_000_000_000)
        #expect(sgd.stepCount == 7)
    }
}

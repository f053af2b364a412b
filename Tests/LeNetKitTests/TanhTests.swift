import CKernels
import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// The vectorized A·tanh(S·x) (Kernels/Tanh.swift), both paths, against
/// tanh in double over the float range and at the special values.
struct TanhTests {
    typealias Kernel = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int, Float, Float) -> Void

    /// The paths this machine can run: the portable one always, AVX2/FMA where the CPU has it.
    var kernels: [(String, Kernel)] {
        var list: [(String, Kernel)] = [("portable", { scaledTanhPortable($0, $1, count: $2, amplitude: $3, slope: $4) })]
        if CPUFeatures.hardwareAVX2FMA { list.append(("avx2", { lenet_scaled_tanh_avx2($0, $1, $2, $3, $4) })) }
        if lenet_has_avx512f() != 0 { list.append(("avx512", { lenet_scaled_tanh_avx512($0, $1, $2, $3, $4) })) }
        return list
    }

    /// The AVX-512 backward is the Swift loop's operations: the same bits,
    /// at every tail length, for LeNet's scale and for plain tanh.
    @Test(.enabled(if: lenet_has_avx512f() != 0, "needs AVX-512"))
    func testBackwardKernelIsThePortableLoopBitForBit() {
        let y = randomValues(1000, seed: 3, -1.7, 1.7), dy = randomValues(1000, seed: 4)
        for (scale, inverse) in [(Float(1.7159 * 2 / 3), 1 / Float(1.7159)), (1, 1)] {
            for count in [1000, 1, 15, 16, 17, 33] {
                var portable = [Float](repeating: 7, count: count + 16), avx512 = portable
                tanhBackwardPortable(&portable, dy, y, count: count, scale: scale, inverseAmplitude: inverse)
                lenet_tanh_backward_avx512(&avx512, dy, y, count, scale, inverse)
                #expect(avx512.map(\.bitPattern) == portable.map(\.bitPattern), "count \(count), scale \(scale)")
            }
        }
    }

    /// The AVX-512 kernel runs the AVX2 kernel's operations lane by lane:
    /// the same bits for every sample, NaNs, infinities and ±0 included,
    /// and for every tail length (the masked last vector).
    @Test(.enabled(if: lenet_has_avx512f() != 0, "needs AVX-512"))
    func testAVX512IsTheAVX2KernelBitForBit() {
        let x = samples() + [.nan, -.nan, .infinity, -.infinity, 0, -0.0, .leastNonzeroMagnitude, -.greatestFiniteMagnitude]
        for (amplitude, slope) in [(Float(1), Float(1)), (1.7159, 2 / 3)] {
            for count in [x.count, 1, 15, 17, 31] {
                var avx2 = [Float](repeating: 7, count: count + 16), avx512 = avx2
                lenet_scaled_tanh_avx2(&avx2, x, count, amplitude, slope)
                lenet_scaled_tanh_avx512(&avx512, x, count, amplitude, slope)
                #expect(avx512.map(\.bitPattern) == avx2.map(\.bitPattern), "count \(count), A = \(amplitude)")
            }
        }
    }

    /// Every 4099th float bit pattern of each sign (about 2 million values,
    /// all binades, subnormals to the largest finite), and the region
    /// around the branch at |s| = 0.625 and the cap densely.
    func samples() -> [Float] {
        var x: [Float] = []
        var bits: UInt32 = 0
        while bits < 0x7F80_0000 {
            x.append(Float(bitPattern: bits))
            x.append(-Float(bitPattern: bits))
            bits += 4099
        }
        for k in 0..<20_000 { x.append(0.55 + Float(k) * 0.00001); x.append(8.9 + Float(k) * 0.00002) }
        return x
    }

    /// Error in ulps of the result, against tanh in double.
    func ulps(_ got: Float, _ exact: Double) -> Double {
        let ulp = Double(Float(exact).magnitude.ulp)
        return abs(Double(got) - exact) / max(ulp, Double(Float.leastNonzeroMagnitude))
    }

    /// tanh itself (A = S = 1): within 1.5 ulp, both signs, every binade.
    /// The largest errors are just past |s| = 0.625, where the exp branch
    /// starts: 1.27 ulp without FMA (this scan, and Scripts/tanh_error.py
    /// over every 97th positive float, emulating the float32 operations in
    /// numpy), 1.37 ulp with FMA (this scan).
    @Test func testTanhWithinOneAndAHalfUlp() {
        let x = samples()
        for (name, kernel) in kernels {
            var y = [Float](repeating: .nan, count: x.count)
            kernel(&y, x, x.count, 1, 1)
            var worst = 0.0, at: Float = 0
            for i in x.indices {
                let e = ulps(y[i], tanh(Double(x[i])))
                if e > worst { worst = e; at = x[i] }
            }
            print("tanh \(name): max \(String(format: "%.3f", worst)) ulp at \(at) over \(x.count) values")
            #expect(worst <= 1.5, "\(name) at \(at)")
        }
    }

    /// LeNet-5's 1.7159·tanh(2x/3): relative error at most (2·1.5 + 1 + 1)·2⁻²⁴ of the
    /// exact value. tanh's 1.5 ulp is at most 2·1.5·2⁻²⁴ relative; rounding
    /// S·x moves tanh by at most 2⁻²⁴ relative (|s·tanh′(s)/tanh(s)| ≤ 1);
    /// the product with A rounds once more. Below the normal range the two
    /// roundings of S·x and A·s are each at most half a subnormal step,
    /// (A/2 + 1/2) < 2 steps in all.
    @Test func testScaledTanhWithinItsBound() {
        let x = samples()
        let A: Float = 1.7159, S: Float = 2.0 / 3.0
        var reference = [Float](repeating: 0, count: x.count)
        for (name, kernel) in kernels {
            var y = [Float](repeating: .nan, count: x.count)
            kernel(&y, x, x.count, A, S)
            var worst = 0.0
            for i in x.indices {
                let exact = Double(A) * tanh(Double(S) * Double(x[i]))
                let bound = 5 * 0x1p-24 * abs(exact) + 2 * Double(Float.leastNonzeroMagnitude)
                let error = abs(Double(y[i]) - exact)
                if abs(exact) >= Double(Float.leastNormalMagnitude) { worst = max(worst, error / (0x1p-24 * abs(exact))) }
                if error > bound { Issue.record("\(name): \(A)·tanh(\(S)·\(x[i])) = \(y[i]), exact \(exact)"); break }
            }
            print("scaled tanh \(name): max relative error \(String(format: "%.2f", worst))·2⁻²⁴")
        }
        // The naive reference rounds the double result once: within half an ulp.
        scaledTanhNaive(&reference, x, count: x.count, amplitude: A, slope: S)
        for i in stride(from: 0, to: x.count, by: 97) {
            #expect(ulps(reference[i], Double(A) * tanh(Double(S) * Double(x[i]))) <= 0.5)
        }
    }

    /// ±0 keep their sign, subnormals come back scaled (tanh(s) = s there),
    /// ±inf and huge values saturate at ±A, NaN stays NaN.
    @Test func testSpecialValues() {
        let A: Float = 1.7159, S: Float = 2.0 / 3.0
        let x: [Float] = [0, -0.0, .leastNonzeroMagnitude, -.leastNormalMagnitude, 1e-30, .infinity, -.infinity,
                          .greatestFiniteMagnitude, -1e30, 9.2, -10, 15, .nan, -.nan]
        for (name, kernel) in kernels {
            var y = [Float](repeating: 7, count: x.count)
            kernel(&y, x, x.count, A, S)
            #expect(y[0].bitPattern == Float(0).bitPattern, "\(name)")
            #expect(y[1].bitPattern == Float(-0.0).bitPattern, "\(name)")
            #expect(y[2] == A * (S * .leastNonzeroMagnitude), "\(name)")
            #expect(y[3] == A * (S * -.leastNormalMagnitude), "\(name)")
            #expect(y[4] == A * (S * 1e-30), "\(name)")
            #expect(y[5] == A, "\(name)")
            #expect(y[6] == -A, "\(name)")
            #expect(y[7] == A, "\(name)")
            #expect(y[8] == -A, "\(name)")
            #expect(y[11] == A, "\(name)")  // tanh(10) rounds to 1 in float
            #expect(y[12].isNaN && y[13].isNaN, "\(name)")
            // tanh(6.13) and tanh(6.67) are below 1 in float; A·that rounds to A or just under.
            #expect(y[9] <= A, "\(name)")
            #expect(y[10] >= -A, "\(name)")
        }
    }

    /// A value's result does not depend on where it sits: the tail of fewer
    /// than 8 runs the same vector code, bit for bit.
    @Test func testBitsDoNotDependOnPosition() {
        var rng = SeededGenerator(seed: 9)
        let x = (0..<29).map { _ in rng.uniform(-4, 4) }
        for (name, kernel) in kernels {
            var whole = [Float](repeating: 0, count: x.count)
            kernel(&whole, x, x.count, 1.7159, 2.0 / 3.0)
            for i in x.indices {
                var one: Float = 0
                kernel(&one, [x[i]], 1, 1.7159, 2.0 / 3.0)
                #expect(one.bitPattern == whole[i].bitPattern, "\(name) at \(i)")
            }
        }
    }

    /// The layer runs the dispatched kernel across threads and its backward
    /// is A·S·(1 − (y/A)²)·dy, each value as the scalar formula gives it.
    @Test func testLayerForwardAndBackward() throws {
        let layer = Tanh.lecun()
        let shape = FeatureShape(channels: 2, height: 5, width: 3)
        _ = try layer.outputShape(for: shape)
        let n = 11, count = n * shape.count
        var rng = SeededGenerator(seed: 3)
        let x = (0..<count).map { _ in rng.uniform(-5, 5) }, dy = (0..<count).map { _ in rng.uniform(-1, 1) }
        var y = [Float](repeating: 0, count: count), dx = [Float](repeating: 0, count: count)
        var expected = [Float](repeating: 0, count: count)
        ThreadBudget.with(3) { layer.forward(&y, x, batch: n) }  // split across 3 threads, as a network's pass does
        scaledTanh(&expected, x, count: count, amplitude: layer.amplitude, slope: layer.slope)
        #expect(y == expected)  // the same kernel on each thread's samples, elementwise
        ThreadBudget.with(3) { layer.backward(&dx, dy, x, y, batch: n) }
        for i in 0..<count {
            let t = y[i] * (1 / layer.amplitude)
            #expect(dx[i] == dy[i] * (layer.amplitude * layer.slope) * (1 - t * t))
        }
    }
}

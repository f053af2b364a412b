import CKernels
import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Adam's AVX2 and AVX-512 kernels against the portable loop: the same
/// IEEE operations per value in the same order, so the parameters and
/// moments must agree bit for bit, not within a tolerance.
struct OptimizerKernelTests {
    /// 1,013 values (a tail after the vectors of 8 and 16) of every kind the
    /// update meets: ordinary, zero, tiny, huge, negative gradients and
    /// moments, with plain Adam, L2 decay, and AdamW's shrink, with and
    /// without subnormals flushed.
    @Test(arguments: [(l2: Float(0), shrink: Float(1)), (l2: 0.05, shrink: 1), (l2: 0, shrink: 0.99995)])
    func testKernelsMatchThePortableLoopBitForBit(decay: (l2: Float, shrink: Float)) {
        let count = 1013
        var generator = SeededGenerator(seed: 37)
        func value(_ i: Int) -> Float {
            switch i % 7 {
            case 0: return 0
            case 1: return generator.uniform(-1e-30, 1e-30)
            case 2: return generator.uniform(-1e4, 1e4)
            default: return generator.uniform(-1, 1)
            }
        }
        let p0 = (0..<count).map(value), g = (0..<count).map(value), m0 = (0..<count).map(value)
        let v0 = (0..<count).map { abs(value($0)) }
        let constants = AdamConstants(w1: 0.1, beta2: 0.999, w2: 1 - 0.999, l2: decay.l2, shrink: decay.shrink,
                                      stepSize: Float(1e-3 / (1 - pow(0.9, 7.0))),
                                      bias2Sqrt: Float((1 - pow(0.999, 7.0)).squareRoot()), epsilon: 1e-8)
        typealias Kernel = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>,
                            UnsafeMutablePointer<Float>, Int, AdamConstants) -> Void
        func run(_ kernel: Kernel, flushed: Bool) -> [Float] {
            var p = p0, m = m0, v = v0
            p.withUnsafeMutableBufferPointer { p in
                m.withUnsafeMutableBufferPointer { m in
                    v.withUnsafeMutableBufferPointer { v in
                        g.withUnsafeBufferPointer { g in
                            guard let pp = p.baseAddress, let gp = g.baseAddress, let mp = m.baseAddress,
                                  let vp = v.baseAddress else { return }
                            if flushed {
                                withSubnormalsFlushed { kernel(pp, gp, mp, vp, count, constants) }
                            } else {
                                kernel(pp, gp, mp, vp, count, constants)
                            }
                        }
                    }
                }
            }
            return p + m + v
        }
        func vector(_ width: Int) -> Kernel {
            { p, g, m, v, n, c in
                let done = width == 16
                    ? lenet_adam_avx512(p, g, m, v, n, c.w1, c.beta2, c.w2, c.l2, c.shrink, c.stepSize, c.bias2Sqrt, c.epsilon)
                    : lenet_adam_avx2(p, g, m, v, n, c.w1, c.beta2, c.w2, c.l2, c.shrink, c.stepSize, c.bias2Sqrt, c.epsilon)
                precondition(done == n / width * width, "the kernel left more than a tail")
                adamUpdatePortable(p + done, g + done, m + done, v + done, count: n - done, c)
            }
        }
        for flushed in [false, true] {
            let reference = run({ adamUpdatePortable($0, $1, $2, $3, count: $4, $5) }, flushed: flushed)
            #expect(reference.allSatisfy { $0.isFinite })
            #expect(reference != p0 + m0 + v0)
            var kernels: [(String, Kernel)] = [("the dispatched kernel", { adamUpdate($0, $1, $2, $3, count: $4, $5) })]
            if CPUFeatures.hardwareAVX2FMA { kernels.append(("AVX2", vector(8))) }
            if lenet_has_avx512f() != 0 { kernels.append(("AVX-512", vector(16))) }
            for (name, kernel) in kernels {
                let result = run(kernel, flushed: flushed)
                let differing = zip(result, reference).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "\(name), flushed \(flushed): \(differing) values differ from the portable loop")
            }
        }
    }
}

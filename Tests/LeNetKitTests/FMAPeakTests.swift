import Testing
@_spi(Benchmarks) @_spi(CLI) @testable import LeNetKit

/// The FMA probe computes the chains it claims to (so its FLOP count is
/// real work), checked against the same recurrence in Double.
struct FMAPeakTests {
    @Test(.enabled(if: CPUFeatures.avx2FMA), arguments: [false, true])
    func testChainsFollowTheirRecurrence(wide: Bool) {
        guard !wide || CPUFeatures.avx512F else { return }
        for iterations in [0, 1, 7, 1000] {
            // Each chain a ← a·0.999 + 0.001 from 1 + i, in Double.
            var expected = 0.0
            for i in 0..<12 {
                var a = 1.0 + Double(i)
                for _ in 0..<iterations { a = a * 0.999 + 0.001 }
                expected += a
            }
            let got = Double(FMAPeak.chains(iterations: iterations, wide: wide))
            // Each step of a chain rounds once (the FMA) to float32: at most
            // u·|a| with u = 2⁻²⁴, and the rounding is damped by 0.999 each
            // step after, so a chain's error stays below u·max|a|/(1 − 0.999)
            // ≤ 12·u·1000 for all 12 chains; their sum and the lanes' sum add
            // 11 + 15 more roundings (16 lanes with AVX-512), each at most
            // u·16·78 (78 = 1 + 2 + … + 12, times the lanes), and the
            // division by the lanes is exact (a power of 2).
            let bound = Double(12 * 12 * 1000 + 26 * 16 * 78) * 0x1p-24
            #expect(abs(got - expected) <= bound, "\(iterations) iterations: \(got) against \(expected)")
        }
    }
}

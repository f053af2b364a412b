// The ceiling the kernels are measured against: what one core does when it
// issues nothing but FMAs (CKernels/FMAPeak.c). A kernel's GFLOP/s over
// this, times the cores, is its share of the machine (docs/PERFORMANCE.md).
import CKernels
import Dispatch

/// One core's FMA throughput, measured: with AVX2, and with AVX-512 where
/// the CPU has it (on Zen 5 twice the AVX2 figure: the ceiling of the
/// kernels that have an AVX-512 twin).
@_spi(Benchmarks) public enum FMAPeak {
    /// FLOP per iteration of the chains: 12 chains × 8 lanes (16 with
    /// AVX-512) × 2 (a multiply and an add).
    static func flopsPerIteration(wide: Bool) -> Int { wide ? 384 : 192 }

    /// GFLOP/s of one core running 12 chains of 8-lane FMAs back to back:
    /// the best of `rounds` runs of `iterations` each (the fastest run is the
    /// one the machine disturbed least). nil without AVX2 and FMA.
    public static func measure(iterations: Int = 20_000_000, rounds: Int = 5) -> Double? {
        guard CPUFeatures.avx2FMA else { return nil }
        return best(of: rounds, iterations: iterations, wide: false)
    }

    /// `measure` with 16-lane AVX-512 FMAs; nil without AVX-512.
    public static func measureAVX512(iterations: Int = 20_000_000, rounds: Int = 5) -> Double? {
        guard CPUFeatures.avx512F else { return nil }
        return best(of: rounds, iterations: iterations, wide: true)
    }

    private static func best(of rounds: Int, iterations: Int, wide: Bool) -> Double? {
        guard iterations > 0 else { return nil }
        var best = 0.0
        for _ in 0..<max(rounds, 1) {
            let start = DispatchTime.now().uptimeNanoseconds
            let sum = chains(iterations: iterations, wide: wide)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            // The sum is finite for these constants; reading it keeps the work observable.
            guard sum.isFinite, seconds > 0 else { continue }
            best = max(best, Double(flopsPerIteration(wide: wide) * iterations) / seconds / 1e9)
        }
        return best > 0 ? best : nil
    }

    /// The chains' sum after `iterations` steps of a ← a·0.999 + 0.001 from
    /// 1, 2, …, 12 (each tends to 1; FMATests checks it against the same
    /// recurrence in Double).
    static func chains(iterations: Int, wide: Bool = false, start: Float = 1, scale: Float = 0.999,
                       add: Float = 0.001) -> Float {
        wide ? lenet_fma_chains_avx512(iterations, start, scale, add) : lenet_fma_chains_avx2(iterations, start, scale, add)
    }
}

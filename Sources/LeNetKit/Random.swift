import Foundation

/// A small, fast, seeded pseudo-random generator (xoshiro256**, seeded
/// through SplitMix64). Its whole state is four words, so a checkpoint can
/// save it and a resumed run continues the same sequence.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    /// The generator's state; save it to resume the same sequence.
    var state: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose sequence is fixed by `seed`.
    public init(seed: UInt64) {
        // SplitMix64's sequence from `seed`: each word is the mix of the
        // seed plus 1, 2, 3, 4 times the increment.
        func word(_ i: UInt64) -> UInt64 { splitMix64(seed &+ (i - 1) &* 0x9E37_79B9_7F4A_7C15) }
        state = (word(1), word(2), word(3), word(4))
    }

    /// A generator restored from a saved `state`.
    init(state: (UInt64, UInt64, UInt64, UInt64)) {
        self.state = state
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    /// A Float uniform in [low, high), from 24 random bits.
    /// - Parameters:
    ///   - low: the smallest value it can return.
    ///   - high: the bound it stays below.
    public mutating func uniform(_ low: Float, _ high: Float) -> Float {
        let unit = Float(next() >> 40) * (1.0 / 16_777_216.0)
        return low + (high - low) * unit
    }

    /// A standard normal Float (Box–Muller).
    mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0), 1e-300)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    public static func == (l: SeededGenerator, r: SeededGenerator) -> Bool {
        l.state == r.state
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}

/// One step of SplitMix64 from `value`: the increment added, then its
/// finalizer, a bijective mix of 64 bits. It seeds `SeededGenerator` and
/// draws each image's augmentation (`Augmentation`).
func splitMix64(_ value: UInt64) -> UInt64 {
    var z = value &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

// A·tanh(S·x) without libm: LeNet-5's squashing function, eight values at a
// time. Scalar tanhf made c1.tanh's forward a third of a LeNet-5 training
// step (docs/PERFORMANCE.md), and its bits depend on the libm.
//
// For s = S·x:
//   |s| < 0.625:  |s| + |s|·z·P(z), z = s², P of degree 6 fitted (least squares,
//                 reweighted towards minimax) to (tanh(s) − s)/s³; no
//                 cancellation, and ±0 and subnormals come back as they are.
//   otherwise:    1 − 2/(e^y + 1), y = min(2|s|, 20), with the sign of s;
//                 e^y = 2^n·e^r, n = round(y/ln2), r = y − n·ln2 (ln2 in two
//                 parts), e^r by its Taylor series to r⁷ (|r| ≤ ln2/2: the
//                 first term left out is below 2^-27). tanh is 1 in float
//                 from 9.1 on, so the cap changes nothing; ±inf give ±1.
//   Both on |s|; the sign of s is put on last.
//   NaN gives NaN.
// Error of tanh(s) against tanh in double, sampled every 97th float over the
// whole positive range (Scripts and MemoryTests' sibling TanhTests): at most
// 1.27 ulp without FMA, near s = 0.65 where the exp branch starts. The
// portable path below and the AVX2/FMA one in CKernels compute the same
// formula; FMA rounds fewer times, so their bits may differ by an ulp, and
// each is the same on every CPU that runs it.

import CKernels
import Foundation  // libm (expf, logf, …) on every platform

/// y[i] = amplitude·tanh(slope·x[i]) for i in 0..<count (y may be x).
func scaledTanh(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int,
                amplitude: Float, slope: Float) {
    if CPUFeatures.avx512F {
        lenet_scaled_tanh_avx512(y, x, count, amplitude, slope)
    } else if CPUFeatures.avx2FMA {
        lenet_scaled_tanh_avx2(y, x, count, amplitude, slope)
    } else {
        scaledTanhPortable(y, x, count: count, amplitude: amplitude, slope: slope)
    }
}

/// `scaledTanh` in Swift's SIMD, for CPUs without AVX2/FMA (and
/// LENETKIT_KERNELS=portable). A tail of fewer than 8 values runs through
/// the same vector code, so a value's bits do not depend on its position.
func scaledTanhPortable(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int,
                        amplitude: Float, slope: Float) {
    var i = 0
    while i + 8 <= count {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: amplitude * tanh8(slope * v), as: SIMD8<Float>.self)
        i += 8
    }
    guard i < count else { return }
    var v = SIMD8<Float>(repeating: 0)
    for k in 0..<(count - i) { v[k] = x[i + k] }
    let t = amplitude * tanh8(slope * v)
    for k in 0..<(count - i) { y[i + k] = t[k] }
}

/// tanh of eight values; see the top of this file.
@inline(__always)
func tanh8(_ s: SIMD8<Float>) -> SIMD8<Float> {
    let signBit = SIMD8<UInt32>(repeating: 0x8000_0000)
    let bits = unsafeBitCast(s, to: SIMD8<UInt32>.self)
    let a = unsafeBitCast(bits & ~signBit, to: SIMD8<Float>.self)
    let z = s * s
    var p = SIMD8<Float>(repeating: -7.897216710e-04)
    p = p * z + 3.211348085e-03
    p = p * z - 8.742761798e-03
    p = p * z + 2.184794657e-02
    p = p * z - 5.396616459e-02
    p = p * z + 1.333332360e-01
    p = p * z - 3.333333433e-01
    let small = a + (a * z) * p  // both branches on |s|; the sign goes on last, so −0 stays −0

    // y is capped, and NaN becomes 0 here, so n below is a small whole number.
    let y = (a + a).replacing(with: 20, where: .!(a + a .<= 20))
    // n = round(y/ln2) to nearest even, by adding 2^23: its integer sits in
    // the low bits, with no float-to-int conversion (Swift's would check).
    let shifted = y * 1.442695022 + 0x1p23
    let n = shifted - 0x1p23
    var r = y - n * 6.933593750e-01
    r = r - n * -2.121944417e-04
    var q = SIMD8<Float>(repeating: 1.984127011e-04)
    q = q * r + 1.388888923e-03
    q = q * r + 8.333333768e-03
    q = q * r + 4.166666791e-02
    q = q * r + 1.666666716e-01
    q = q * r + 0.5
    q = q * r + 1
    q = q * r + 1
    let exponent = (unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B00_0000 &+ 127) &<< 23
    let e = q * unsafeBitCast(exponent, to: SIMD8<Float>.self)
    let t = 1 - 2 / (e + 1)
    let magnitude = unsafeBitCast(small.replacing(with: t, where: a .>= 0.625), to: SIMD8<UInt32>.self)
    return unsafeBitCast(magnitude | (bits & signBit), to: SIMD8<Float>.self).replacing(with: s, where: s .!= s)
}

/// The scaled tanh's backward pass, dx = dy·(A·S)·(1 − (y/A)²): with
/// AVX-512 where the CPU has it (`lenet_tanh_backward_avx512`), else in
/// Swift; the same operations, unfused, so the same bits either way.
@inline(__always)
func tanhBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                  count: Int, scale: Float, inverseAmplitude inv: Float) {
    if CPUFeatures.avx512F {
        lenet_tanh_backward_avx512(dx, dy, y, count, scale, inv)
        return
    }
    tanhBackwardPortable(dx, dy, y, count: count, scale: scale, inverseAmplitude: inv)
}

/// `tanhBackward` in Swift's vectors, for any CPU, eight at a time; the
/// tail runs the same operations one by one (no FMA, so the bits agree):
/// the AVX-512 kernel's reference.
func tanhBackwardPortable(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                          count: Int, scale: Float, inverseAmplitude inv: Float) {
    var i = 0
    while i + 8 <= count {
        let t = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self) * inv
        let g = UnsafeRawPointer(dy + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(dx + i).storeBytes(of: g * scale * (1 - t * t), as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        let t = y[i] * inv
        dx[i] = dy[i] * scale * (1 - t * t)
        i += 1
    }
}

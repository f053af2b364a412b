// Short vector loops the optimizer would otherwise leave scalar or turn
// into library calls.

#if arch(x86_64) && canImport(_Builtin_intrinsics.intel)
import _Builtin_intrinsics.intel
import Foundation  // libm (expf, logf, …) on every platform
#endif

/// The lane-wise square root, correctly rounded like `Float.squareRoot()`.
/// `SIMD8.squareRoot()` runs lane by lane through libm's `sqrtf` with an
/// errno check per lane; on x86-64 this is SSE's `sqrtps` instead, the
/// same IEEE result four lanes at a time (Adam's step is a few percent of training).
@inline(__always)
func squareRoot(_ v: SIMD8<Float>) -> SIMD8<Float> {
    #if arch(x86_64) && canImport(_Builtin_intrinsics.intel)
    SIMD8(lowHalf: _mm_sqrt_ps(v.lowHalf), highHalf: _mm_sqrt_ps(v.highHalf))
    #else
    v.squareRoot()
    #endif
}

/// Copies a short run of floats (an input line of im2col: 28 or 10) with
/// 8-, 4- and 2-wide loads and stores. (A plain loop is turned back into a
/// `memmove` call by the optimizer, which costs more than the copy.)
@inline(__always)
func copyShort(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
    let from = UnsafeRawPointer(src), to = UnsafeMutableRawPointer(dst)
    var j = 0
    while j &+ 8 <= count {
        to.storeBytes(of: from.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self), toByteOffset: j &* 4, as: SIMD8<Float>.self)
        j &+= 8
    }
    if j &+ 4 <= count {
        to.storeBytes(of: from.loadUnaligned(fromByteOffset: j &* 4, as: SIMD4<Float>.self), toByteOffset: j &* 4, as: SIMD4<Float>.self)
        j &+= 4
    }
    if j &+ 2 <= count {
        to.storeBytes(of: from.loadUnaligned(fromByteOffset: j &* 4, as: SIMD2<Float>.self), toByteOffset: j &* 4, as: SIMD2<Float>.self)
        j &+= 2
    }
    if j < count { dst[j] = src[j] }
}

/// Copies `count` floats from `src` to `dst` and returns their sum, with
/// eight partial sums (a single running sum is a dependency chain the
/// compiler may not reorder).
@inline(__always)
func copyAndSum(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) -> Float {
    let from = UnsafeRawPointer(src), to = UnsafeMutableRawPointer(dst)
    var partial = SIMD8<Float>(repeating: 0)
    var j = 0
    while j &+ 8 <= count {
        let v = from.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self)
        to.storeBytes(of: v, toByteOffset: j &* 4, as: SIMD8<Float>.self)
        partial += v
        j &+= 8
    }
    var sum = partial.sum()
    while j < count {
        dst[j] = src[j]
        sum += src[j]
        j &+= 1
    }
    return sum
}

/// The sum of `count` floats, with eight partial sums.
@inline(__always)
func sum(_ src: UnsafePointer<Float>, count: Int) -> Float {
    let from = UnsafeRawPointer(src)
    var partial = SIMD8<Float>(repeating: 0)
    var j = 0
    while j &+ 8 <= count {
        partial += from.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self)
        j &+= 8
    }
    var total = partial.sum()
    while j < count {
        total += src[j]
        j &+= 1
    }
    return total
}

/// Adds `value` to `count` floats in place.
@inline(__always)
func addScalar(_ dst: UnsafeMutablePointer<Float>, _ value: Float, count: Int) {
    for j in 0..<count { dst[j] += value }
}

/// dst[j] += src[j] for a short run, eight then four lanes at a time.
@inline(__always)
func addShort(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
    let from = UnsafeRawPointer(src), to = UnsafeMutableRawPointer(dst)
    var j = 0
    while j &+ 8 <= count {
        let sum = to.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self)
            + from.loadUnaligned(fromByteOffset: j &* 4, as: SIMD8<Float>.self)
        to.storeBytes(of: sum, toByteOffset: j &* 4, as: SIMD8<Float>.self)
        j &+= 8
    }
    if j &+ 4 <= count {
        let sum = to.loadUnaligned(fromByteOffset: j &* 4, as: SIMD4<Float>.self)
            + from.loadUnaligned(fromByteOffset: j &* 4, as: SIMD4<Float>.self)
        to.storeBytes(of: sum, toByteOffset: j &* 4, as: SIMD4<Float>.self)
        j &+= 4
    }
    while j < count {
        dst[j] += src[j]
        j &+= 1
    }
}

/// Runs `body` with subnormal floats read as 0 and results that would be
/// subnormal written as 0 (x86-64's DAZ and FTZ modes), then restores the
/// thread's floating-point mode. Elsewhere it just runs `body`.
@inline(__always)
func withSubnormalsFlushed<R>(_ body: () throws -> R) rethrows -> R {
    #if arch(x86_64) && canImport(Glibc)
    var saved = fenv_t()
    fegetenv(&saved)
    var flushing = saved
    flushing.__mxcsr |= 0x8040  // FTZ (bit 15) | DAZ (bit 6)
    fesetenv(&flushing)
    defer { fesetenv(&saved) }
    #endif
    return try body()
}

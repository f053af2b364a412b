// Patch rows: a convolution's backward pass when its output gradient is
// sparse. Behind a 2×2 max pool only one output position in four gets a
// gradient (and behind the ReLU after the pool, some of those), so
// the weight and input gradients are sums over a few chosen rows instead of
// dense gemms over mostly zeros:
//
//   dW[oc, :]  = Σ_(q, g) chosen by oc          g · rows[q, :]    rows: one input patch per output position
//   drows[q, :] = Σ_(oc, g) that chose q        g · W[oc, :]      folded back into dx by rows2im
//
// The row layout is im2col's transposed: one row of C·KH·KW per output
// position, so that a chosen patch is one contiguous run.

import CKernels
import Foundation  // libm (expf, logf, …) on every platform

/// Unfolds one sample into patch rows, one row per output position, for
/// stride 1 and no padding: `im2col` transposed.
///
/// ```
/// rows[oh·OW + ow, (c·KH + kh)·KW + kw] = x[c, oh + kh, ow + kw]
/// ```
/// - Parameters:
///   - rows: (OH·OW, ld), ld ≥ C·KH·KW; the columns past C·KH·KW are not written.
///   - x: (C, H, W)
func im2rows(_ rows: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ g: ConvGeometry, ld: Int) {
    precondition(g.stride == 1 && g.padding == 0, "im2rows: stride 1 and no padding only")
    switch g.kernelW {
    case 5: im2rowsSegments(rows, x, g, ld: ld, width: 5)
    default: im2rowsSegments(rows, x, g, ld: ld, width: g.kernelW)
    }
}

@inline(__always)
private func im2rowsSegments(_ rows: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ g: ConvGeometry,
                             ld: Int, width kw: Int) {
    let H = g.height, W = g.width, C = g.channels, KH = g.kernelH
    var row = rows
    for oh in 0..<g.outH {
        for ow in 0..<g.outW {
            var dst = row
            for c in 0..<C {
                var src = x + ((c &* H &+ oh) &* W &+ ow)
                for _ in 0..<KH {
                    copyShort(dst, src, count: kw)
                    dst += kw
                    src += W
                }
            }
            row += ld
        }
    }
}

/// Folds patch rows back into a sample, adding overlapping contributions:
/// the adjoint of `im2rows`. Overwrites `x`; rows whose `used` entry is 0
/// are taken as zero and not read.
/// - Parameters:
///   - x: (C, H, W)
///   - rows: (OH·OW, ld)
///   - used: (OH·OW), or nil for every row.
func rows2im(_ x: UnsafeMutablePointer<Float>, _ rows: UnsafePointer<Float>, _ g: ConvGeometry, ld: Int,
             used: UnsafePointer<Int32>? = nil) {
    precondition(g.stride == 1 && g.padding == 0, "rows2im: stride 1 and no padding only")
    x.update(repeating: 0, count: g.channels * g.height * g.width)
    switch g.kernelW {
    case 5: rows2imSegments(x, rows, g, ld: ld, used: used, width: 5)
    default: rows2imSegments(x, rows, g, ld: ld, used: used, width: g.kernelW)
    }
}

@inline(__always)
private func rows2imSegments(_ x: UnsafeMutablePointer<Float>, _ rows: UnsafePointer<Float>, _ g: ConvGeometry,
                             ld: Int, used: UnsafePointer<Int32>?, width kw: Int) {
    let H = g.height, W = g.width, C = g.channels, KH = g.kernelH, OW = g.outW
    for oh in 0..<g.outH {
        for ow in 0..<OW {
            let q = oh &* OW &+ ow
            if let used, used[q] == 0 { continue }
            var src = rows + q &* ld
            for c in 0..<C {
                var dst = x + ((c &* H &+ oh) &* W &+ ow)
                for _ in 0..<KH {
                    addShort(dst, src, count: kw)
                    src += kw
                    dst += W
                }
            }
        }
    }
}

/// The weighted sum of chosen rows of a matrix:
///
/// ```
/// out[0..<width] (+)= Σ_j weights[j] · matrix[rows[j], 0..<width]
/// ```
/// With AVX2 and FMA where the CPU has them (`lenet_weighted_row_sum_avx2`,
/// in C), else `weightedRowSumVector`. FMA ran these sums well ahead of
/// Swift's vectors (the x86-64 baseline: SSE multiplies and adds), at
/// about half the FMA peak: the rows come from L2 (docs/PERFORMANCE.md).
/// (Unfolding and summing
/// conv1's patches one window row at a time, so that they stay in L1, and
/// summing in column blocks were no faster end to end.)
/// - Parameters:
///   - out: (width); overwritten, or added to when `accumulate`.
///   - matrix: rows `ld` apart.
///   - width: a multiple of 8, ≤ ld.
///   - rows: (count) row indices.
///   - weights: (count)
@inline(__always)
func weightedRowSum(_ out: UnsafeMutablePointer<Float>, accumulate: Bool,
                    _ matrix: UnsafePointer<Float>, ld: Int, width: Int,
                    rows: UnsafePointer<Int32>, weights: UnsafePointer<Float>, count: Int) {
    if CPUFeatures.avx512F {
        lenet_weighted_row_sum_avx512(out, accumulate ? 1 : 0, matrix, ld, width, rows, weights, count)
    } else if CPUFeatures.avx2FMA {
        lenet_weighted_row_sum_avx2(out, accumulate ? 1 : 0, matrix, ld, width, rows, weights, count)
    } else {
        weightedRowSumVector(out, accumulate: accumulate, matrix, ld: ld, width: width,
                             rows: rows, weights: weights, count: count)
    }
}

/// What the CPU offers beyond the baseline the package is compiled for.
enum CPUFeatures {
    /// The CPU runs AVX2 and FMA (x86-64 since 2013–2015), whatever the
    /// environment asks.
    static let hardwareAVX2FMA = lenet_has_avx2_fma() != 0
    /// The kernels use AVX2 and FMA: the CPU has them and the environment
    /// variable `LENETKIT_KERNELS` is not `portable`. Read once, at the
    /// first kernel call; `portable` lets the test suite run the Swift
    /// fallback on a CPU that has AVX2 (CI does), as a CPU without it would.
    static let avx2FMA = hardwareAVX2FMA && !portableRequested
    /// The CPU runs AVX-512F and `LENETKIT_KERNELS` is neither `portable`
    /// nor `avx2`: the kernels that have a 512-bit variant use it. `avx2`
    /// runs the AVX2 kernels on a CPU with AVX-512, to measure them there.
    static let avx512F = lenet_has_avx512f() != 0 && !portableRequested && requested != "avx2"
    static let portableRequested = requested == "portable"
    /// `LENETKIT_KERNELS`, if set.
    private static let requested: String? = getenv("LENETKIT_KERNELS").map { String(cString: $0) }
}

/// `weightedRowSum` in Swift vectors, for any CPU: forty columns at a time
/// are summed in registers over all the chosen rows, then stored once.
func weightedRowSumVector(_ out: UnsafeMutablePointer<Float>, accumulate: Bool,
                    _ matrix: UnsafePointer<Float>, ld: Int, width: Int,
                    rows: UnsafePointer<Int32>, weights: UnsafePointer<Float>, count: Int) {
    typealias V = SIMD8<Float>
    var k = 0
    while k &+ 40 <= width {
        let o = UnsafeMutableRawPointer(out + k)
        var a0 = V(), a1 = V(), a2 = V(), a3 = V(), a4 = V()
        if accumulate {
            a0 = o.loadUnaligned(as: V.self)
            a1 = o.loadUnaligned(fromByteOffset: 32, as: V.self)
            a2 = o.loadUnaligned(fromByteOffset: 64, as: V.self)
            a3 = o.loadUnaligned(fromByteOffset: 96, as: V.self)
            a4 = o.loadUnaligned(fromByteOffset: 128, as: V.self)
        }
        let base = matrix + k
        for j in 0..<count {
            let r = UnsafeRawPointer(base + Int(rows[j]) &* ld)
            let w = V(repeating: weights[j])
            a0 += w * r.loadUnaligned(as: V.self)
            a1 += w * r.loadUnaligned(fromByteOffset: 32, as: V.self)
            a2 += w * r.loadUnaligned(fromByteOffset: 64, as: V.self)
            a3 += w * r.loadUnaligned(fromByteOffset: 96, as: V.self)
            a4 += w * r.loadUnaligned(fromByteOffset: 128, as: V.self)
        }
        o.storeBytes(of: a0, as: V.self)
        o.storeBytes(of: a1, toByteOffset: 32, as: V.self)
        o.storeBytes(of: a2, toByteOffset: 64, as: V.self)
        o.storeBytes(of: a3, toByteOffset: 96, as: V.self)
        o.storeBytes(of: a4, toByteOffset: 128, as: V.self)
        k &+= 40
    }
    while k &+ 8 <= width {
        let o = UnsafeMutableRawPointer(out + k)
        var a = accumulate ? o.loadUnaligned(as: V.self) : V()
        let base = matrix + k
        for j in 0..<count {
            a += V(repeating: weights[j]) * UnsafeRawPointer(base + Int(rows[j]) &* ld).loadUnaligned(as: V.self)
        }
        o.storeBytes(of: a, as: V.self)
        k &+= 8
    }
}

// MARK: The lists the pooled backward sums over

/// The pairs (keys[j], values[j]), j < count, whose value is not ±0 (a NaN
/// is kept), in order, into `rows` and `weights` (each with room for
/// `count`); returns how many. With AVX-512's compress where the CPU has
/// it, else `compactNonzeroPortable`: the same lists.
@inline(__always)
func compactNonzero(_ rows: UnsafeMutablePointer<Int32>, _ weights: UnsafeMutablePointer<Float>,
                    keys: UnsafePointer<Int32>, values: UnsafePointer<Float>, count: Int) -> Int {
    if CPUFeatures.avx512F { return lenet_compact_nonzero_avx512(rows, weights, keys, values, count) }
    return compactNonzeroPortable(rows, weights, keys: keys, values: values, count: count)
}

/// `compactNonzero` one pair at a time, for any CPU.
func compactNonzeroPortable(_ rows: UnsafeMutablePointer<Int32>, _ weights: UnsafeMutablePointer<Float>,
                            keys: UnsafePointer<Int32>, values: UnsafePointer<Float>, count: Int) -> Int {
    var n = 0
    for j in 0..<count {
        let v = values[j]
        rows[n] = keys[j]
        weights[n] = v
        n &+= nonzero(v)
    }
    return n
}

/// For one 2×2 pooling window whose top-left input is `start` (rows
/// `rowLength` apart), one list per corner q = start + (corner ≥ 2 ?
/// rowLength : 0) + corner % 2: the kernels oc in order whose route
/// `routes[oc·stride]` is q and whose gradient `values[oc·stride]` is not
/// ±0, as `rows[corner·kernels + i]` = oc and `weights[corner·kernels + i]`;
/// `counts[corner]` how many. With AVX-512 where the CPU has it, else
/// `cornerListsPortable`: the same lists.
@inline(__always)
func cornerLists(_ rows: UnsafeMutablePointer<Int32>, _ weights: UnsafeMutablePointer<Float>,
                 counts: UnsafeMutablePointer<Int32>, routes: UnsafePointer<Int32>, values: UnsafePointer<Float>,
                 kernels: Int, stride: Int, start: Int, rowLength: Int) {
    if CPUFeatures.avx512F {
        lenet_corner_lists_avx512(rows, weights, counts, routes, values, kernels, stride, start, rowLength)
        return
    }
    cornerListsPortable(rows, weights, counts: counts, routes: routes, values: values, kernels: kernels, stride: stride,
                        start: start, rowLength: rowLength)
}

/// `cornerLists` one kernel at a time, for any CPU: one pass over the
/// kernels per corner keeps the list-building free of branches.
func cornerListsPortable(_ rows: UnsafeMutablePointer<Int32>, _ weights: UnsafeMutablePointer<Float>,
                         counts: UnsafeMutablePointer<Int32>, routes: UnsafePointer<Int32>, values: UnsafePointer<Float>,
                         kernels: Int, stride: Int, start: Int, rowLength: Int) {
    for corner in 0..<4 {
        let q = Int32(truncatingIfNeeded: start + (corner >= 2 ? rowLength : 0) + corner % 2)
        let listRows = rows + corner * kernels, listWeights = weights + corner * kernels
        var n = 0
        for oc in 0..<kernels {
            let v = values[oc * stride]
            listRows[n] = Int32(truncatingIfNeeded: oc)
            listWeights[n] = v
            n &+= nonzero(v) & same(routes[oc * stride], q)
        }
        counts[corner] = Int32(truncatingIfNeeded: n)
    }
}

// The compaction loops count with arithmetic, not comparisons: the
// optimizer turned `v != 0 ? 1 : 0` into branches, which mispredict on
// gradients that are zero at random (docs/PERFORMANCE.md).

/// 1 when a gradient is to be summed, anything but ±0 (a NaN is kept, so it
/// reaches the weights as it would through the dense product), else 0.
@inline(__always)
func nonzero(_ v: Float) -> Int {
    Int(((v.bitPattern & 0x7fff_ffff) &+ 0x7fff_ffff) >> 31)
}

/// 1 when a == b, else 0.
@inline(__always)
func same(_ a: Int32, _ b: Int32) -> Int {
    let d = UInt32(bitPattern: a ^ b)
    return 1 &- Int(((d & 0x7fff_ffff) &+ 0x7fff_ffff | d) >> 31)
}

// Adam's elementwise update, the one optimizer loop that vector width pays
// for: two divisions and a square root per value. Swift builds LeNetKit for
// baseline x86-64, where an eight-lane vector runs as two SSE halves; the
// AVX2 kernel takes eight lanes in one instruction and the AVX-512 one
// sixteen (on Zen 5 a 512-bit division costs what a 256-bit one does). All
// three do the same IEEE operations per value in the same order, none
// fused, so the parameters come out the same bit for bit whichever runs.

import CKernels

/// The per-step constants of `adamUpdate`.
struct AdamConstants {
    /// 1 − β1, β2 and 1 − β2.
    var w1: Float, beta2: Float, w2: Float
    /// L2 decay added to the gradient (Adam), and the decoupled shrink
    /// factor of the weights (AdamW; 1 for Adam).
    var l2: Float, shrink: Float
    /// lr / (1 − β1ᵗ) and √(1 − β2ᵗ), and ε.
    var stepSize: Float, bias2Sqrt: Float, epsilon: Float
}

/// One Adam step over `count` values:
/// ```
/// g ← g + l2·p;  p ← p·shrink
/// m ← m + w1·(g − m);  v ← v·β2 + (w2·g)·g
/// p ← p − stepSize·(m / (√v / bias2Sqrt + ε))
/// ```
func adamUpdate(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                _ v: UnsafeMutablePointer<Float>, count: Int, _ c: AdamConstants) {
    var done = 0
    if CPUFeatures.avx512F {
        done = lenet_adam_avx512(p, g, m, v, count, c.w1, c.beta2, c.w2, c.l2, c.shrink, c.stepSize, c.bias2Sqrt, c.epsilon)
    } else if CPUFeatures.avx2FMA {
        done = lenet_adam_avx2(p, g, m, v, count, c.w1, c.beta2, c.w2, c.l2, c.shrink, c.stepSize, c.bias2Sqrt, c.epsilon)
    }
    adamUpdatePortable(p + done, g + done, m + done, v + done, count: count - done, c)
}

/// `adamUpdate` in Swift: eight lanes at a time, then one (the same
/// operations, so a value's bits do not depend on its position).
func adamUpdatePortable(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                        _ v: UnsafeMutablePointer<Float>, count: Int, _ c: AdamConstants) {
    typealias V = SIMD8<Float>
    @inline(__always) func load(_ q: UnsafePointer<Float>) -> V { UnsafeRawPointer(q).loadUnaligned(as: V.self) }
    @inline(__always) func store(_ x: V, _ q: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(q).storeBytes(of: x, as: V.self) }
    let (w1, beta2, w2, l2, shrink) = (c.w1, c.beta2, c.w2, c.l2, c.shrink)
    let (stepSize, bias2Sqrt, epsilon) = (c.stepSize, c.bias2Sqrt, c.epsilon)
    var i = 0
    while i + 8 <= count {
        var grad = load(g + i), pv = load(p + i), mv = load(m + i), vv = load(v + i)
        if l2 != 0 { grad += l2 * pv }
        if shrink != 1 { pv *= shrink }
        mv += w1 * (grad - mv)
        vv = vv * beta2 + w2 * grad * grad
        let denom = squareRoot(vv) / bias2Sqrt + epsilon
        pv -= stepSize * (mv / denom)
        store(pv, p + i); store(mv, m + i); store(vv, v + i)
        i += 8
    }
    while i < count {
        var grad = g[i]
        if l2 != 0 { grad += l2 * p[i] }
        if shrink != 1 { p[i] *= shrink }
        m[i] += w1 * (grad - m[i])
        v[i] = v[i] * beta2 + w2 * grad * grad
        let denom = v[i].squareRoot() / bias2Sqrt + epsilon
        p[i] -= stepSize * (m[i] / denom)
        i += 1
    }
}

// A pure-Swift gemm, cache-blocked with SIMD register tiles: the yardstick
// that shows what OpenBLAS buys (Benchmarks/), never used by the layers.

/// `gemm`'s contract in plain Swift: operands are packed into row-major
/// A (M, K) and B (K, N) panels, then 4×16 tiles of C are accumulated in
/// SIMD registers over K blocks that stay in cache.
@_spi(Benchmarks) public func gemmSwift(
    _ transA: Transpose, _ transB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    _ a: UnsafePointer<Float>, lda: Int? = nil,
    _ b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0,
    _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil
) {
    let (lda, ldb, ldc) = leadingDimensions(transA, transB, m: m, n: n, k: k, lda, ldb, ldc)
    if m == 0 || n == 0 { return }
    // Scale C by beta first; the tiles then add alpha·A·B.
    for i in 0..<m {
        let row = c + i * ldc
        if beta == 0 { row.update(repeating: 0, count: n) } else if beta != 1 { for j in 0..<n { row[j] *= beta } }
    }
    if k == 0 { return }
    let np = (n + 15) / 16 * 16  // B panel width, padded to whole SIMD16 columns
    let packedA = UnsafeMutablePointer<Float>.allocate(capacity: m * k)  // (M, K), times alpha
    let packedB = UnsafeMutablePointer<Float>.allocate(capacity: k * np)  // (K, NP), zero padded
    defer { packedA.deallocate(); packedB.deallocate() }
    for i in 0..<m {
        for p in 0..<k { packedA[i * k + p] = alpha * (transA == .none ? a[i * lda + p] : a[p * lda + i]) }
    }
    for p in 0..<k {
        let dst = packedB + p * np
        for j in 0..<n { dst[j] = transB == .none ? b[p * ldb + j] : b[j * ldb + p] }
        for j in n..<np { dst[j] = 0 }
    }
    let kc = 256  // K block: a 256×16 strip of B is 16 KB, at home in L1
    var p0 = 0
    while p0 < k {
        let p1 = min(p0 + kc, k)
        var j = 0
        while j < n {
            var i = 0
            while i < m {
                let rows = min(4, m - i)
                var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>(), c3 = SIMD16<Float>()
                let a0 = packedA + i * k, a1 = a0 + (rows > 1 ? k : 0), a2 = a0 + (rows > 2 ? 2 * k : 0), a3 = a0 + (rows > 3 ? 3 * k : 0)
                for p in p0..<p1 {
                    let bv = UnsafeRawPointer(packedB + p * np + j).loadUnaligned(as: SIMD16<Float>.self)
                    c0 += a0[p] * bv
                    c1 += a1[p] * bv
                    c2 += a2[p] * bv
                    c3 += a3[p] * bv
                }
                let width = min(16, n - j)
                for r in 0..<rows {
                    let tile = r == 0 ? c0 : r == 1 ? c1 : r == 2 ? c2 : c3
                    let dst = c + (i + r) * ldc + j
                    for q in 0..<width { dst[q] += tile[q] }
                }
                i += 4
            }
            j += 16
        }
        p0 = p1
    }
}

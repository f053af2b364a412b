// The only file in LeNetKit that talks to BLAS. Everything else calls `gemm`
// with Swift types; no BLAS type or C enum leaves this file. The package
// trait picks the library: OpenBLAS (default) or BLIS (`--traits BLIS`).
#if BLIS
import CBLIS
#else
import CBLAS
#if canImport(Glibc)
import Glibc  // dlsym
#endif
#endif

/// Whether a gemm operand is used as stored or transposed.
@_spi(Benchmarks) public enum Transpose: Sendable {
    case none
    case transposed
}

/// Single-precision general matrix multiply on row-major matrices:
///
/// ```
/// C = alpha * op(A) * op(B) + beta * C
/// op(A): (M, K)   op(B): (K, N)   C: (M, N)
/// ```
///
/// `lda`, `ldb`, `ldc` are row strides in elements; they default to the
/// tight layout of the stored (not transposed) matrices.
///
/// - Parameters:
///   - transA: whether `a` holds A (M, K) or its transpose (K, M).
///   - transB: whether `b` holds B (K, N) or its transpose (N, K).
///   - m, n, k: the sizes of the product.
///   - alpha: the scale of the product.
///   - a, b: the operands.
///   - beta: the scale of the existing `c`; 0 overwrites, 1 accumulates.
///   - c: the result, (M, N).
@_spi(Benchmarks) public func gemm(
    _ transA: Transpose, _ transB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    _ a: UnsafePointer<Float>, lda: Int? = nil,
    _ b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0,
    _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil
) {
    let (lda, ldb, ldc) = leadingDimensions(transA, transB, m: m, n: n, k: k, lda, ldb, ldc)
    blasSgemm(transA == .transposed, transB == .transposed,
              m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

/// The row strides of A, B and C: as given, or the tight layout of the
/// stored (not transposed) matrices.
func leadingDimensions(_ transA: Transpose, _ transB: Transpose, m: Int, n: Int, k: Int,
                       _ lda: Int?, _ ldb: Int?, _ ldc: Int?) -> (Int, Int, Int) {
    (lda ?? (transA == .none ? k : m), ldb ?? (transB == .none ? n : k), ldc ?? n)
}

func blasSgemm(
    _ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int,
    _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
) {
    if m == 0 || n == 0 { return }
    // BLAS single-threaded, its idle pool ended, before any product: never
    // a threaded call that `BLASThreads.set(1)` could end under it.
    _ = SingleThreadedBLAS.ensured
    // A product with one column, one row, or an inner dimension of one is a
    // matrix–vector product or a rank-1 update: BLAS's level-2 kernels run
    // those without sgemm's packing of both operands, which at batch 1
    // (LeNet-5's C5 and fully connected layers) cost more than the product.
    if n == 1 {
        // c (M) = alpha · op(A) (M, K) · b (K) + beta · c
        cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, Int32(ta ? k : m), Int32(ta ? m : k),
                    alpha, a, Int32(lda), b, Int32(tb ? 1 : ldb), beta, c, Int32(ldc))
        return
    }
    if m == 1 {
        // cᵀ (N) = alpha · op(B)ᵀ (N, K) · op(A)ᵀ (K) + beta · cᵀ
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, Int32(tb ? n : k), Int32(tb ? k : n),
                    alpha, b, Int32(ldb), a, Int32(ta ? lda : 1), beta, c, 1)
        return
    }
    if k == 1 {
        // c (M, N) = beta · c + alpha · op(A) (M) ⊗ op(B) (N)
        if beta != 1 {
            for i in 0..<m {
                let row = c + i * ldc
                if beta == 0 { row.update(repeating: 0, count: n) } else { for j in 0..<n { row[j] *= beta } }
            }
        }
        cblas_sger(CblasRowMajor, Int32(m), Int32(n), alpha, a, Int32(ta ? 1 : lda), b, Int32(tb ? ldb : 1), c, Int32(ldc))
        return
    }
    cblas_sgemm(CblasRowMajor,
                ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k),
                alpha, a, Int32(lda), b, Int32(ldb),
                beta, c, Int32(ldc))
}

/// C (M, N) = op(A) · B (K, N), overwriting C, in blocks of columns of at
/// most about 10⁶ multiply-adds each. Larger products leave OpenBLAS's
/// small-matrix kernels for its packed path, which first copies both
/// operands: conv2's forward and input-gradient gemms (32×100×400 and
/// 400×100×32) ran faster in two column halves than whole; conv1's forward
/// (16×784×75) is under the limit. (The weight gradients, which
/// accumulate, ran slower when split.) Measured: docs/PERFORMANCE.md.
@inline(__always)
func gemmInColumnBlocks(_ transA: Transpose, m: Int, n: Int, k: Int,
                        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>) {
    let blocks = min(n, max(1, (m * n * k + 999_999) / 1_000_000))
    for block in 0..<blocks {
        let lo = n * block / blocks, hi = n * (block + 1) / blocks
        gemm(transA, .none, m: m, n: hi - lo, k: k, a, b + lo, ldb: n, c + lo, ldc: n)
    }
}

/// The reference for `gemm`: a plain triple loop in the same conventions,
/// accumulated in Double. Tests hold the BLAS path against it.
@_spi(Benchmarks) public func gemmNaive(
    _ transA: Transpose, _ transB: Transpose,
    m: Int, n: Int, k: Int,
    alpha: Float = 1,
    _ a: UnsafePointer<Float>, lda: Int? = nil,
    _ b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0,
    _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil
) {
    let (lda, ldb, ldc) = leadingDimensions(transA, transB, m: m, n: n, k: k, lda, ldb, ldc)
    for i in 0..<m {
        for j in 0..<n {
            var sum = 0.0
            for p in 0..<k {
                let aip = transA == .none ? a[i * lda + p] : a[p * lda + i]
                let bpj = transB == .none ? b[p * ldb + j] : b[j * ldb + p]
                sum += Double(aip) * Double(bpj)
            }
            let old = beta == 0 ? 0 : beta * c[i * ldc + j]
            c[i * ldc + j] = alpha * Float(sum) + old
        }
    }
}

/// The number of threads the BLAS library uses for one gemm.
@_spi(Benchmarks) public enum BLASThreads {
    /// Sets the BLAS library's thread count (at least 1).
    ///
    /// With OpenBLAS, 1 also ends its idle worker threads. They are started
    /// when the library loads and wait for work by spinning on
    /// `sched_yield` for about 2^28 cycles before they sleep: a tenth of a
    /// second of a core taken from LeNetKit's own threads, which at the start
    /// of `lenet eval` on two cores cost a quarter of its throughput. OpenBLAS
    /// starts them again if a thread count above 1 is set and a threaded call
    /// made. (`blas_thread_shutdown_` is OpenBLAS's own, which it runs
    /// before a fork; looked up, so a single-threaded build without it links.)
    public static func set(_ count: Int) {
        #if BLIS
        bli_thread_set_num_threads(Int64(max(1, count)))
        #else
        openblas_set_num_threads(Int32(max(1, count)))
        if count <= 1, let shutdown = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "blas_thread_shutdown_") {
            _ = unsafeBitCast(shutdown, to: (@convention(c) () -> Int32).self)()
        }
        #endif
    }

    /// The BLAS library's current thread count.
    static var current: Int {
        #if BLIS
        Int(bli_thread_get_num_threads())
        #else
        Int(openblas_get_num_threads())
        #endif
    }

    /// "OpenBLAS" or "BLIS": the library this build links.
    static var library: String {
        #if BLIS
        "BLIS"
        #else
        "OpenBLAS"
        #endif
    }

    /// The kernel family OpenBLAS runs ("Haswell", "Cooperlake", …): its
    /// own choice for the CPU, or `OPENBLAS_CORETYPE`'s when that is set
    /// (read once, when OpenBLAS is loaded); nil with BLIS.
    static var coreName: String? {
        #if BLIS
        nil
        #else
        openblas_get_corename().map { String(cString: $0) }
        #endif
    }
}

/// The symmetric rank-k update of row-major matrices, lower half left
/// unwritten:
///
/// ```
/// C = alpha * Aᵀ A + beta * C     A: (K, N)   C: (N, N), upper triangle
/// ```
///
/// Half the multiply-adds of `gemm(.transposed, .none, …)` with A twice:
/// the covariance of the report's feature map. `symmetrized` fills the
/// lower half afterwards.
func syrkUpper(n: Int, k: Int, alpha: Float, _ a: UnsafePointer<Float>, beta: Float, _ c: UnsafeMutablePointer<Float>) {
    if n == 0 { return }
    _ = SingleThreadedBLAS.ensured
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(n), Int32(k), alpha, a, Int32(n), beta, c, Int32(n))
}

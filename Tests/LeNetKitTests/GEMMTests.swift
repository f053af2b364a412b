import Foundation
import Testing
@_spi(Benchmarks) @_spi(CLI) @testable import LeNetKit

struct GEMMTests {
    /// The BLAS wrapper against the triple loop, for all four transpose
    /// combinations, with alpha, beta and padded leading dimensions.
    @Test func testWrapperMatchesNaiveForAllTransposes() {
        let cases: [(Transpose, Transpose)] = [(.none, .none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)]
        for (ci, (ta, tb)) in cases.enumerated() {
            for (m, n, k) in [(7, 5, 3), (16, 784, 75), (33, 17, 129), (1, 10, 84)] {
                let pad = 3
                let aRows = ta == .none ? m : k, aCols = ta == .none ? k : m
                let bRows = tb == .none ? k : n, bCols = tb == .none ? n : k
                let lda = aCols + pad, ldb = bCols + pad, ldc = n + pad
                let a = randomValues(aRows * lda, seed: UInt64(ci * 100 + m))
                let b = randomValues(bRows * ldb, seed: UInt64(ci * 100 + n + 7))
                let c0 = randomValues(m * ldc, seed: UInt64(ci * 100 + k + 13))
                var fast = c0, slow = c0
                gemm(ta, tb, m: m, n: n, k: k, alpha: 0.5, a, lda: lda, b, ldb: ldb, beta: 2, &fast, ldc: ldc)
                gemmNaive(ta, tb, m: m, n: n, k: k, alpha: 0.5, a, lda: lda, b, ldb: ldb, beta: 2, &slow, ldc: ldc)
                // Each entry sums k products and β·c: bounded by (k + 1)·ε·Σ|terms|.
                var absolute = c0.map(abs)
                gemmNaive(ta, tb, m: m, n: n, k: k, alpha: 0.5, a.map(abs), lda: lda, b.map(abs), ldb: ldb, beta: 2,
                          &absolute, ldc: ldc)
                assertWithin(fast, slow, "gemm \(ta)/\(tb) \(m)×\(n)×\(k)", bounds: ErrorBound.sums(k + 1, absolute: absolute),
                             "(k + 1)·ε·Σ|terms|")
                // The padding columns of C stay untouched.
                for i in 0..<m { for j in n..<ldc { #expect(fast[i * ldc + j] == c0[i * ldc + j]) } }
            }
        }
    }

    /// A product whose result is known exactly.
    @Test func testKnownProduct() {
        let a: [Float] = [1, 2, 3, 4, 5, 6]  // (2, 3)
        let b: [Float] = [7, 8, 9, 10, 11, 12]  // (3, 2)
        var c = [Float](repeating: 0, count: 4)
        gemm(.none, .none, m: 2, n: 2, k: 3, a, b, &c)
        #expect(c == [58, 64, 139, 154])
        // Aᵀ (3, 2) · Bᵀ (2, 3) = (B·A)ᵀ
        var d = [Float](repeating: 0, count: 9)
        gemm(.transposed, .transposed, m: 3, n: 3, k: 2, a, b, &d)
        #expect(d == [39, 49, 59, 54, 68, 82, 69, 87, 105])
    }

    @Test func testThreadCountIsSettable() {
        let before = BLASThreads.current
        BLASThreads.set(1)
        #expect(BLASThreads.current == 1)
        BLASThreads.set(before)
        #expect(BLASThreads.current == before)
    }
}

struct GEMMSwiftTests {
    /// The pure-Swift blocked gemm against the triple loop, with ragged edges.
    @Test func testSwiftGemmMatchesNaive() {
        let cases: [(Transpose, Transpose)] = [(.none, .none), (.none, .transposed), (.transposed, .none), (.transposed, .transposed)]
        for (ci, (ta, tb)) in cases.enumerated() {
            for (m, n, k) in [(7, 5, 3), (16, 100, 75), (33, 17, 300), (5, 40, 1)] {
                let a = randomValues(m * k, seed: UInt64(ci * 10 + 1)), b = randomValues(k * n, seed: UInt64(ci * 10 + 2))
                let c0 = randomValues(m * n, seed: UInt64(ci * 10 + 3))
                var fast = c0, slow = c0
                gemmSwift(ta, tb, m: m, n: n, k: k, alpha: 0.5, a, b, beta: 2, &fast)
                gemmNaive(ta, tb, m: m, n: n, k: k, alpha: 0.5, a, b, beta: 2, &slow)
                var absolute = c0.map(abs)
                gemmNaive(ta, tb, m: m, n: n, k: k, alpha: 0.5, a.map(abs), b.map(abs), beta: 2, &absolute)
                assertWithin(fast, slow, "gemmSwift \(ta)/\(tb) \(m)×\(n)×\(k)", bounds: ErrorBound.sums(k + 1, absolute: absolute),
                             "(k + 1)·ε·Σ|terms|")
            }
        }
    }
}

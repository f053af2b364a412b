// The symmetric eigensolver behind the report's feature map (principal
// components of the penultimate layer's features): LAPACK's ssyevd, divide
// and conquer, through LAPACKE; the only file that imports it. Beside it, a
// naive reference, cyclic Jacobi rotations in Double, for the tests.
import CLAPACKE

/// The eigenvalues and eigenvectors of a symmetric matrix.
struct SymmetricEigen: Sendable {
    /// The eigenvalues, ascending. (n)
    let values: [Float]
    /// The orthonormal eigenvectors, one per row, in the order of `values`:
    /// `vectors[j * n ..< (j + 1) * n]` belongs to `values[j]`. Each is
    /// signed so that its entry of largest magnitude is positive (an
    /// eigenvector's sign is arbitrary; this makes plots repeatable). (n, n)
    let vectors: [Float]
    /// The matrix's side.
    let n: Int

    /// Decomposes `matrix` (n × n, row-major, symmetric; only its upper
    /// triangle is read) with LAPACKE_ssyevd.
    /// - Throws: `LeNetError` when LAPACK reports a failure (an argument it
    ///   refuses, or no convergence) or the sizes disagree.
    init(_ matrix: [Float], n: Int) throws {
        guard n > 0, matrix.count == n * n, n <= Int(Int32.max) else {
            throw LeNetError("an eigendecomposition needs an n × n matrix, got \(matrix.count) values for n = \(n)", subject: "eigen")
        }
        var a = matrix
        var w = [Float](repeating: 0, count: n)
        // Row-major with 'U': LAPACK sees the column-major transpose, whose
        // lower triangle is our upper one; on return the eigenvectors are
        // the columns of the row-major result.
        let info = LAPACKE_ssyevd(LAPACK_ROW_MAJOR, Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "U")), Int32(n), &a, Int32(n), &w)
        guard info == 0 else {
            throw LeNetError(info < 0 ? "LAPACK's ssyevd refused argument \(-info)"
                                      : "LAPACK's ssyevd did not converge (\(info) eigenvalues)", subject: "eigen")
        }
        var vectors = [Float](repeating: 0, count: n * n)
        for j in 0..<n {
            let column = signedByLargestEntry((0..<n).map { a[$0 * n + j] })
            for i in 0..<n { vectors[j * n + i] = column[i] }
        }
        self.values = w
        self.vectors = vectors
        self.n = n
    }
}

/// The reference: eigenvalues (ascending) and eigenvectors (rows, signed as
/// `SymmetricEigen` signs them) of a symmetric n × n matrix by cyclic
/// Jacobi rotations in Double, until the off-diagonal mass is below
/// 1e-24 of the whole or 100 sweeps have run.
func symmetricEigenNaive(_ matrix: [Float], n: Int) -> (values: [Double], vectors: [Double]) {
    var a = (0..<n * n).map { i -> Double in
        let (r, c) = (i / n, i % n)
        return Double(r <= c ? matrix[r * n + c] : matrix[c * n + r])  // the upper triangle, mirrored
    }
    var v = (0..<n * n).map { $0 / n == $0 % n ? 1.0 : 0.0 }  // columns: the eigenvectors
    let total = a.reduce(0) { $0 + $1 * $1 }
    for _ in 0..<100 {
        var off = 0.0
        for p in 0..<n { for q in 0..<n where p != q { off += a[p * n + q] * a[p * n + q] } }
        if off <= 1e-24 * total { break }
        for p in 0..<n - 1 {
            for q in p + 1..<n where a[p * n + q] != 0 {
                // The rotation that zeroes a[p][q] (Golub & Van Loan, §8.5.2).
                let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {
                    let akp = a[k * n + p], akq = a[k * n + q]
                    a[k * n + p] = c * akp - s * akq
                    a[k * n + q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let apk = a[p * n + k], aqk = a[q * n + k]
                    a[p * n + k] = c * apk - s * aqk
                    a[q * n + k] = s * apk + c * aqk
                }
                for k in 0..<n {
                    let vkp = v[k * n + p], vkq = v[k * n + q]
                    v[k * n + p] = c * vkp - s * vkq
                    v[k * n + q] = s * vkp + c * vkq
                }
            }
        }
    }
    let order = (0..<n).sorted { a[$0 * n + $0] < a[$1 * n + $1] }
    var vectors: [Double] = []
    for j in order { vectors += signedByLargestEntry((0..<n).map { v[$0 * n + j] }) }
    return (order.map { a[$0 * n + $0] }, vectors)
}

/// `vector` or its negation, whichever has its entry of largest magnitude
/// positive (the first such entry, on a tie).
func signedByLargestEntry<T: FloatingPoint>(_ vector: [T]) -> [T] {
    guard let largest = vector.indices.max(by: { abs(vector[$0]) < abs(vector[$1]) }), vector[largest] < 0 else { return vector }
    return vector.map { -$0 }
}

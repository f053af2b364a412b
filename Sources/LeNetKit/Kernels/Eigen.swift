// The symmetric eigensolver behind the report's feature map (principal
// components of the penultimate layer's features): LAPACK's ssyevd, divide
// and conquer, through LAPACKE; the only file that imports it. Its naive
// reference, cyclic Jacobi rotations in Double, is the tests'
// `symmetricEigenNaive` (Tests/LeNetKitTests/NaiveReferences.swift).
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
        _ = SingleThreadedBLAS.ensured
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

/// `vector` or its negation, whichever has its entry of largest magnitude
/// positive (the first such entry, on a tie).
func signedByLargestEntry<T: FloatingPoint>(_ vector: [T]) -> [T] {
    guard let largest = vector.indices.max(by: { abs(vector[$0]) < abs(vector[$1]) }), vector[largest] < 0 else { return vector }
    return vector.map { -$0 }
}

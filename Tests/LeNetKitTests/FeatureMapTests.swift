import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// The report's feature map: LAPACK's symmetric eigensolver against known
/// eigenvectors and a Jacobi reference, the covariance (BLAS ssyrk)
/// against a Double sum, and the map of a trained network drawn in the report.
struct FeatureMapTests {
    /// A symmetric n × n matrix Q diag(λ) Qᵀ with known eigenpairs: Q is the
    /// Householder reflection I − 2uuᵀ/uᵀu of a random u (orthogonal and
    /// symmetric, so its columns are the eigenvectors), λ planted.
    static func planted(n: Int, values: [Double], seed: UInt64) -> (matrix: [Float], q: [Double]) {
        var rng = SeededGenerator(seed: seed)
        let u = (0..<n).map { _ in Double(rng.uniform(-1, 1)) }
        let uu = u.reduce(0) { $0 + $1 * $1 }
        let q = (0..<n * n).map { i in (i / n == i % n ? 1.0 : 0.0) - 2 * u[i / n] * u[i % n] / uu }
        var a = [Float](repeating: 0, count: n * n)
        for r in 0..<n {
            for c in 0..<n {
                var v = 0.0
                for k in 0..<n { v += q[r * n + k] * values[k] * q[c * n + k] }
                a[r * n + c] = Float(v)
            }
        }
        return (a, q)
    }

    /// LAPACK's ssyevd and the Jacobi reference find the planted pairs.
    ///
    /// Bounds: storing A in float32 moves each eigenvalue by at most
    /// ‖ΔA‖₂ ≤ n·u·max|λ| (Weyl; u = ε/2 per entry, n entries a row), and a
    /// backward-stable solver adds as much again, so eigenvalues agree within
    /// n·ε·max|λ|. An eigenvector moves by at most that over the gap to the
    /// next eigenvalue (Davis–Kahan), so its entries agree within
    /// n·ε·max|λ| / gap.
    @Test func testEigenvectorsOfAPlantedMatrix() throws {
        let n = 84
        var values = (0..<n).map { 1 + Double($0) / Double(n) }  // 1 ... 2, a cluster
        values[17] = 100
        values[40] = 50
        let (a, q) = Self.planted(n: n, values: values, seed: 11)
        let eigen = try SymmetricEigen(a, n: n)
        let reference = symmetricEigenNaive(a, n: n)
        let valueBound = Double(n) * Double(Float.ulpOfOne) * 100
        let sorted = values.sorted()
        for j in 0..<n {
            #expect(abs(Double(eigen.values[j]) - sorted[j]) <= valueBound, "λ\(j): \(eigen.values[j]) vs \(sorted[j])")
            #expect(abs(reference.values[j] - sorted[j]) <= valueBound, "Jacobi λ\(j): \(reference.values[j]) vs \(sorted[j])")
        }
        // The two largest, separated from the rest by gaps of 50 and 48.
        for (j, column, gap) in [(n - 1, 17, 50.0), (n - 2, 40, 48.0)] {
            let planted = signedByLargestEntry((0..<n).map { q[$0 * n + column] })
            let bound = valueBound / gap
            let fromLAPACK = eigen.vectors[j * n..<(j + 1) * n].map(Double.init)
            let fromJacobi = Array(reference.vectors[j * n..<(j + 1) * n])
            #expect(zip(fromLAPACK, planted).allSatisfy { abs($0 - $1) <= bound },
                    "eigenvector \(j): max error \(zip(fromLAPACK, planted).map { abs($0 - $1) }.max() ?? 0), bound \(bound)")
            #expect(zip(fromJacobi, planted).allSatisfy { abs($0 - $1) <= bound })
        }
        // Orthonormal rows, to the rounding of n-term dot products.
        for i in [n - 1, n - 2, 0] {
            for j in [n - 1, n - 2, 0] {
                let dot = (0..<n).reduce(0.0) { $0 + Double(eigen.vectors[i * n + $1]) * Double(eigen.vectors[j * n + $1]) }
                #expect(abs(dot - (i == j ? 1 : 0)) <= Double(n) * Double(Float.ulpOfOne) * 4, "⟨v\(i), v\(j)⟩ = \(dot)")
            }
        }
    }

    /// The covariance of centred features, one ssyrk, against a Double sum:
    /// each entry is a sum of N products, within N·ε·Σ|products| (plus the
    /// centring's own rounding, u·|x| a term, inside the same factor).
    @Test func testCovarianceAgainstADoubleSum() throws {
        let n = 500, d = 12
        var rng = SeededGenerator(seed: 3)
        let x = (0..<n * d).map { i in rng.uniform(-1, 1) * Float(1 + i % d) + Float(i % d) }  // columns of different scale and mean
        let (mean, covariance) = FeatureMap.covariance(x, count: n, width: d)
        for j in 0..<d {
            let m = (0..<n).reduce(0.0) { $0 + Double(x[$1 * d + j]) } / Double(n)
            #expect(abs(Double(mean[j]) - m) <= Double(Float.ulpOfOne) * abs(m) + 1e-12)
        }
        for r in 0..<d {
            for c in 0..<d {
                let mr = Double(mean[r]), mc = Double(mean[c])
                var sum = 0.0, magnitude = 0.0
                for i in 0..<n {
                    let p = (Double(x[i * d + r]) - mr) * (Double(x[i * d + c]) - mc)
                    sum += p
                    magnitude += abs(p)
                }
                let bound = Double(n) * Double(Float.ulpOfOne) * magnitude / Double(n - 1)
                #expect(abs(Double(covariance[r * d + c]) - sum / Double(n - 1)) <= bound, "C[\(r)][\(c)]")
                #expect(covariance[r * d + c] == covariance[c * d + r])
            }
        }
    }

    /// The first principal component is the dominant eigenvector that
    /// power iteration finds on the Double covariance.
    @Test func testFirstComponentIsPowerIterations() throws {
        let n = 400, d = 10
        var rng = SeededGenerator(seed: 8)
        // Features spread mostly along one direction w, plus noise.
        let w = signedByLargestEntry((0..<d).map { _ in Double(rng.uniform(-1, 1)) })
        let x = (0..<n).flatMap { _ -> [Float] in
            let t = Double(rng.uniform(-3, 3))
            return (0..<d).map { Float(t * w[$0] + Double(rng.uniform(-0.2, 0.2))) }
        }
        let pca = try FeatureMap.principalComponents(x, count: n, width: d, components: 2)
        let (_, c) = FeatureMap.covariance(x, count: n, width: d)
        var v = [Double](repeating: 1, count: d)
        var lambda = 0.0, previous = 0.0
        for _ in 0..<500 {
            let next = (0..<d).map { r in (0..<d).reduce(0.0) { $0 + Double(c[r * d + $1]) * v[$1] } }
            lambda = (next.reduce(0) { $0 + $1 * $1 }).squareRoot()
            v = next.map { $0 / lambda }
            if abs(lambda - previous) <= 1e-15 * lambda { break }
            previous = lambda
        }
        v = signedByLargestEntry(v)
        // The gap to the second eigenvalue is the signal's variance (about 3)
        // over the noise's (about 0.013): the bound n·ε·λ₁ / gap is ~1e-5.
        let bound = Double(d) * Double(Float.ulpOfOne) * lambda / (lambda - pca.variances[1]) * 4
        #expect(zip(pca.vectors.prefix(d).map(Double.init), v).allSatisfy { abs($0 - $1) <= bound },
                "\(pca.vectors.prefix(d)) vs \(v)")
        #expect(abs(pca.variances[0] - lambda) <= Double(d) * Double(Float.ulpOfOne) * lambda * 4)
        #expect(pca.variances[0] / pca.totalVariance > 0.95)
    }

    /// A network's map: one point per image, the projection of its centred
    /// features, largest variance first; drawn in the report with a legend
    /// and the ringed misclassified images.
    @Test func testMapOfANetworkAndItsDrawing() throws {
        let net = try TrainingTests.smallNetwork(seed: 2)
        let data = try TrainingTests.squares(count: 60, seed: 9)
        let wrong = [Misclassification(index: 3, truth: 1, predicted: 2, probability: 0.5),
                     Misclassification(index: 99, truth: 0, predicted: 1, probability: 0.5)]  // outside: dropped
        let map = try FeatureMap(network: net, dataset: data, normalization: .half, highlighting: wrong, batchSize: 16)
        #expect(map.count == 60)
        #expect(map.points.count == 120)
        #expect(map.width == 100)  // the small network's fc1 reads 4 × 5 × 5
        #expect(map.highlighted.map(\.index) == [3])
        #expect(map.explainedVariance[0] >= map.explainedVariance[1] && map.explainedVariance.allSatisfy { (0...1).contains($0) })
        // The points of each component are centred: their mean is 0 to the
        // rounding of D-term dot products of values about max|point| in size.
        let magnitude = map.points.reduce(Float(0)) { max($0, abs($1)) }
        for c in 0..<2 {
            let mean = (0..<60).reduce(0.0) { $0 + Double(map.points[$1 * 2 + c]) } / 60
            #expect(abs(mean) <= Double(ErrorBound.reduction(100, magnitude: magnitude)), "component \(c) mean \(mean)")
        }
        let svg = map.svg()
        #expect(svg.components(separatedBy: "<circle").count - 1 == 60 + 1 + 10 + 1)  // dots, ring, legend, legend ring
        #expect(svg.contains(">place 9</text>"))
        #expect(svg.contains("test image 3: place 1, predicted place 2 (50%)"))

        var report = TrainingReport(title: "t", featureMap: map)
        report.evaluation = nil
        #expect(report.html().contains("Test images by their features"))
        #expect(report.html().contains("the output of pool"))
    }
}

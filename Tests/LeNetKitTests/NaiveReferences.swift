import Foundation
@_spi(CLI) @testable import LeNetKit

// The naive references of LeNetKit's fast kernels: plain loops that follow
// each definition, which only the tests compare against. Each kernel's file
// names its reference here.

// From Conv2D.swift.
/// w with every weight the table does not connect set to 0.
func maskedWeights(_ w: UnsafePointer<Float>, table: [[Int]], _ g: ConvGeometry) -> [Float] {
    let C = g.channels, K = g.kernelH * g.kernelW
    var masked = [Float](repeating: 0, count: table.count * C * K)
    for (oc, inputs) in table.enumerated() {
        for c in inputs { for k in 0..<K { masked[(oc * C + c) * K + k] = w[(oc * C + c) * K + k] } }
    }
    return masked
}

// From Conv2D.swift.
/// The reference for a convolution with a table: `conv2dForwardNaive` with
/// the weights the table does not connect taken as 0 (stride 1, no
/// padding), so masked weights are never read.
/// - Parameters:
///   - y: (N, OC, OH, OW)
///   - x: (N, C, H, W)
///   - w: (OC, C, KH, KW)
///   - b: (OC)
///   - table: `table[oc]`, the input maps of output map `oc`.
func partialConv2dForwardNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                               _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                               batch: Int, table: [[Int]], _ g: ConvGeometry) {
    conv2dForwardNaive(y, x, maskedWeights(w, table: table, g), b, batch: batch, outChannels: table.count, g)
}

// From Conv2D.swift.
/// The reference for the backward pass with a table: `conv2dBackwardNaive`
/// on the masked weights; overwrites dx, dw and db; dw is 0 wherever the
/// table has no connection.
/// - Parameters:
///   - dx: (N, C, H, W)
///   - dw: (OC, C, KH, KW)
///   - db: (OC)
///   - dy: (N, OC, OH, OW)
///   - x: (N, C, H, W)
///   - w: (OC, C, KH, KW)
func partialConv2dBackwardNaive(_ dx: UnsafeMutablePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                                _ db: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                batch: Int, table: [[Int]], _ g: ConvGeometry) {
    let OC = table.count, C = g.channels, K = g.kernelH * g.kernelW
    conv2dBackwardNaive(dx, dw, db, dy, x, maskedWeights(w, table: table, g), batch: batch, outChannels: OC, g)
    for oc in 0..<OC {
        let connected = Set(table[oc])
        for c in 0..<C where !connected.contains(c) { (dw + (oc * C + c) * K).update(repeating: 0, count: K) }
    }
}

// From Im2col.swift.
/// The reference for `Conv2D`: a direct convolution of a batch.
/// - Parameters:
///   - y: (N, OC, OH, OW)
///   - x: (N, C, H, W)
///   - w: (OC, C, KH, KW)
///   - b: (OC)
func conv2dForwardNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                               _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                               batch: Int, outChannels OC: Int, _ g: ConvGeometry) {
    let C = g.channels, H = g.height, W = g.width, OH = g.outH, OW = g.outW
    for n in 0..<batch {
        for oc in 0..<OC {
            for i in 0..<OH {
                for j in 0..<OW {
                    var sum = Double(b[oc])
                    for c in 0..<C {
                        for kh in 0..<g.kernelH {
                            for kw in 0..<g.kernelW {
                                let ih = i * g.stride - g.padding + kh
                                let iw = j * g.stride - g.padding + kw
                                if ih < 0 || ih >= H || iw < 0 || iw >= W { continue }
                                sum += Double(x[((n * C + c) * H + ih) * W + iw])
                                    * Double(w[((oc * C + c) * g.kernelH + kh) * g.kernelW + kw])
                            }
                        }
                    }
                    y[((n * OC + oc) * OH + i) * OW + j] = Float(sum)
                }
            }
        }
    }
}

// From Im2col.swift.
/// The reference for `Conv2D`'s backward pass: overwrites dx, dw and db.
/// - Parameters:
///   - dx: (N, C, H, W)
///   - dw: (OC, C, KH, KW)
///   - db: (OC)
///   - dy: (N, OC, OH, OW)
///   - x: (N, C, H, W)
///   - w: (OC, C, KH, KW)
func conv2dBackwardNaive(_ dx: UnsafeMutablePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                                _ db: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                batch: Int, outChannels OC: Int, _ g: ConvGeometry) {
    let C = g.channels, H = g.height, W = g.width, OH = g.outH, OW = g.outW
    let KH = g.kernelH, KW = g.kernelW
    var dxAcc = [Double](repeating: 0, count: batch * C * H * W)
    var dwAcc = [Double](repeating: 0, count: OC * C * KH * KW)
    var dbAcc = [Double](repeating: 0, count: OC)
    for n in 0..<batch {
        for oc in 0..<OC {
            for i in 0..<OH {
                for j in 0..<OW {
                    let g0 = Double(dy[((n * OC + oc) * OH + i) * OW + j])
                    dbAcc[oc] += g0
                    for c in 0..<C {
                        for kh in 0..<KH {
                            for kw in 0..<KW {
                                let ih = i * g.stride - g.padding + kh
                                let iw = j * g.stride - g.padding + kw
                                if ih < 0 || ih >= H || iw < 0 || iw >= W { continue }
                                let xi = ((n * C + c) * H + ih) * W + iw
                                let wi = ((oc * C + c) * KH + kh) * KW + kw
                                dwAcc[wi] += g0 * Double(x[xi])
                                dxAcc[xi] += g0 * Double(w[wi])
                            }
                        }
                    }
                }
            }
        }
    }
    for i in 0..<dxAcc.count { dx[i] = Float(dxAcc[i]) }
    for i in 0..<dwAcc.count { dw[i] = Float(dwAcc[i]) }
    for i in 0..<dbAcc.count { db[i] = Float(dbAcc[i]) }
}

// From Tanh.swift.
/// The reference: A·tanh(S·x) in double, rounded once.
func scaledTanhNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int,
                     amplitude: Float, slope: Float) {
    for i in 0..<count { y[i] = Float(Double(amplitude) * tanh(Double(slope) * Double(x[i]))) }
}

// From PatchRows.swift.
/// The reference for `weightedRowSum`: the same sum in Double, one column
/// at a time, for any width.
func weightedRowSumNaive(_ out: UnsafeMutablePointer<Float>, accumulate: Bool,
                         _ matrix: UnsafePointer<Float>, ld: Int, width: Int,
                         rows: UnsafePointer<Int32>, weights: UnsafePointer<Float>, count: Int) {
    for k in 0..<width {
        var total = accumulate ? Double(out[k]) : 0
        for j in 0..<count { total += Double(weights[j]) * Double(matrix[Int(rows[j]) * ld + k]) }
        out[k] = Float(total)
    }
}

// From Eigen.swift.
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

// From LinearReLU.swift.
/// The reference, by the definition in double, with the ReLU layer's max(v, 0).
func linearReLUNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                     _ b: UnsafePointer<Float>, batch n: Int, inputs: Int, outputs: Int, relu: Bool) {
    for s in 0..<n {
        for o in 0..<outputs {
            var v = Double(b[o])
            for k in 0..<inputs { v += Double(x[s * inputs + k]) * Double(w[o * inputs + k]) }
            y[s * outputs + o] = relu ? max(Float(v), 0) : Float(v)
        }
    }
}

// From DirectConvolution.swift.
/// The reference for both, by the definition, in double.
func conv5x5Naive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                  _ b: UnsafePointer<Float>, _ g: ConvGeometry, outChannels: Int) {
    let C = g.channels, H = g.height, W = g.width, OH = g.outH, OW = g.outW
    for oc in 0..<outChannels {
        for i in 0..<OH {
            for j in 0..<OW {
                var s = Double(b[oc])
                for c in 0..<C {
                    for kh in 0..<5 {
                        for kw in 0..<5 {
                            s += Double(w[((oc * C + c) * 5 + kh) * 5 + kw]) * Double(x[(c * H + i + kh) * W + j + kw])
                        }
                    }
                }
                y[(oc * OH + i) * OW + j] = Float(s)
            }
        }
    }
}

// From DirectConvolution.swift.
/// `conv5x5WeightGradient` by the definition, in double.
func conv5x5WeightGradientNaive(_ dw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                _ g: ConvGeometry, outChannels: Int) {
    let C = g.channels, H = g.height, W = g.width, OH = g.outH, OW = g.outW
    for oc in 0..<outChannels {
        for c in 0..<C {
            for kh in 0..<5 {
                for kw in 0..<5 {
                    var s = 0.0
                    for i in 0..<OH {
                        for j in 0..<OW { s += Double(dy[(oc * OH + i) * OW + j]) * Double(x[(c * H + i + kh) * W + j + kw]) }
                    }
                    dw[((oc * C + c) * 5 + kh) * 5 + kw] += Float(s)
                }
            }
        }
    }
}

// From ConvPoolReLU.swift.
/// `packChannelsLast` element by element, the reference.
func packChannelsLastNaive(_ packed: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, outChannels OC: Int, patch K: Int) {
    for oc in 0..<OC {
        let row = w + oc &* K
        for k in 0..<K { packed[k &* OC &+ oc] = row[k] }
    }
}

// From ConvPoolReLU.swift.
/// The reference, by the definition in double: the convolution of w (OC, C, K, K),
/// then the 2×2 max, the bias and the ReLU.
func convPoolReLUNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                       _ b: UnsafePointer<Float>, _ g: ConvGeometry, outChannels: Int) {
    let C = g.channels, H = g.height, W = g.width, K = g.kernelH, PH = g.outH / 2, PW = g.outW / 2
    for oc in 0..<outChannels {
        for py in 0..<PH {
            for px in 0..<PW {
                var best = -Double.infinity
                for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    var s = Double(b[oc])
                    for c in 0..<C {
                        for kh in 0..<K {
                            for kw in 0..<K {
                                s += Double(w[((oc * C + c) * K + kh) * K + kw])
                                    * Double(x[(c * H + 2 * py + i + kh) * W + 2 * px + j + kw])
                            }
                        }
                    }
                    best = max(best, s)
                }
                y[(oc * PH + py) * PW + px] = Float(max(best, 0))
            }
        }
    }
}

// From DirectConvolution.swift.
/// `conv5x5Backward`'s input gradient by the definition, in double:
/// dx[c, u, v] = Σ dy[oc, u − kh, v − kw]·w[oc, c, kh, kw] over the pairs
/// `connected` marks (nil: all) and the kernel positions inside dy.
func conv5x5InputGradientNaive(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                               _ g: ConvGeometry, outChannels: Int, connected: [UInt8]?) {
    let C = g.channels, H = g.height, W = g.width, OH = g.outH, OW = g.outW
    for c in 0..<C {
        for u in 0..<H {
            for v in 0..<W {
                var s = 0.0
                for oc in 0..<outChannels where connected.map({ $0[oc * C + c] != 0 }) ?? true {
                    for kh in 0..<5 where u - kh >= 0 && u - kh < OH {
                        for kw in 0..<5 where v - kw >= 0 && v - kw < OW {
                            s += Double(dy[(oc * OH + u - kh) * OW + v - kw]) * Double(w[((oc * C + c) * 5 + kh) * 5 + kw])
                        }
                    }
                }
                dx[(c * H + u) * W + v] = Float(s)
            }
        }
    }
}

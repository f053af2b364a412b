import CKernels
import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Winograd's F(2×2, 5×5) conv + pool + ReLU kernels (Kernels/Winograd.swift)
/// against the convolution computed in double, within the bound
/// docs/WINOGRAD.md derives; and the inference path's choice of them.
struct WinogradTests {
    /// The transforms' matrices (docs/WINOGRAD.md): the naive reference the
    /// bound is computed with.
    static let G: [[Double]] = [[1.0 / 4, 0, 0, 0, 0], [1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6],
                                [1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6],
                                [1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3],
                                [1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3], [0, 0, 0, 0, 1]]
    static let BT: [[Double]] = [[4, 0, -5, 0, 1, 0], [0, 4, 4, -1, -1, 0], [0, -4, 4, 1, -1, 0],
                                 [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
    static let AT: [[Double]] = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1]]

    /// L·X·Rᵀ for small dense matrices.
    static func sandwich(_ L: [[Double]], _ X: [[Double]], _ R: [[Double]]) -> [[Double]] {
        let LX = L.map { row in (0..<X[0].count).map { j in zip(row, X).reduce(0) { $0 + $1.0 * $1.1[j] } } }
        return LX.map { row in R.map { r in zip(row, r).reduce(0) { $0 + $1.0 * $1.1 } } }
    }

    /// The exact result in double, y (OC, PH, PW) = relu(maxpool2x2(w ⋆ x + b)),
    /// and each output's error bound: the kernel's Ŷ for a tile's four
    /// outputs is within γ(C + 11)·[|Aᵀ| (Σ_c |G||g_c||Gᵀ| ⊙ |Bᵀ||d_c||B|) |A|]
    /// of Y (the weights' transform rounds once, the input transform twice
    /// per 1-D pass, the product chain C times, the output transform three
    /// times per pass); the max moves no error further, the bias adds one
    /// rounding of the result, the ReLU none.
    static func reference(x: [Float], w: [Float], b: [Float], C: Int, H: Int, W: Int, OC: Int)
        -> (y: [Double], bound: [Double]) {
        let PH = (H - 4) / 2, PW = (W - 4) / 2
        let u = Double(Float.ulpOfOne) / 2, n = Double(C + 11), gamma = n * u / (1 - n * u)
        let absG = G.map { $0.map(abs) }, absBT = BT.map { $0.map(abs) }, absAT = AT.map { $0.map(abs) }
        // |G||g||Gᵀ| per (oc, c).
        let weightMagnitude: [[[[Double]]]] = (0..<OC).map { oc in
            (0..<C).map { c in
                let g = (0..<5).map { k in (0..<5).map { l in abs(Double(w[((oc * C + c) * 5 + k) * 5 + l])) } }
                return sandwich(absG, g, absG)
            }
        }
        var y = [Double](repeating: 0, count: OC * PH * PW), bound = y
        for py in 0..<PH {
            for px in 0..<PW {
                // |Bᵀ||d||B| per input channel for this tile.
                let inputMagnitude: [[[Double]]] = (0..<C).map { c in
                    let d = (0..<6).map { i in (0..<6).map { j in abs(Double(x[(c * H + 2 * py + i) * W + 2 * px + j])) } }
                    return sandwich(absBT, d, absBT)
                }
                for oc in 0..<OC {
                    var S = [[Double]](repeating: [Double](repeating: 0, count: 6), count: 6)
                    for c in 0..<C { for a in 0..<6 { for e in 0..<6 { S[a][e] += weightMagnitude[oc][c][a][e] * inputMagnitude[c][a][e] } } }
                    let magnitude = sandwich(absAT, S, absAT).joined().max() ?? 0
                    var best = -Double.infinity
                    for i in 0..<2 {
                        for j in 0..<2 {
                            var sum = 0.0
                            for c in 0..<C {
                                for k in 0..<5 {
                                    for l in 0..<5 {
                                        sum += Double(w[((oc * C + c) * 5 + k) * 5 + l]) * Double(x[(c * H + 2 * py + i + k) * W + 2 * px + j + l])
                                    }
                                }
                            }
                            best = max(best, sum)
                        }
                    }
                    let value = max(best + Double(b[oc]), 0)
                    let o = (oc * PH + py) * PW + px
                    y[o] = value
                    let convolution = gamma * magnitude
                    bound[o] = convolution * (1 + u) + u * (value + convolution)
                }
            }
        }
        return (y, bound)
    }

    /// The CIFAR LeNet's conv2 (16 → 32 on 14×14), odd sizes whose last row
    /// and column the pool drops, a group of 8 channels past the 16s, and
    /// input channels that do not fill a vector.
    let shapes: [(C: Int, H: Int, W: Int, OC: Int)] = [(16, 14, 14, 32), (9, 13, 11, 8), (8, 10, 12, 48),
                                                       (20, 16, 17, 48), (12, 6, 6, 16)]

    @Test(.enabled(if: CPUFeatures.avx2FMA, "the Winograd kernel needs AVX2 and FMA"))
    func testKernelIsWithinTheDerivedBound() throws {
        for s in shapes {
            let g = ConvGeometry(channels: s.C, height: s.H, width: s.W, kernelH: 5, kernelW: 5)
            let wide = CPUFeatures.avx512F && s.OC % 16 == 0
            #expect(winogradFits(g, outChannels: s.OC) == (wide ? s.C >= 8 && s.C * s.OC >= 384 : s.C >= 6), "\(s)")
            let x = FixedValues.values(s.C * s.H * s.W, salt: 41, bound: 1)
            let w = FixedValues.values(s.OC * s.C * 25, salt: 42, bound: 0.2)
            let b = FixedValues.values(s.OC, salt: 43, bound: 0.5)
            let PH = g.outH / 2, out = s.OC * PH * (g.outW / 2)
            var U = [Float](repeating: .nan, count: winogradWeightFloats(g, outChannels: s.OC))
            winogradWeights(&U, w, channels: s.C, outChannels: s.OC)
            var scratch = [Float](repeating: .nan, count: winogradScratchFloats(g, outChannels: s.OC))
            var y = [Float](repeating: .nan, count: out)
            winogradPoolReLU(&y, x, transformed: U, b, g, outChannels: s.OC, pooledRows: 0..<PH, scratch: &scratch)
            let (exact, bound) = Self.reference(x: x, w: w, b: b, C: s.C, H: s.H, W: s.W, OC: s.OC)
            for o in 0..<out {
                let error = abs(Double(y[o]) - exact[o])
                #expect(error <= bound[o], "\(s) output \(o): \(y[o]) against \(exact[o]), bound \(bound[o])")
            }
            if s.H > 6 { #expect(y.contains(0) && y.contains { $0 > 0 }, "\(s): the ReLU should both cut and pass") }

            // The same rows in two calls (a sample split across threads) give the same bits.
            var split = [Float](repeating: .nan, count: out)
            winogradPoolReLU(&split, x, transformed: U, b, g, outChannels: s.OC, pooledRows: 0..<PH / 2, scratch: &scratch)
            winogradPoolReLU(&split, x, transformed: U, b, g, outChannels: s.OC, pooledRows: PH / 2..<PH, scratch: &scratch)
            #expect(split.map(\.bitPattern) == y.map(\.bitPattern), "\(s): rows computed in two calls")

            // The AVX2 and AVX-512 kernels run the same operations per lane:
            // the same bits where the CPU has both.
            if lenet_has_avx512f() != 0 && s.OC % 16 == 0 {
                var narrow = [Float](repeating: .nan, count: out), wide = narrow
                var large = [Float](repeating: .nan, count: s.H * s.W * 48 + 36 * (g.outW / 2) * (48 + s.OC) + 6 * s.W * 48)
                lenet_winograd_f2x5_pool_relu_avx2(&narrow, x, U, b, s.C, s.H, s.W, s.OC, 0, PH, &large)
                lenet_winograd_f2x5_pool_relu_avx512(&wide, x, U, b, s.C, s.H, s.W, s.OC, 0, PH, &large)
                #expect(wide.map(\.bitPattern) == narrow.map(\.bitPattern), "\(s): AVX-512 against AVX2")
            }
        }
    }

    /// `allowsWinograd` picks the path at the next reserve, for the network
    /// and for the replicas an evaluation runs its parts on: false runs
    /// conv2 directly, true again gives the first logits bit for bit.
    /// A plane whose gather offsets would overflow 32 bits is left to the direct kernel.
    @Test(.enabled(if: CPUFeatures.avx2FMA, "the Winograd kernel needs AVX2 and FMA"))
    func testHugePlanesAreNotWinograds() {
        let side = 11_586  // side² · 16 > 2³¹
        #expect(winogradFits(ConvGeometry(channels: 16, height: 64, width: 64, kernelH: 5, kernelW: 5), outChannels: 32))
        #expect(!winogradFits(ConvGeometry(channels: 16, height: side, width: side, kernelH: 5, kernelW: 5), outChannels: 32))
    }

    @Test(.enabled(if: CPUFeatures.avx2FMA, "the Winograd kernel needs AVX2 and FMA"))
    func testTheSwitchChoosesThePath() throws {
        let net = try Models.cifarLeNet(seed: 3)
        let n = 4, x = FixedValues.values(n * net.inputShape.count, salt: 44, bound: 1)
        func run() throws -> (kinds: [String], logits: [Float]) {
            _ = try net.input(batch: n).update(fromContentsOf: x)
            let y = net.infer(batch: n)
            return (net.inferenceSteps.map(\.kind), Array(UnsafeBufferPointer(start: y, count: n * 10)))
        }
        let winograd = try run()
        net.allowsWinograd = false
        let direct = try run()
        net.allowsWinograd = true
        let again = try run()
        #expect(winograd.kinds[1] == "Winograd conv+pool+ReLU")
        #expect(direct.kinds[1] == "fused conv+pool+ReLU")
        #expect(again.logits == winograd.logits)
        #expect(direct.logits != winograd.logits, "the two paths round differently")
        let fresh = try Models.cifarLeNet(seed: 3)
        fresh.allowsWinograd = false
        _ = try fresh.input(batch: n).update(fromContentsOf: x)
        #expect(Array(UnsafeBufferPointer(start: fresh.infer(batch: n), count: n * 10)) == direct.logits)

        // An evaluation on 2 threads (a replica runs the second part) follows the switch.
        let images = (0..<64 * 3 * 32 * 32).map { UInt8(truncatingIfNeeded: FixedValues.mix($0, 45)) }
        let data = try ImageDataset(name: "noise", channels: 3, height: 32, width: 32, images: images,
                                labels: (0..<64).map { UInt8($0 % 10) }, classNames: (0..<10).map(String.init))
        func evaluate(_ allows: Bool) throws -> [Float] {
            net.allowsWinograd = allows
            return try net.evaluate(on: data, normalization: .half, batchSize: 64, threads: 2, keepsLogits: true).logits
        }
        let viaWinograd = try evaluate(true), viaDirect = try evaluate(false)
        fresh.allowsWinograd = false
        #expect(viaDirect == (try fresh.evaluate(on: data, normalization: .half, batchSize: 64, threads: 2, keepsLogits: true).logits))
        #expect(viaWinograd != viaDirect)
    }
}

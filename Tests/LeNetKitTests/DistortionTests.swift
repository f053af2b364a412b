import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Random planar affine distortions (LeCun et al. 1998): reproducible draws,
/// the ink kept inside the field, the mass the interpolation keeps, the
/// identity, the ranges drawn and the ones refused.
struct DistortionTests {
    // MARK: - Helpers

    /// A 1-channel dataset of H×W images, one label each.
    func dataset(_ images: [[UInt8]], height: Int = 32, width: Int = 32) throws -> ImageDataset {
        try ImageDataset(name: "digits", channels: 1, height: height, width: width, images: images.flatMap { $0 },
                         labels: [UInt8](repeating: 0, count: images.count), classNames: ["only"])
    }

    /// Mean 0, std 1 per channel: each float is byte / 255.
    static func identityNormalization(channels: Int = 1) throws -> Normalization {
        try Normalization(mean: [Float](repeating: 0, count: channels), std: [Float](repeating: 1, count: channels))
    }

    /// The floats of `fill(batch:normalization:augmentation:…)` over `indices`
    /// (all images by default), or of the plain fill with `augmentation` nil.
    func filled(_ data: ImageDataset, _ augmentation: Augmentation?, normalization: Normalization,
                seed: UInt64 = 3, epoch: Int = 0, indices: [Int]? = nil) -> [Float] {
        let batch = indices ?? Array(0..<data.count)
        var x = [Float](repeating: .nan, count: batch.count * data.imageSize)  // (n, C, H, W)
        var y = [Int32](repeating: -1, count: batch.count)  // (n)
        x.withUnsafeMutableBufferPointer { xs in
            y.withUnsafeMutableBufferPointer { ys in
                guard let xs = xs.baseAddress, let ys = ys.baseAddress else { return }
                if let augmentation {
                    data.fill(batch: batch, normalization: normalization, augmentation: augmentation,
                              seed: seed, epoch: epoch, into: xs, labels: ys)
                } else {
                    data.fill(batch: batch, normalization: normalization, into: xs, labels: ys)
                }
            }
        }
        return x
    }

    /// A 32×32 image with `value(row, column)` inside, black elsewhere.
    static func image(_ value: (Int, Int) -> UInt8) -> [UInt8] {
        (0..<32 * 32).map { value($0 / 32, $0 % 32) }
    }

    /// Synthetic digits whose ink touches every side of the 20×20 box
    /// (rows and columns 6...25) that MNIST's digits fill in a 32×32 field,
    /// and the worst cases for the fit: ink only at the box's four corners,
    /// the box filled, a digit shoved into the field's corner, and ink
    /// everywhere (a photograph rather than a digit).
    static let digits: [(name: String, bytes: [UInt8])] = [
        ("zero", image { r, c in
            let d = pow((Double(c) - 15.5) / 9.5, 2) + pow((Double(r) - 15.5) / 9.5, 2)
            return abs(d - 1) <= 0.12 ? 255 : abs(d - 1) <= 0.25 ? 110 : 0
        }),
        ("seven", image { r, c in
            if r == 6 || r == 7, (6...25).contains(c) { return 255 }
            let stroke = 25.0 - Double(r - 8) * 19.0 / 17.0  // from (8, 25) down to (25, 6)
            return r >= 8 && r <= 25 && abs(Double(c) - stroke) <= 1 ? 200 : 0
        }),
        ("one", image { r, c in
            if (6...25).contains(r) && (15...16).contains(c) { return 230 }
            // A foot across the box, so it touches left and right too.
            return r == 25 && (6...25).contains(c) ? 90 : 0
        }),
        ("corners", image { r, c in [6, 25].contains(r) && [6, 25].contains(c) ? 255 : 0 }),
        ("block", image { r, c in (6...25).contains(r) && (6...25).contains(c) ? 255 : 0 }),
        ("cornered", image { r, c in r < 20 && c < 20 && (r + c) % 3 != 0 ? 180 : 0 }),
        ("full", (0..<32 * 32).map { UInt8(1 + FixedValues.mix($0, 9) % 255) }),
    ]

    /// The rows and columns of `bytes` (32×32) that hold ink.
    static func inkBox(_ bytes: [UInt8], height: Int = 32, width: Int = 32) -> (rows: ClosedRange<Int>, columns: ClosedRange<Int>)? {
        let ink = bytes.indices.filter { bytes[$0] > 0 }
        guard let top = ink.map({ $0 / width }).min(), let bottom = ink.map({ $0 / width }).max(),
              let left = ink.map({ $0 % width }).min(), let right = ink.map({ $0 % width }).max() else { return nil }
        return (top...bottom, left...right)
    }

    /// Bilinear resampling written out in Double, the transform inverted by
    /// back-substitution (A is upper triangular): out(p′) = Σ_q S(q)·tent(p − q).
    static func resampled(_ bytes: [UInt8], _ t: AffineDistortion.Transform, height H: Int, width W: Int) -> [Double] {
        let a = t.matrix
        let cx = Double(W - 1) / 2, cy = Double(H - 1) / 2
        func byte(_ r: Int, _ c: Int) -> Double { r >= 0 && r < H && c >= 0 && c < W ? Double(bytes[r * W + c]) : 0 }
        return (0..<H * W).map { i in
            let v = Double(i / W) - cy - Double(t.translationY), u = Double(i % W) - cx - Double(t.translationX)
            let yc = v / Double(a.yy), xc = (u - Double(a.xy) * yc) / Double(a.xx)
            let x = xc + cx, y = yc + cy
            let x0 = x.rounded(.down), y0 = y.rounded(.down)
            let fx = x - x0, fy = y - y0
            let c = Int(x0), r = Int(y0)
            return (1 - fy) * ((1 - fx) * byte(r, c) + fx * byte(r, c + 1)) + fy * ((1 - fx) * byte(r + 1, c) + fx * byte(r + 1, c + 1))
        }
    }

    /// Σ_{m∈ℤ} sinc²(x·m), sinc(u) = sin(πu)/(πu): by Poisson summation
    /// (the Fourier transform of sinc² is the tent max(0, 1 − |ξ|)) it is
    /// (1/x)·Σ_j max(0, 1 − |j|/x), a finite sum: 1/x for x ≤ 1, and 1 at
    /// every whole x.
    static func sincSquaredLatticeSum(_ x: Double) -> Double {
        var sum = 1.0, j = 1.0
        while j < x {
            sum += 2 * (1 - j / x)
            j += 1
        }
        return sum / x
    }

    // MARK: - (a) Reproducible

    @Test func testSameSeedEpochAndIndexGiveTheSameImage() throws {
        let data = try dataset(Array(repeating: Self.digits[0].bytes, count: 24) + Array(repeating: Self.digits[1].bytes, count: 24))
        let normalization = Normalization.half
        for augmentation in [Augmentation(padding: 0, horizontalFlip: false, affine: AffineDistortion()),
                             Augmentation(padding: 2, horizontalFlip: true, affine: AffineDistortion())] {
            let a = filled(data, augmentation, normalization: normalization, seed: 5, epoch: 2)
            let b = filled(data, augmentation, normalization: normalization, seed: 5, epoch: 2)
            #expect(a.map(\.bitPattern) == b.map(\.bitPattern), "the same (seed, epoch, index) must give the same bits")
            // Any order and any subset: image 30 alone is row 30 of the whole batch.
            let alone = filled(data, augmentation, normalization: normalization, seed: 5, epoch: 2, indices: [30, 7])
            let size = data.imageSize
            #expect(Array(alone[0..<size]).map(\.bitPattern) == Array(a[30 * size..<31 * size]).map(\.bitPattern))
            #expect(Array(alone[size...]).map(\.bitPattern) == Array(a[7 * size..<8 * size]).map(\.bitPattern))
            // Another epoch or seed distorts every copy differently.
            let nextEpoch = filled(data, augmentation, normalization: normalization, seed: 5, epoch: 3)
            let otherSeed = filled(data, augmentation, normalization: normalization, seed: 6, epoch: 2)
            for i in 0..<data.count {
                #expect(a[i * size..<(i + 1) * size] != nextEpoch[i * size..<(i + 1) * size], "image \(i), epoch 3")
                #expect(a[i * size..<(i + 1) * size] != otherSeed[i * size..<(i + 1) * size], "image \(i), seed 6")
            }
            // Copies of one digit get different draws within an epoch.
            #expect(a[0..<size] != a[size..<2 * size])
        }
        let d = AffineDistortion()
        #expect(d.transform(seed: 5, epoch: 2, index: 9) == d.transform(seed: 5, epoch: 2, index: 9))
        #expect(d.transform(seed: 5, epoch: 2, index: 9) != d.transform(seed: 5, epoch: 3, index: 9))
    }

    // MARK: - (b) The ink stays inside, and its mass is kept within a derived bound

    @Test(arguments: DistortionTests.digits.map(\.name))
    func testInkStaysInsideTheFieldAndKeepsItsMass(digit: String) throws {
        let bytes = try #require(Self.digits.first { $0.name == digit }?.bytes)
        let ink = try #require(Self.inkBox(bytes))
        let n = 400
        let data = try dataset(Array(repeating: bytes, count: n))
        let distortion = AffineDistortion()
        let augmentation = Augmentation(padding: 0, horizontalFlip: false, affine: distortion)
        let out = filled(data, augmentation, normalization: try Self.identityNormalization(), seed: 17, epoch: 4)
        let mass = bytes.reduce(0.0) { $0 + Double($1) }
        let inkPixels = bytes.indices.filter { bytes[$0] > 0 }
        var clamped = 0
        for i in 0..<n {
            let drawn = distortion.transform(seed: 17, epoch: 4, index: i)
            let t = drawn.fitted(inkRows: ink.rows, inkColumns: ink.columns, height: 32, width: 32)
            if t.translationX != drawn.translationX || t.translationY != drawn.translationY { clamped += 1 }
            if ["zero", "seven", "one", "corners", "block"].contains(digit) {
                // In the 20×20 box the widest A fits unshifted: only the shift is ever cut.
                #expect(t.scale == drawn.scale && t.squeeze == drawn.squeeze && t.shear == drawn.shear, "draw \(i)")
                #expect(abs(t.translationX) <= abs(drawn.translationX) && abs(t.translationY) <= abs(drawn.translationY))
            }
            // Every ink pixel's centre lands inside the field's pixels …
            for q in inkPixels {
                let p = t.forward(x: Float(q % 32), y: Float(q / 32), height: 32, width: 32)
                #expect(p.x >= -0.5 && p.x <= 31.5 && p.y >= -0.5 && p.y <= 31.5, "draw \(i): ink (\(q / 32), \(q % 32)) lands at \(p)")
            }
            // … and the footprint (the box grown by the bilinear kernel's
            // reach, one pixel) inside [−1, 32]², so no weight falls outside.
            for (r, c) in [(ink.rows.lowerBound - 1, ink.columns.lowerBound - 1), (ink.rows.lowerBound - 1, ink.columns.upperBound + 1),
                           (ink.rows.upperBound + 1, ink.columns.lowerBound - 1), (ink.rows.upperBound + 1, ink.columns.upperBound + 1)] {
                let p = t.forward(x: Float(c), y: Float(r), height: 32, width: 32)
                #expect(p.x >= -1.001 && p.x <= 32.001 && p.y >= -1.001 && p.y <= 32.001, "draw \(i): footprint corner at \(p)")
            }
            // The fill resamples with exactly this fitted transform.
            let image = out[i * 1024..<(i + 1) * 1024].map { Double($0) * 255 }
            let reference = Self.resampled(bytes, t, height: 32, width: 32)
            let error = zip(image, reference).map { abs($0 - $1) }.max() ?? .infinity
            #expect(error <= 0.02, "draw \(i): \(error) bytes from the Double reference")

            // The mass bound. Output pixel p′ reads the source at
            // s(p′) = A⁻¹(p′ − c − t) + c, so source pixel q gives the
            // output its byte times w(q) = Σ_{p′∈ℤ²} K(s(p′) − q), with K the
            // bilinear kernel tent(x)·tent(y). The fit keeps every p′ with
            // K > 0 inside the field, so the output's mass is Σ_q S(q)·w(q).
            // Poisson summation over the lattice s(ℤ²), whose dual is Aᵀℤ²:
            //   w(q) = |det A| · Σ_{m∈ℤ²} K̂(Aᵀm)·e^{2πi⟨·⟩},  K̂(ξ) = sinc²(ξ₁)·sinc²(ξ₂),
            // and the m = 0 term is |det A|: so |w(q) − |det A|| ≤ |det A|·ε with
            //   ε = Σ_{m≠0} sinc²(xx·m₁)·sinc²(xy·m₁ + yy·m₂)     (A = [xx xy; 0 yy])
            //     ≤ (T(yy) − 1) + T(yy)·(T(xx) − 1),   T(x) = Σ_m sinc²(x·m),
            // splitting off m₁ = 0 and bounding each inner sum over m₂ by T(yy)
            // (a shifted lattice sum of sinc², again by Poisson). Bytes are ≥ 0,
            // so |mass′ − |det A|·mass| ≤ |det A|·ε·mass. At whole scale
            // factors ε = 0: the identity keeps mass exactly. The bound drops
            // the phases e^{2πi⟨·⟩}, which cancel over a digit's many pixels,
            // so it is loose (ε reaches about 0.25 for the default ranges, at
            // σ(1 ± s) = 0.81 on one axis), but it is a bound.
            let a = t.matrix
            let det = Double(abs(a.xx * a.yy - a.xy * a.yx))
            let tx = Self.sincSquaredLatticeSum(Double(abs(a.xx))), ty = Self.sincSquaredLatticeSum(Double(abs(a.yy)))
            let epsilon = (ty - 1) + ty * (tx - 1)
            let distorted = image.reduce(0, +)
            // Float rounding: a few ulps of 255 per pixel.
            let rounding = 1e-4 * mass + 1
            #expect(abs(distorted - det * mass) <= det * epsilon * mass + rounding,
                    "draw \(i): mass \(distorted), |det A|·mass \(det * mass), ε \(epsilon)")
        }
        if digit == "cornered" {
            #expect(clamped > 0, "the fit should have cut some shifts")
        }
    }

    @Test func testShovedDigitsAreShrunkTowardTheIdentity() {
        // A 20×20 digit in the field's corner leaves no room for growth: the
        // fit must cut scale, squeeze and shear, not only the shift.
        let grow = AffineDistortion.Transform(translationX: -2, translationY: -2, scale: 1.1, squeeze: 0.1, shear: 0.15)
        let t = grow.fitted(inkRows: 0...19, inkColumns: 0...19, height: 32, width: 32)
        #expect(t.scale < grow.scale && t.scale >= 1)
        #expect(t.squeeze < grow.squeeze && t.shear < grow.shear)
        for (x, y) in [(0, 0), (19, 0), (0, 19), (19, 19)] {
            let p = t.forward(x: Float(x), y: Float(y), height: 32, width: 32)
            #expect(p.x >= -0.5 && p.y >= -0.5 && p.x <= 31.5 && p.y <= 31.5, "\(p)")
        }
        // Ink across the whole image allows no growth at all, and no shift.
        let full = grow.fitted(inkRows: 0...31, inkColumns: 0...31, height: 32, width: 32)
        #expect(full == .identity)
        // Shrinking always fits, and is kept.
        let shrink = AffineDistortion.Transform(translationX: 0, translationY: 0, scale: 0.9, squeeze: 0, shear: 0)
        #expect(shrink.fitted(inkRows: 0...31, inkColumns: 0...31, height: 32, width: 32) == shrink)
        // Ink outside the image: nothing to fit, the identity.
        #expect(grow.fitted(inkRows: 40...50, inkColumns: 0...3, height: 32, width: 32) == .identity)
    }

    @Test func testABlankImageStaysBlank() throws {
        let data = try dataset(Array(repeating: [UInt8](repeating: 0, count: 1024), count: 20))
        let out = filled(data, Augmentation(padding: 2, affine: AffineDistortion()), normalization: .half)
        #expect(out.allSatisfy { $0 == -1 })
    }

    @Test func testTheCropAndFlipComeFirst() throws {
        // Non-square, so a swapped height and width shows.
        let H = 14, W = 11
        let bytes = (0..<H * W).map { i -> UInt8 in
            let r = i / W, c = i % W
            return (3...10).contains(r) && (2...8).contains(c) ? UInt8(40 + (r * 7 + c * 13) % 200) : 0
        }
        let n = 200
        let data = try dataset(Array(repeating: bytes, count: n), height: H, width: W)
        let augmentation = Augmentation(padding: 3, horizontalFlip: true, affine: AffineDistortion(translation: 3, shear: 0.3))
        let out = filled(data, augmentation, normalization: try Self.identityNormalization(), seed: 8, epoch: 1)
        var flips = 0
        for i in 0..<n {
            // torchvision's crop and flip, written out, then the distortion
            // fitted to the cropped image's ink.
            let crop = augmentation.transform(seed: 8, epoch: 1, index: i)
            if crop.flip { flips += 1 }
            let cropped = (0..<H * W).map { j -> UInt8 in
                let h = j / W, w = crop.flip ? W - 1 - j % W : j % W
                let sh = h + crop.top - 3, sw = w + crop.left - 3
                return sh >= 0 && sh < H && sw >= 0 && sw < W ? bytes[sh * W + sw] : 0
            }
            var t = AffineDistortion(translation: 3, shear: 0.3).transform(seed: 8, epoch: 1, index: i)
            if let ink = Self.inkBox(cropped, height: H, width: W) {
                t = t.fitted(inkRows: ink.rows, inkColumns: ink.columns, height: H, width: W)
            }
            let reference = Self.resampled(cropped, t, height: H, width: W)
            let image = out[i * H * W..<(i + 1) * H * W].map { Double($0) * 255 }
            let error = zip(image, reference).map { abs($0 - $1) }.max() ?? .infinity
            #expect(error <= 0.02, "image \(i), crop \(crop): \(error) bytes from crop-then-distort")
        }
        #expect(flips > 50 && flips < 150)
    }

    // MARK: - (c) The identity distortion is the plain fill

    @Test func testIdentityDistortionIsThePlainFillBitForBit() throws {
        // Two channels of 5×7 with their own mean and std, many black bytes.
        let C = 2, H = 5, W = 7, n = 30
        let bytes = (0..<n * C * H * W).map { i -> UInt8 in
            let v = FixedValues.mix(i, 4) % 400
            return v < 255 ? UInt8(v) : 0
        }
        let data = try ImageDataset(name: "two", channels: C, height: H, width: W, images: bytes,
                                    labels: (0..<n).map { UInt8($0 % 3) }, classNames: ["a", "b", "c"])
        let normalization = try Normalization(mean: [0.4, 0.6], std: [0.2, 0.3])
        let identity = AffineDistortion.unchanged
        #expect(identity == AffineDistortion(translation: 0, minimumScale: 1, maximumScale: 1, squeeze: 0, shear: 0))
        let plain = filled(data, nil, normalization: normalization)
        let distorted = filled(data, Augmentation(padding: 0, horizontalFlip: false, affine: identity), normalization: normalization)
        #expect(distorted.map(\.bitPattern) == plain.map(\.bitPattern))
        // With a crop and flip: the same bits as the crop and flip alone.
        for seed in [UInt64(1), 2, 3] {
            let cropped = filled(data, Augmentation(padding: 2, horizontalFlip: true), normalization: normalization, seed: seed)
            let both = filled(data, Augmentation(padding: 2, horizontalFlip: true, affine: identity), normalization: normalization, seed: seed)
            #expect(both.map(\.bitPattern) == cropped.map(\.bitPattern), "seed \(seed)")
        }
        #expect((0..<1000).allSatisfy { identity.transform(seed: 9, epoch: 1, index: $0) == .identity })
        // Without `affine`, the augmentation is what it always was.
        #expect(Augmentation().affine == nil && Augmentation.cifar == Augmentation(padding: 4, horizontalFlip: true, affine: nil))
    }

    // MARK: - (d) The draws cover the configured ranges

    @Test(arguments: [AffineDistortion(), AffineDistortion(translation: 3.5, minimumScale: 1, maximumScale: 1.3, squeeze: 0.3, shear: 0.5)])
    func testDrawsStayInTheirRangesAndCoverBothSigns(distortion d: AffineDistortion) {
        let draws = (0..<20_000).map { d.transform(seed: 21, epoch: 6, index: $0) }
        func check(_ name: String, _ values: [Float], _ low: Float, _ high: Float) {
            guard let least = values.min(), let most = values.max() else { return }
            #expect(least >= low && most <= high, "\(name) drawn in \(least)...\(most), configured \(low)...\(high)")
            // Within 1% of each end: 20 000 uniform draws miss that with probability about e⁻²⁰⁰.
            let slack = 0.01 * (high - low)
            #expect(least <= low + slack && most >= high - slack, "\(name) drawn only in \(least)...\(most)")
            // Balanced about the middle, to about 4 standard deviations.
            let middle = (low + high) / 2
            let above = values.filter { $0 > middle }.count
            #expect(abs(above - values.count / 2) <= 300, "\(name): \(above) of \(values.count) above \(middle)")
        }
        check("translationX", draws.map(\.translationX), -d.translation, d.translation)
        check("translationY", draws.map(\.translationY), -d.translation, d.translation)
        check("scale", draws.map(\.scale), d.minimumScale, d.maximumScale)
        check("squeeze", draws.map(\.squeeze), -d.squeeze, d.squeeze)
        check("shear", draws.map(\.shear), -d.shear, d.shear)
        // Independent of each other: the two shifts' signs agree half the time.
        let agree = draws.filter { ($0.translationX > 0) == ($0.translationY > 0) }.count
        #expect(abs(agree - draws.count / 2) <= 300)
        // And of the crop's draw for the same image: the shift's sign and
        // the crop's side agree half the time.
        let sided = zip(draws, (0..<20_000).map { Augmentation.cifar.transform(seed: 21, epoch: 6, index: $0) })
            .filter { $0.1.left != 4 }
        let same = sided.filter { ($0.0.translationX > 0) == ($0.1.left > 4) }.count
        #expect(abs(same - sided.count / 2) <= 300, "\(same) of \(sided.count)")
    }

    // MARK: - (e) Bad ranges are refused

    struct BadCase: Sendable, CustomTestStringConvertible {
        var distortion: AffineDistortion
        var field: String
        var says: String
        var testDescription: String { "\(field): \(says)" }
    }

    static let badCases: [BadCase] = [
        BadCase(distortion: AffineDistortion(translation: -1), field: "translation", says: "-1.0"),
        BadCase(distortion: AffineDistortion(translation: .nan), field: "translation", says: "nan"),
        BadCase(distortion: AffineDistortion(translation: 40), field: "translation", says: "0.0...32.0 pixels"),
        BadCase(distortion: AffineDistortion(minimumScale: 0.25), field: "minimumScale", says: "0.5...2.0"),
        BadCase(distortion: AffineDistortion(minimumScale: -.infinity), field: "minimumScale", says: "-inf"),
        BadCase(distortion: AffineDistortion(maximumScale: 3), field: "maximumScale", says: "got 3.0"),
        BadCase(distortion: AffineDistortion(maximumScale: .infinity), field: "maximumScale", says: "inf"),
        BadCase(distortion: AffineDistortion(minimumScale: 1.2, maximumScale: 1.1), field: "minimumScale", says: "at most maximumScale 1.1"),
        BadCase(distortion: AffineDistortion(squeeze: -0.1), field: "squeeze", says: "0.0...0.5"),
        BadCase(distortion: AffineDistortion(squeeze: 0.7), field: "squeeze", says: "got 0.7"),
        BadCase(distortion: AffineDistortion(shear: .nan), field: "shear", says: "nan"),
        BadCase(distortion: AffineDistortion(shear: 1.5), field: "shear", says: "0.0...1.0"),
    ]

    @Test(arguments: DistortionTests.badCases)
    func testBadRangesAreRefusedWithTheFieldNamed(_ bad: BadCase) {
        assertError("AffineDistortion.\(bad.field)", bad.says) { try bad.distortion.validate() }
        // Through the augmentation, as the trainer checks it.
        assertError("AffineDistortion.\(bad.field)", bad.says) {
            try Augmentation(padding: 0, horizontalFlip: false, affine: bad.distortion).validate(height: 32, width: 32)
        }
    }

    @Test func testGoodRangesAreAccepted() throws {
        try AffineDistortion().validate()
        try AffineDistortion.unchanged.validate()
        try AffineDistortion(translation: 32, minimumScale: 0.5, maximumScale: 2, squeeze: 0.5, shear: 1).validate()
        try Augmentation(padding: 4, affine: AffineDistortion()).validate(height: 32, width: 32)
    }
}

// Random planar affine distortions of training images, as LeCun, Bottou,
// Bengio and Haffner trained LeNet-5 in "Gradient-based learning applied to
// document recognition" (1998): every presentation of a training digit is a
// fresh combination of horizontal and vertical translation, scaling,
// squeezing and horizontal shearing. The paper names the kinds of
// distortion, not their ranges; the defaults here are chosen for MNIST.
//
// The design is `Augmentation`'s: each image's distortion is a hash of
// (seed, epoch, image index), so a seed fixes the run and a resumed run
// distorts the next epoch exactly as an uninterrupted one, with nothing
// saved; and it is applied while the batch is copied from bytes to floats,
// allocating nothing.

/// The ranges of a random planar affine distortion, one fresh draw per image
/// and epoch.
///
/// In coordinates centred on the image's centre (x right, y down), a source
/// point (x, y) moves to
/// ```
/// x′ = σ·(1 + s)·(x + k·y) + tx
/// y′ = σ·(1 − s)·y         + ty
/// ```
/// with the shifts tx, ty uniform in ±`translation`, the scale σ uniform in
/// `minimumScale`...`maximumScale`, the squeeze s uniform in ±`squeeze`
/// (s > 0 widens and flattens, s < 0 narrows and elongates) and the
/// horizontal shear k uniform in ±`shear` (the slant of handwriting: with
/// k > 0, lower rows move further right).
///
/// The defaults suit MNIST as the dataset loader gives it to LeNet-5: a digit
/// normalized to a 20×20 box, centred by its centre of mass in 28×28 and
/// padded with black to 32×32, so about 6 pixels of black surround it. The
/// widest combination of the default scale, squeeze and shear
/// (σ(1 + s) = 1.21, k = 0.15) stretches a 20×20 digit's bilinear footprint
/// over 29.2 of the 33 pixels it may span (see the fit), leaving ±1.9 for
/// the shift; the fit takes back the rest.
///
/// The digit stays inside the field: each drawn transform is fitted to the
/// image's ink (bytes > 0) before resampling; see
/// `Transform.fitted(inkRows:inkColumns:height:width:)`.
public struct AffineDistortion: Sendable, Equatable {
    /// The largest shift each way, horizontally and vertically, in pixels (0...32).
    ///
    /// Default 2: centring by centre of mass leaves MNIST digits a pixel or
    /// two off their box's centre, so a reader has seen such shifts, and a
    /// 2-pixel shift of a 20-pixel digit stays inside the 6-pixel margin.
    public var translation: Float
    /// The smallest scale factor (0.5...2, at most `maximumScale`).
    ///
    /// Default 0.9: MNIST scales each digit's larger side to 20 pixels, so
    /// sizes differ only through the other side and the stroke; ±10% (±2
    /// pixels on 20) is a change of size a reader does not notice, and as
    /// large as the shift.
    public var minimumScale: Float
    /// The largest scale factor (0.5...2, at least `minimumScale`).
    ///
    /// Default 1.1: a 22-pixel digit still leaves a 5-pixel margin in 32.
    public var maximumScale: Float
    /// The largest squeeze each way (0...0.5): x scaled by 1 + s and y by 1 − s.
    ///
    /// Default 0.1: MNIST's normalization keeps each digit's aspect ratio, so
    /// narrow and wide handwriting differ in exactly that; ±0.1 changes the
    /// width-to-height ratio by up to about ±20%, and a "0" stays a "0".
    public var squeeze: Float
    /// The largest horizontal shear each way (0...1): x += k·y.
    ///
    /// Default 0.15, a slant of about ±8.5°: the top and bottom of a
    /// 20-pixel-tall digit move 3 pixels apart, as far as the other
    /// distortions move things, and a "1" does not lean into a "7".
    public var shear: Float

    /// - Parameters:
    ///   - translation: the largest shift each way in pixels.
    ///   - minimumScale: the smallest scale factor.
    ///   - maximumScale: the largest scale factor.
    ///   - squeeze: the largest squeeze each way.
    ///   - shear: the largest horizontal shear each way.
    public init(translation: Float = 2, minimumScale: Float = 0.9, maximumScale: Float = 1.1,
                squeeze: Float = 0.1, shear: Float = 0.15) {
        self.translation = translation
        self.minimumScale = minimumScale
        self.maximumScale = maximumScale
        self.squeeze = squeeze
        self.shear = shear
    }

    /// No distortion at all: every draw is the identity.
    static let unchanged = AffineDistortion(translation: 0, minimumScale: 1, maximumScale: 1, squeeze: 0, shear: 0)

    /// Checks that every range is finite and sensible.
    ///
    /// The limits catch mistakes, not taste: below scale 0.5 (or beyond
    /// squeeze 0.5) bilinear sampling steps over whole source pixels, so thin
    /// strokes can vanish; above scale 2 a digit overfills any field and the
    /// fit shrinks it back anyway; a shear of 1 is already a 45° slant; and a
    /// shift beyond a LeNet-5 input's whole 32 pixels cannot be meant.
    /// - Throws: `LeNetError` with subject `AffineDistortion.<field>` and the bad value.
    func validate() throws {
        func check(_ value: Float, _ range: ClosedRange<Float>, _ field: String, _ unit: String = "") throws {
            guard value.isFinite, range.contains(value) else {
                throw LeNetError("must be in \(range.lowerBound)...\(range.upperBound)\(unit), got \(value)",
                                 subject: "AffineDistortion.\(field)")
            }
        }
        try check(translation, 0...32, "translation", " pixels")
        try check(minimumScale, 0.5...2, "minimumScale")
        try check(maximumScale, 0.5...2, "maximumScale")
        guard minimumScale <= maximumScale else {
            throw LeNetError("must be at most maximumScale \(maximumScale), got \(minimumScale)",
                             subject: "AffineDistortion.minimumScale")
        }
        try check(squeeze, 0...0.5, "squeeze")
        try check(shear, 0...1, "shear")
    }

    /// The distortion drawn for image `index` in epoch `epoch` (from 0) of a
    /// run seeded with `seed`, before it is fitted to the image's ink: a pure
    /// function of the three. Its hash is salted apart from
    /// `Augmentation.transform`'s, so the crop and the distortion are drawn
    /// independently.
    /// - Parameters:
    ///   - seed: the run's seed.
    ///   - epoch: the epoch, from 0.
    ///   - index: the image's index in the dataset.
    func transform(seed: UInt64, epoch: Int, index: Int) -> Transform {
        let base = splitMix64(splitMix64(seed ^ 0x5851_F42D_4C95_7F2D)
                              ^ splitMix64(UInt64(truncatingIfNeeded: epoch) &+ 0x1405_7B7E_F767_814F)
                              &+ UInt64(truncatingIfNeeded: index))
        // Five draws: the first five values of SplitMix64's sequence from
        // `base`, each a Float in [0, 1) from its top 24 bits.
        func unit(_ k: UInt64) -> Float {
            Float(splitMix64(base &+ k &* 0x9E37_79B9_7F4A_7C15) >> 40) * (1.0 / 16_777_216.0)
        }
        func symmetric(_ bound: Float, _ k: UInt64) -> Float { bound * (2 * unit(k) - 1) }
        return Transform(
            translationX: symmetric(translation, 0),
            translationY: symmetric(translation, 1),
            // min: the product and sum may round to one ulp past the top.
            scale: min(maximumScale, minimumScale + (maximumScale - minimumScale) * unit(2)),
            squeeze: symmetric(squeeze, 3),
            shear: symmetric(shear, 4))
    }

    /// One image's distortion: its parameters, and the map they make.
    ///
    /// With the image's centre c = ((W − 1)/2, (H − 1)/2) in (column, row)
    /// pixel coordinates, a point p of the source moves to
    /// ```
    /// p′ = A·(p − c) + c + t     A = matrix, t = offset
    /// A  = [σ(1 + s)   σ(1 + s)·k]
    ///      [0          σ(1 − s)  ]
    /// ```
    struct Transform: Sendable, Equatable {
        /// The horizontal shift tx in pixels; positive moves the image right.
        var translationX: Float
        /// The vertical shift ty in pixels; positive moves the image down.
        var translationY: Float
        /// The scale factor σ.
        var scale: Float
        /// The squeeze s: x scaled by 1 + s, y by 1 − s.
        var squeeze: Float
        /// The horizontal shear k: x += k·y before scaling.
        var shear: Float

        /// - Parameters: the five parameters, as the properties.
        init(translationX: Float, translationY: Float, scale: Float, squeeze: Float, shear: Float) {
            self.translationX = translationX
            self.translationY = translationY
            self.scale = scale
            self.squeeze = squeeze
            self.shear = shear
        }

        /// The transform that moves nothing.
        static let identity = Transform(translationX: 0, translationY: 0, scale: 1, squeeze: 0, shear: 0)

        /// A, row by row: x′ = xx·x + xy·y, y′ = yx·x + yy·y about the centre.
        var matrix: (xx: Float, xy: Float, yx: Float, yy: Float) {
            let horizontal = scale * (1 + squeeze)
            return (horizontal, horizontal * shear, 0, scale * (1 - squeeze))
        }

        /// t, the shift applied after A.
        var offset: (x: Float, y: Float) { (translationX, translationY) }

        /// Where the point (x, y) (column, row) of an H×W source lands.
        /// - Parameters:
        ///   - x: the column, 0 at the left pixel's centre.
        ///   - y: the row, 0 at the top pixel's centre.
        ///   - height: H.
        ///   - width: W.
        func forward(x: Float, y: Float, height: Int, width: Int) -> (x: Float, y: Float) {
            let cx = Float(width - 1) / 2, cy = Float(height - 1) / 2
            let a = matrix
            let u = x - cx, v = y - cy
            return (a.xx * u + a.xy * v + cx + translationX, a.yx * u + a.yy * v + cy + translationY)
        }

        /// The same kind of distortion, the fraction `lambda` of the way
        /// from the identity to this one.
        func toward(identity lambda: Double) -> Transform {
            let l = Float(lambda)
            return Transform(translationX: l * translationX, translationY: l * translationY,
                             scale: 1 + l * (scale - 1), squeeze: l * squeeze, shear: l * shear)
        }

        /// This transform, changed as little as needed for the ink in
        /// `inkRows` × `inkColumns` of an H×W image to stay inside it.
        ///
        /// Bilinear interpolation spreads a source pixel q over the output
        /// pixels whose inverse images fall in the open square q ± 1, so the
        /// ink's footprint is its bounding box grown by one pixel each side.
        /// The fit keeps the footprint's image inside [−1, W] × [−1, H]: then
        /// every output pixel that receives ink exists, no ink is cut off at
        /// the border, and each ink pixel's centre lands at most
        /// 1 − min(|xx| + |xy|, |yy|) beyond the outermost pixel centres:
        /// 0.19 for the default ranges, inside the field's border pixels.
        ///
        /// Two steps, so as much of the draw is kept as can be:
        /// 1. If A alone (no shift) fits, each shift is clamped to the
        ///    interval that fits, which contains 0: it only shrinks.
        /// 2. Otherwise every parameter, shift included, is moved toward the
        ///    identity (a bisection on the fraction kept, to 1/4096) until A
        ///    fits, and the shift is then clamped as in 1. The identity fits
        ///    any ink inside the image, so this always ends.
        ///
        /// An image without ink needs no fit; keep its transform as drawn.
        /// - Parameters:
        ///   - inkRows: the first and last row holding ink, within 0..<height.
        ///   - inkColumns: the first and last column holding ink, within 0..<width.
        ///   - height: H.
        ///   - width: W.
        /// - Returns: the fitted transform; the identity if the ink is not inside the image.
        func fitted(inkRows: ClosedRange<Int>, inkColumns: ClosedRange<Int>, height: Int, width: Int) -> Transform {
            let cx = Double(width - 1) / 2, cy = Double(height - 1) / 2
            let left = Double(inkColumns.lowerBound - 1) - cx, right = Double(inkColumns.upperBound + 1) - cx
            let top = Double(inkRows.lowerBound - 1) - cy, bottom = Double(inkRows.upperBound + 1) - cy
            // The shifts (tx, ty) that keep the footprint's image inside
            // [−1, W] × [−1, H]; nil unless no shift at all does.
            func room(_ t: Transform) -> (x: ClosedRange<Double>, y: ClosedRange<Double>)? {
                let a = t.matrix
                let xx = Double(a.xx), xy = Double(a.xy), yx = Double(a.yx), yy = Double(a.yy)
                // The corners' images: A is linear, so the extremes are among them.
                let x1 = xx * left + xy * top, x2 = xx * right + xy * top
                let x3 = xx * left + xy * bottom, x4 = xx * right + xy * bottom
                let y1 = yx * left + yy * top, y2 = yx * right + yy * top
                let y3 = yx * left + yy * bottom, y4 = yx * right + yy * bottom
                let loX = -1 - cx - min(x1, x2, x3, x4), hiX = Double(width) - cx - max(x1, x2, x3, x4)
                let loY = -1 - cy - min(y1, y2, y3, y4), hiY = Double(height) - cy - max(y1, y2, y3, y4)
                guard loX <= 0, 0 <= hiX, loY <= 0, 0 <= hiY else { return nil }
                return (loX...hiX, loY...hiY)
            }
            var kept = self
            if room(self) == nil {
                // Invariant: the fraction `fits` fits, `fails` does not.
                var fits = 0.0, fails = 1.0
                for _ in 0..<12 {
                    let mid = (fits + fails) / 2
                    if room(toward(identity: mid)) != nil { fits = mid } else { fails = mid }
                }
                kept = toward(identity: fits)
            }
            guard let shifts = room(kept) else { return .identity }
            kept.translationX = Float(min(max(Double(kept.translationX), shifts.x.lowerBound), shifts.x.upperBound))
            kept.translationY = Float(min(max(Double(kept.translationY), shifts.y.lowerBound), shifts.y.upperBound))
            return kept
        }
    }
}

// MARK: - Resampling

extension ImageDataset {
    /// The fill behind `fill(batch:normalization:augmentation:seed:epoch:into:labels:)`
    /// when the augmentation has an affine distortion: each image is cropped
    /// and flipped by the augmentation's transform, then distorted by
    /// `distortion`'s draw for it, fitted to the cropped image's ink.
    /// Allocates nothing.
    ///
    /// Each output pixel is mapped back through the fitted transform to a
    /// point of the cropped image, whose bytes are interpolated bilinearly
    /// there; outside the cropped image the byte is 0, like the crop's
    /// padding. The normalization's multiply-add then acts on the
    /// interpolated byte, as in the plain fill: at the identity the weights
    /// are exactly 1 and 0, and the result is the plain fill's bit for bit.
    func fill(
        batch indices: some Collection<Int>,
        normalization: Normalization,
        augmentation: Augmentation,
        distortion: AffineDistortion,
        seed: UInt64,
        epoch: Int,
        into images: UnsafeMutablePointer<Float>,
        labels: UnsafeMutablePointer<Int32>
    ) {
        // Programming errors, not bad input: the trainer validates both up front.
        precondition(normalization.fits(channels: channels),
                     "normalization has \(normalization.mean.count) channels, dataset \(channels)")
        let p = augmentation.padding
        precondition(p >= 0 && p <= min(height, width), "augmentation padding \(p) does not fit \(height)×\(width)")
        let H = height, W = width
        let plane = H * W
        let size = imageSize
        let cx = Float(W - 1) / 2, cy = Float(H - 1) / 2
        self.images.withUnsafeBufferPointer { bytes in
            guard let bytes = bytes.baseAddress else { return }
            var b = 0
            for index in indices {
                precondition(index >= 0 && index < count, "index \(index) out of 0..<\(count)")
                labels[b] = Int32(self.labels[index])
                let crop = augmentation.transform(seed: seed, epoch: epoch, index: index)
                // The cropped image's (row, column) is the source's
                // (row + dy, (flip ? W − 1 − column : column) + dx).
                let dy = crop.top - p, dx = crop.left - p, flip = crop.flip
                let image = bytes + index * size  // (C, H, W)
                var t = distortion.transform(seed: seed, epoch: epoch, index: index)
                if let ink = Self.inkBox(image, channels: channels, height: H, width: W, dy: dy, dx: dx, flip: flip) {
                    t = t.fitted(inkRows: ink.rows, inkColumns: ink.columns, height: H, width: W)
                }
                // The inverse map: p = A⁻¹·(p′ − c − t) + c.
                let a = t.matrix
                let det = a.xx * a.yy - a.xy * a.yx
                let ixx = a.yy / det, ixy = -a.xy / det, iyx = -a.yx / det, iyy = a.xx / det
                for c in 0..<channels {
                    let (scale, shift) = normalization.affine(channel: c)
                    let src = image + c * plane  // (H, W)
                    let dst = images + b * size + c * plane  // (H, W)
                    // The cropped image's byte at (row, column): 0 outside
                    // it, and where the crop reads padding.
                    @inline(__always) func byte(_ row: Int, _ column: Int) -> Float {
                        guard row >= 0 && row < H && column >= 0 && column < W else { return 0 }
                        let sh = row + dy, sw = (flip ? W - 1 - column : column) + dx
                        guard sh >= 0 && sh < H && sw >= 0 && sw < W else { return 0 }
                        return Float(src[sh * W + sw])
                    }
                    for h in 0..<H {
                        let v = Float(h) - cy - t.translationY
                        let out = dst + h * W
                        for w in 0..<W {
                            let u = Float(w) - cx - t.translationX
                            let x = ixx * u + ixy * v + cx
                            let y = iyx * u + iyy * v + cy
                            // A whole pixel or more outside, all four
                            // neighbours are outside; the comparison also
                            // turns NaN away before the conversion to Int.
                            guard x > -1 && x < Float(W) && y > -1 && y < Float(H) else {
                                out[w] = shift
                                continue
                            }
                            let x0 = x.rounded(.down), y0 = y.rounded(.down)
                            let fx = x - x0, fy = y - y0
                            let column = Int(x0), row = Int(y0)
                            let upper = (1 - fx) * byte(row, column) + fx * byte(row, column + 1)
                            let lower = (1 - fx) * byte(row + 1, column) + fx * byte(row + 1, column + 1)
                            out[w] = ((1 - fy) * upper + fy * lower) * scale + shift
                        }
                    }
                }
                b += 1
            }
        }
    }

    /// The rows and columns of the cropped image (see the fill) that hold
    /// ink, a byte > 0 in any channel, as a bounding box; nil when it has none.
    static func inkBox(
        _ image: UnsafePointer<UInt8>, channels: Int, height H: Int, width W: Int, dy: Int, dx: Int, flip: Bool
    ) -> (rows: ClosedRange<Int>, columns: ClosedRange<Int>)? {
        var top = H, bottom = -1, left = W, right = -1  // in the source
        for c in 0..<channels {
            for h in 0..<H {
                let row = image + (c * H + h) * W
                for w in 0..<W where row[w] > 0 {
                    top = min(top, h)
                    bottom = max(bottom, h)
                    left = min(left, w)
                    right = max(right, w)
                }
            }
        }
        guard bottom >= 0 else { return nil }
        // Into the cropped image's coordinates, cut to it: what the crop
        // leaves out is black there, not ink to keep inside.
        let firstRow = max(top - dy, 0), lastRow = min(bottom - dy, H - 1)
        let first = max(flip ? W - 1 - (right - dx) : left - dx, 0)
        let last = min(flip ? W - 1 - (left - dx) : right - dx, W - 1)
        guard firstRow <= lastRow, first <= last else { return nil }
        return (firstRow...lastRow, first...last)
    }
}

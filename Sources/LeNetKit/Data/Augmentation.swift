// Data augmentation for training: torchvision's
// `RandomCrop(32, padding=4)` then `RandomHorizontalFlip()`, applied while a
// batch is copied from bytes to floats, so it costs one index computation per
// pixel and allocates nothing.
//
// Each image's crop offset and flip are a hash of (seed, epoch, image index),
// not draws from a running generator. The same seed gives the same weights,
// and a run resumed after epoch k augments epoch k + 1 exactly as an
// uninterrupted run does, with nothing to save in the checkpoint.

/// Random crop with zero padding and random horizontal flip.
///
/// For an image x of size (C, H, W), padding p, crop offset (i, j) drawn
/// uniformly from 0...2p each, and flip f drawn with probability ½:
/// ```
/// padded[c, h, w] = x[c, h − p, w − p]   inside the image, 0 (black) outside
/// out[c, h, w]    = padded[c, i + h, j + w']   where w' = f ? W − 1 − w : w
/// ```
/// The padding is the byte 0, black, as torchvision pads a PIL image before
/// `ToTensor` and `Normalize`; after normalization it is `(0 − mean) / std`.
///
/// With `affine` set, the cropped and flipped image is then distorted
/// (`AffineDistortion`, drawn independently of the crop): crop first, so
/// the distortion's fit sees the ink where the crop put it and keeps it
/// inside the field; distorting first would let the crop cut off ink the fit
/// had kept. For the distortion alone, set padding 0 and no flip.
public struct Augmentation: Sendable, Equatable {
    /// Zero pixels added on each side before cropping back to H×W (p ≥ 0).
    public var padding: Int
    /// Whether each image is mirrored left–right with probability ½.
    public var horizontalFlip: Bool
    /// A random affine distortion of each cropped image, or nil for none.
    public var affine: AffineDistortion?

    /// - Parameters:
    ///   - padding: pixels of black added on each side before the crop; 0 turns cropping off.
    ///   - horizontalFlip: mirror half of the images left–right.
    ///   - affine: distort each image after the crop and flip; nil for none.
    public init(padding: Int = 4, horizontalFlip: Bool = true, affine: AffineDistortion? = nil) {
        self.padding = padding
        self.horizontalFlip = horizontalFlip
        self.affine = affine
    }

    /// The usual CIFAR-10 augmentation: 4-pixel padding, random crop, random flip.
    public static let cifar = Augmentation(padding: 4, horizontalFlip: true)

    /// One image's transformation.
    struct Transform: Sendable, Hashable {
        /// The crop's top row in the padded image, 0...2p.
        var top: Int
        /// The crop's left column in the padded image, 0...2p.
        var left: Int
        /// Whether the crop is mirrored left–right.
        var flip: Bool
    }

    /// The transformation of image `index` in epoch `epoch` (from 0) of a run
    /// seeded with `seed`: a pure function of the three, so any order of
    /// visiting the images, and any resume point, gives the same result.
    /// - Parameters:
    ///   - seed: the run's seed.
    ///   - epoch: the epoch, from 0.
    ///   - index: the image's index in the dataset.
    func transform(seed: UInt64, epoch: Int, index: Int) -> Transform {
        var bits = Self.mix(Self.mix(seed ^ 0xA076_1D64_78BD_642F)
                            ^ Self.mix(UInt64(truncatingIfNeeded: epoch) &+ 0xE703_7ED1_A0B4_28DB)
                            &+ UInt64(truncatingIfNeeded: index))
        let range = UInt64(2 * max(padding, 0) + 1)
        // Three small uniform draws from one 64-bit hash: 21 bits each.
        let top = Int(((bits & 0x1F_FFFF) &* range) >> 21)
        bits >>= 21
        let left = Int(((bits & 0x1F_FFFF) &* range) >> 21)
        bits >>= 21
        return Transform(top: top, left: left, flip: horizontalFlip && bits & 1 == 1)
    }

    /// Checks the padding against an image size, and the affine distortion's ranges.
    /// - Throws: `LeNetError` when the padding is negative or larger than the
    ///   image, or from `AffineDistortion.validate()`.
    func validate(height: Int, width: Int) throws {
        guard padding >= 0, padding <= min(height, width) else {
            throw LeNetError("padding must be in 0...\(min(height, width)), got \(padding)", subject: "Augmentation.padding")
        }
        try affine?.validate()
    }

    /// SplitMix64's step (Random.swift): a bijective mix of 64 bits.
    static func mix(_ value: UInt64) -> UInt64 { splitMix64(value) }
}

extension ImageDataset {
    /// `fill(batch:normalization:into:labels:)` with each image cropped and
    /// flipped by `augmentation`'s transform for (seed, epoch, image index),
    /// then, if `augmentation.affine` is set, distorted by its draw for the
    /// same three (see `AffineDistortion`). Allocates nothing: it runs every
    /// training step.
    ///
    /// - Parameters:
    ///   - indices: n image indices, each in `0..<count`.
    ///   - normalization: per-channel mean and std; must fit `channels`.
    ///   - augmentation: the crop padding, flip and affine distortion; its
    ///     padding must be at most H and W.
    ///   - seed: the run's seed.
    ///   - epoch: the epoch being trained, from 0.
    ///   - images: room for n * C * H * W floats. (n, C, H, W)
    ///   - labels: room for n labels. (n)
    func fill(
        batch indices: some Collection<Int>,
        normalization: Normalization,
        augmentation: Augmentation,
        seed: UInt64,
        epoch: Int,
        into images: UnsafeMutablePointer<Float>,
        labels: UnsafeMutablePointer<Int32>
    ) {
        if let distortion = augmentation.affine {
            fill(batch: indices, normalization: normalization, augmentation: augmentation, distortion: distortion,
                 seed: seed, epoch: epoch, into: images, labels: labels)
            return
        }
        fill(batch: indices, normalization: normalization, padding: augmentation.padding, into: images, labels: labels) { index in
            augmentation.transform(seed: seed, epoch: epoch, index: index)
        }
    }

    /// `fill(batch:normalization:into:labels:)` with every image mirrored
    /// left–right: the second view of flip test-time augmentation.
    /// - Parameters: as `fill(batch:normalization:into:labels:)`.
    func fillMirrored(
        batch indices: some Collection<Int>,
        normalization: Normalization,
        into images: UnsafeMutablePointer<Float>,
        labels: UnsafeMutablePointer<Int32>
    ) {
        fill(batch: indices, normalization: normalization, padding: 0, into: images, labels: labels) { _ in
            Augmentation.Transform(top: 0, left: 0, flip: true)
        }
    }

    /// The fill of every augmented view: image `index` cropped at
    /// `transform(index)` from its copy padded by `padding` black pixels,
    /// and mirrored if the transform says so.
    private func fill(
        batch indices: some Collection<Int>,
        normalization: Normalization,
        padding p: Int,
        into images: UnsafeMutablePointer<Float>,
        labels: UnsafeMutablePointer<Int32>,
        transform: (Int) -> Augmentation.Transform
    ) {
        // Programming errors, not bad input: the trainer checks both up front.
        precondition(normalization.fits(channels: channels),
                     "normalization has \(normalization.mean.count) channels, dataset \(channels)")
        precondition(p >= 0 && p <= min(height, width), "augmentation padding \(p) does not fit \(height)×\(width)")
        let H = height, W = width
        let plane = H * W
        let size = imageSize
        self.images.withUnsafeBufferPointer { bytes in
            guard let bytes = bytes.baseAddress else { return }
            var b = 0
            for index in indices {
                precondition(index >= 0 && index < count, "index \(index) out of 0..<\(count)")
                labels[b] = Int32(self.labels[index])
                let t = transform(index)
                // Output (h, w) reads source row h + dy and column
                // flip ? (W − 1 − w) + dx : w + dx, or padding when outside.
                let dy = t.top - p, dx = t.left - p
                for c in 0..<channels {
                    let (scale, shift) = normalization.affine(channel: c)
                    let src = bytes + index * size + c * plane  // (H, W)
                    let dst = images + b * size + c * plane  // (H, W)
                    for h in 0..<H {
                        let sh = h + dy
                        let out = dst + h * W
                        guard sh >= 0 && sh < H else {
                            out.update(repeating: shift, count: W)  // a padding row: byte 0
                            continue
                        }
                        let row = src + sh * W
                        for w in 0..<W {
                            let sw = (t.flip ? W - 1 - w : w) + dx
                            out[w] = sw >= 0 && sw < W ? Float(row[sw]) * scale + shift : shift
                        }
                    }
                }
                b += 1
            }
        }
    }
}

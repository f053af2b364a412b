// A user's image on its way to a model: decoded from a file (JPEG, PNG, PPM, PGM),
// brought to the model's channels (alpha over black, gray ↔ RGB), resized
// to its input, then laid out as the (C, H, W) bytes a dataset holds, so the
// training data's own normalization code turns it into floats.
import Foundation

/// An 8-bit image as image files store it: rows of interleaved samples.
public struct PixelImage: Sendable, Equatable {
    /// Columns (W).
    public let width: Int
    /// Rows (H).
    public let height: Int
    /// Samples per pixel: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
    public let channels: Int
    /// The samples, 0...255. (H, W, C)
    public let pixels: [UInt8]

    /// An image from interleaved samples, checked.
    /// - Parameters:
    ///   - width: columns, > 0.
    ///   - height: rows, > 0.
    ///   - channels: 1, 2, 3 or 4.
    ///   - pixels: H * W * C samples. (H, W, C)
    /// - Throws: `LeNetError` when the sizes disagree.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
        guard width > 0, height > 0, (1...4).contains(channels) else {
            throw LeNetError("an image must be at least 1×1 with 1 to 4 channels, got \(width)×\(height)×\(channels)", subject: "image")
        }
        guard pixels.count == width * height * channels else {
            throw LeNetError("a \(width)×\(height) image with \(channels) channels needs \(width * height * channels) samples, got \(pixels.count)",
                             subject: "image")
        }
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// An image from planar samples, as `ImageDataset` stores them.
    /// - Parameters:
    ///   - planar: C * H * W samples. (C, H, W)
    ///   - channels: 1 (gray) or 3 (RGB), or 2 and 4 with alpha last.
    ///   - height: rows.
    ///   - width: columns.
    /// - Throws: `LeNetError` when the sizes disagree.
    init(planar: some Collection<UInt8>, channels: Int, height: Int, width: Int) throws {
        let source = Array(planar)
        guard source.count == channels * height * width else {
            throw LeNetError("\(channels)×\(height)×\(width) planar samples needed, got \(source.count)", subject: "image")
        }
        var pixels = [UInt8](repeating: 0, count: source.count)  // (H, W, C)
        for c in 0..<channels {
            for p in 0..<height * width { pixels[p * channels + c] = source[c * height * width + p] }
        }
        try self.init(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// Whether the last channel is alpha (2 or 4 channels).
    var hasAlpha: Bool { channels == 2 || channels == 4 }

    /// The samples laid out per channel, as `ImageDataset` stores them. (C, H, W)
    var planar: [UInt8] {
        var out = [UInt8](repeating: 0, count: pixels.count)  // (C, H, W)
        let plane = width * height
        for p in 0..<plane {
            for c in 0..<channels { out[c * plane + p] = pixels[p * channels + c] }
        }
        return out
    }

    /// The image with 1 (gray) or 3 (RGB) channels and no alpha.
    ///
    /// Alpha is composited over black (the padding colour of the training
    /// data): `v · a / 255`. RGB becomes gray with ITU-R BT.601 weights,
    /// `0.299 R + 0.587 G + 0.114 B` (as PIL's `convert("L")`); gray becomes
    /// RGB by repeating it.
    /// - Throws: `LeNetError` when `target` is not 1 or 3.
    func converted(toChannels target: Int) throws -> PixelImage {
        guard target == 1 || target == 3 else {
            throw LeNetError("can convert only to 1 (gray) or 3 (RGB) channels, not \(target)", subject: "image")
        }
        if channels == target { return self }
        let colour = channels >= 3 ? 3 : 1
        var out = [UInt8](repeating: 0, count: width * height * target)  // (H, W, target)
        for p in 0..<width * height {
            let px = p * channels
            let alpha = hasAlpha ? Int(pixels[px + channels - 1]) : 255
            func sample(_ c: Int) -> Int { (Int(pixels[px + c]) * alpha + 127) / 255 }
            if target == 1 {
                out[p] = colour == 1 ? UInt8(sample(0))
                    : UInt8((0.299 * Double(sample(0)) + 0.587 * Double(sample(1)) + 0.114 * Double(sample(2))).rounded())
            } else {
                for c in 0..<3 { out[p * 3 + c] = UInt8(sample(colour == 1 ? 0 : c)) }
            }
        }
        return try PixelImage(width: width, height: height, channels: target, pixels: out)
    }

    /// The image resampled to `newWidth` × `newHeight`, each axis on its own:
    /// an area average where it shrinks (every source pixel counts, weighted
    /// by how much of it falls in the output pixel), bilinear interpolation
    /// between pixel centres where it grows (PyTorch's `align_corners=False`).
    /// - Throws: `LeNetError` when a size is not positive.
    func resized(width newWidth: Int, height newHeight: Int) throws -> PixelImage {
        guard newWidth > 0, newHeight > 0 else {
            throw LeNetError("cannot resize to \(newWidth)×\(newHeight)", subject: "image")
        }
        if newWidth == width && newHeight == height { return self }
        let C = channels
        let across = Self.resamplingWeights(from: width, to: newWidth)
        let down = Self.resamplingWeights(from: height, to: newHeight)
        var rows = [Float](repeating: 0, count: height * newWidth * C)  // (H, newW, C)
        for h in 0..<height {
            for (o, taps) in across.enumerated() {
                for (i, weight) in taps {
                    for c in 0..<C { rows[(h * newWidth + o) * C + c] += weight * Float(pixels[(h * width + i) * C + c]) }
                }
            }
        }
        var out = [UInt8](repeating: 0, count: newHeight * newWidth * C)  // (newH, newW, C)
        for (o, taps) in down.enumerated() {
            for w in 0..<newWidth * C {
                var v: Float = 0
                for (i, weight) in taps { v += weight * rows[i * newWidth * C + w] }
                out[o * newWidth * C + w] = UInt8(min(max(v.rounded(), 0), 255))
            }
        }
        return try PixelImage(width: newWidth, height: newHeight, channels: C, pixels: out)
    }

    /// For each of `m` outputs along one axis of `n` inputs: the inputs it
    /// reads and their weights, which sum to 1.
    static func resamplingWeights(from n: Int, to m: Int) -> [[(index: Int, weight: Float)]] {
        let scale = Double(n) / Double(m)
        return (0..<m).map { o in
            if m < n {
                // Area: the input interval [o·scale, (o + 1)·scale).
                let lo = Double(o) * scale, hi = Double(o + 1) * scale
                var taps: [(index: Int, weight: Float)] = []
                for i in Int(lo.rounded(.down))..<min(Int(hi.rounded(.up)), n) {
                    let overlap = min(hi, Double(i + 1)) - max(lo, Double(i))
                    if overlap > 1e-9 { taps.append((i, Float(overlap / scale))) }
                }
                return taps
            }
            // Bilinear between the two nearest input centres.
            let x = min(max((Double(o) + 0.5) * scale - 0.5, 0), Double(n - 1))
            let i0 = Int(x.rounded(.down)), i1 = min(i0 + 1, n - 1)
            let t = Float(x - Double(i0))
            return t == 0 ? [(i0, Float(1))] : [(i0, 1 - t), (i1, t)]
        }
    }

    /// The image moved `dx` columns right and `dy` rows down, zeros
    /// (black) filling what comes in.
    func shifted(dx: Int, dy: Int) throws -> PixelImage {
        var out = [UInt8](repeating: 0, count: pixels.count)  // (H, W, C)
        for y in max(0, dy)..<min(height, height + dy) {
            for x in max(0, dx)..<min(width, width + dx) {
                for c in 0..<channels { out[(y * width + x) * channels + c] = pixels[((y - dy) * width + x - dx) * channels + c] }
            }
        }
        return try PixelImage(width: width, height: height, channels: channels, pixels: out)
    }

    // MARK: - Files

    /// Reads a JPEG, PNG, PPM or PGM file, told apart by their first bytes.
    /// - Throws: `LeNetError` naming the path when the file is missing,
    ///   unreadable, of another format, truncated or corrupt.
    public static func read(path: String) throws -> PixelImage {
        let bytes = [UInt8](try DataFiles.read(path))
        return try decode(bytes, subject: path)
    }

    /// Decodes a JPEG, PNG, PPM or PGM file held in memory.
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - subject: its name, for error messages.
    /// - Throws: `LeNetError` (subject `subject`) when the format is not one
    ///   of these, or the file is truncated or corrupt.
    static func decode(_ bytes: [UInt8], subject: String) throws -> PixelImage {
        guard !bytes.isEmpty else { throw LeNetError("the file is empty", subject: subject) }
        if JPEG.isJPEG(bytes) { return try JPEG.decode(bytes, subject: subject) }
        if PNG.isPNG(bytes) { return try PNG.decode(bytes, subject: subject) }
        if bytes.count >= 2 && bytes[0] == UInt8(ascii: "P") { return try PNM.decode(bytes, subject: subject) }
        let formats: [(magic: [UInt8], name: String)] = [
            ([0x47, 0x49, 0x46, 0x38], "GIF"),
            ([0x52, 0x49, 0x46, 0x46], "RIFF (WebP)"), ([0x42, 0x4D], "BMP"),
        ]
        if let known = formats.first(where: { bytes.starts(with: $0.magic) }) {
            throw LeNetError("is a \(known.name) file; only JPEG, PNG, PPM and PGM are read (convert it first)", subject: subject)
        }
        throw LeNetError("is not a JPEG, PNG, PPM or PGM file", subject: subject)
    }
}

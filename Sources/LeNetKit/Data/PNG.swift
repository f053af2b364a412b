// PNG reading and writing through libpng (CImageCodecs holds the C, and
// catches libpng's longjmp errors there). Reading covers every PNG: gray,
// gray + alpha, RGB, RGBA and palettes, 1 to 16 bits, interlaced or not.
// Writing produces 8-bit, non-interlaced files: the report's thumbnails and
// the tests' round trips.
import CImageCodecs

/// Encodes and decodes PNG images.
enum PNG {
    /// The eight bytes every PNG file starts with.
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The most pixels an image file may declare (width × height), for
    /// every format read here: 64 megapixels, so a damaged or hostile
    /// header cannot demand gigabytes.
    static let maximumPixels = 1 << 26

    /// The most memory one ancillary chunk (text, an ICC profile) may take
    /// once inflated: 8 MB, libpng's own default for its "zip bomb" guard.
    static let maximumChunkBytes = 8 << 20

    /// Whether `bytes` start with the PNG signature.
    static func isPNG(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 8 && Array(bytes[0..<8]) == signature
    }

    /// A PNG file holding `image`: 8 bits per sample, gray (1 channel), gray
    /// + alpha (2), RGB (3) or RGBA (4), not interlaced.
    /// - Throws: `LeNetError` if libpng fails (out of memory).
    static func encode(_ image: PixelImage) throws -> [UInt8] {
        var file: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: Int(LK_MESSAGE_SIZE))
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            lk_png_encode(pixels.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                          &file, &size, &message)
        }
        guard status == 0, let file else {
            throw LeNetError("libpng could not encode the image: \(DecodedImage.text(message))", subject: "PNG")
        }
        defer { lk_free(file) }
        return Array(UnsafeBufferPointer(start: file, count: size))
    }

    /// Decodes a PNG file held in memory.
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - subject: its name, for error messages.
    /// - Returns: 8-bit samples: 1 channel for gray, 2 for gray + alpha, 3
    ///   for RGB and palettes, 4 with alpha (an alpha channel or tRNS).
    ///   16-bit samples are scaled to 8 bits with rounding.
    /// - Throws: `LeNetError` (subject `subject`) saying what libpng found
    ///   wrong: no signature, truncated, a bad CRC, bad image data, or more
    ///   than `maximumPixels` pixels.
    static func decode(_ bytes: [UInt8], subject: String) throws -> PixelImage {
        guard isPNG(bytes) else { throw LeNetError("not a PNG file (no PNG signature)", subject: subject) }
        var image = lk_image()
        let status = bytes.withUnsafeBufferPointer { file in
            lk_png_decode(file.baseAddress, file.count, maximumPixels, maximumChunkBytes, &image)
        }
        return try DecodedImage.take(&image, status: status, format: "PNG", subject: subject)
    }

    /// Reads and decodes the PNG file at `path`.
    /// - Throws: `LeNetError` naming the path when it cannot be read or decoded.
    static func read(path: String) throws -> PixelImage {
        try decode([UInt8](try DataFiles.read(path)), subject: path)
    }
}

/// What the C decoders hand back, made a `PixelImage`.
enum DecodedImage {
    /// A C message buffer's text, up to its NUL.
    static func text(_ message: [CChar]) -> String {
        String(decoding: message.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The image in `image` (its C memory released), or the decoder's
    /// message as a `LeNetError`.
    static func take(_ image: inout lk_image, status: Int32, format: String, subject: String) throws -> PixelImage {
        defer { lk_image_free(&image) }
        guard status == 0, let pixels = image.pixels else {
            let message = withUnsafeBytes(of: image.message) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            throw LeNetError("cannot decode the \(format) image: \(message)", subject: subject)
        }
        let count = Int(image.width) * Int(image.height) * Int(image.channels)
        return try PixelImage(width: Int(image.width), height: Int(image.height), channels: Int(image.channels),
                              pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
    }
}

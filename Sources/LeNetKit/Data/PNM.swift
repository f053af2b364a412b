// Netpbm images: PGM (gray) and PPM (RGB), binary (P5, P6) and plain text
// (P2, P3). A header of whitespace-separated numbers (width, height, maxval;
// `#` starts a comment), then the samples. Binary samples take one byte when
// maxval < 256 and two (big-endian) otherwise; every sample is scaled from
// 0...maxval to 0...255.

/// Encodes and decodes PGM and PPM images.
enum PNM {
    /// Decodes a P2, P3, P5 or P6 file.
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - subject: its name, for error messages.
    /// - Returns: a 1-channel image for PGM, 3 channels for PPM.
    /// - Throws: `LeNetError` (subject `subject`) for another Netpbm kind
    ///   (PBM, PAM), a malformed header, a sample above maxval, or a file
    ///   that ends before all its samples.
    static func decode(_ bytes: [UInt8], subject: String) throws -> PixelImage {
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "P") else {
            throw LeNetError("is not a PPM or PGM file (no P5/P6 magic number)", subject: subject)
        }
        let kind = bytes[1]
        let channels: Int, binary: Bool
        switch kind {
        case UInt8(ascii: "2"): (channels, binary) = (1, false)
        case UInt8(ascii: "3"): (channels, binary) = (3, false)
        case UInt8(ascii: "5"): (channels, binary) = (1, true)
        case UInt8(ascii: "6"): (channels, binary) = (3, true)
        case UInt8(ascii: "1"), UInt8(ascii: "4"):
            throw LeNetError("is a PBM (1-bit) file; only PGM (P2, P5) and PPM (P3, P6) are read", subject: subject)
        case UInt8(ascii: "7"):
            throw LeNetError("is a PAM (P7) file; only PGM (P2, P5) and PPM (P3, P6) are read", subject: subject)
        default:
            throw LeNetError("is not a PPM or PGM file (magic number 'P\(Character(Unicode.Scalar(kind)))')", subject: subject)
        }
        var reader = Tokens(bytes: bytes, position: 2, subject: subject)
        let width = try reader.number("width")
        let height = try reader.number("height")
        let maxval = try reader.number("maxval")
        var position = reader.position
        guard width > 0, height > 0, width <= PNG.maximumPixels / height else {
            throw LeNetError("the header declares a \(width)×\(height) image", subject: subject)
        }
        guard maxval > 0, maxval < 65536 else {
            throw LeNetError("maxval must be in 1...65535, got \(maxval)", subject: subject)
        }
        let count = width * height * channels
        var pixels = [UInt8](repeating: 0, count: count)  // (H, W, C)
        func scaled(_ v: Int, at i: Int) throws -> UInt8 {
            guard v <= maxval else {
                throw LeNetError("sample \(i) is \(v), above maxval \(maxval)", subject: subject)
            }
            return UInt8((v * 255 + maxval / 2) / maxval)
        }
        if binary {
            // Exactly one whitespace byte separates maxval from the samples.
            guard position < bytes.count, Tokens.isSpace(bytes[position]) else {
                throw LeNetError("truncated: no image data after the header", subject: subject)
            }
            position += 1
            let width2 = maxval > 255 ? 2 : 1
            guard bytes.count - position >= count * width2 else {
                throw LeNetError("truncated: \(count * width2) bytes of samples expected after the header, found \(bytes.count - position)",
                                 subject: subject)
            }
            for i in 0..<count {
                let at = position + i * width2
                let v = width2 == 1 ? Int(bytes[at]) : Int(bytes[at]) << 8 | Int(bytes[at + 1])
                pixels[i] = try scaled(v, at: i)
            }
        } else {
            for i in 0..<count {
                guard let v = try reader.optionalNumber() else {
                    throw LeNetError("truncated: \(count) samples expected, found \(i)", subject: subject)
                }
                pixels[i] = try scaled(v, at: i)
            }
        }
        return try PixelImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// A binary PGM (1 channel) or PPM (3 channels) file with maxval 255.
    /// - Throws: `LeNetError` for 2 or 4 channels (PNM has no alpha).
    static func encode(_ image: PixelImage) throws -> [UInt8] {
        guard image.channels == 1 || image.channels == 3 else {
            throw LeNetError("PGM/PPM hold 1 or 3 channels, the image has \(image.channels)", subject: "PNM")
        }
        let header = "P\(image.channels == 1 ? 5 : 6)\n\(image.width) \(image.height)\n255\n"
        return Array(header.utf8) + image.pixels
    }

    /// Whitespace-separated decimal numbers with `#` comments.
    struct Tokens {
        let bytes: [UInt8]
        var position: Int
        let subject: String

        static func isSpace(_ b: UInt8) -> Bool { b == 32 || (9...13).contains(b) }

        /// The next number, or nil at the end of the file.
        mutating func optionalNumber() throws -> Int? {
            while position < bytes.count {
                if Self.isSpace(bytes[position]) {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "#") {
                    while position < bytes.count && bytes[position] != 10 && bytes[position] != 13 { position += 1 }
                } else {
                    break
                }
            }
            guard position < bytes.count else { return nil }
            var value = 0, digits = 0
            while position < bytes.count, (48...57).contains(bytes[position]) {
                value = value * 10 + Int(bytes[position] - 48)
                digits += 1
                position += 1
                guard digits <= 9 else { throw LeNetError("a number in the file is too long", subject: subject) }
            }
            guard digits > 0, position == bytes.count || Self.isSpace(bytes[position]) || bytes[position] == UInt8(ascii: "#") else {
                throw LeNetError("malformed: expected a number at byte \(position)", subject: subject)
            }
            return value
        }

        mutating func number(_ what: String) throws -> Int {
            guard let v = try optionalNumber() else {
                throw LeNetError("truncated: the header ends before its \(what)", subject: subject)
            }
            return v
        }
    }
}

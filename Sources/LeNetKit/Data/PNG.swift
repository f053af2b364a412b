// PNG reading and writing, through zlib (the only other file that imports it
// is Gzip.swift). Reading covers what people save: 8-bit gray, gray + alpha,
// RGB, RGBA, and palettes (1, 2, 4 or 8 bits, with tRNS transparency), plus
// 1-, 2- and 4-bit gray; all five row filters. Interlaced (Adam7) and 16-bit
// files are refused with a message saying so. Writing produces 8-bit,
// non-interlaced files with no row filter, zlib-compressed: enough for the
// report's thumbnails and the tests' round trips.
import CZlib

/// Encodes and decodes PNG images.
public enum PNG {
    /// The eight bytes every PNG file starts with.
    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The most pixels a file may declare (width × height): 64 megapixels,
    /// so a damaged header cannot demand gigabytes.
    public static let maximumPixels = 1 << 26

    /// Whether `bytes` start with the PNG signature.
    public static func isPNG(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 8 && Array(bytes[0..<8]) == signature
    }

    // MARK: - Writing

    /// A PNG file holding `image`: 8 bits per sample, gray (1 channel), gray
    /// + alpha (2), RGB (3) or RGBA (4), not interlaced.
    /// - Throws: `LeNetError` if zlib fails (out of memory).
    public static func encode(_ image: PixelImage) throws -> [UInt8] {
        let W = image.width, H = image.height, C = image.channels
        let colorType: UInt8 = [1: 0, 2: 4, 3: 2, 4: 6][C] ?? 0
        // Each row: the filter byte 0 (none), then the row's samples.
        var raw = [UInt8](repeating: 0, count: H * (1 + W * C))  // (H, 1 + W·C)
        for h in 0..<H {
            raw.replaceSubrange(h * (1 + W * C) + 1..<(h + 1) * (1 + W * C),
                                with: image.pixels[h * W * C..<(h + 1) * W * C])
        }
        var compressed = [UInt8](repeating: 0, count: Int(compressBound(uLong(raw.count))))
        var length = uLong(compressed.count)
        let status = compressed.withUnsafeMutableBufferPointer { out in
            raw.withUnsafeBufferPointer { input in
                compress2(out.baseAddress, &length, input.baseAddress, uLong(input.count), 6)
            }
        }
        guard status == Z_OK else { throw LeNetError("zlib could not compress the image (error \(status))", subject: "PNG") }
        compressed.removeLast(compressed.count - Int(length))

        var header: [UInt8] = []
        header += bigEndian(UInt32(W))
        header += bigEndian(UInt32(H))
        header += [8, colorType, 0, 0, 0]  // bit depth, color type, deflate, adaptive filters, no interlace
        var file = signature
        file += chunk("IHDR", header)
        file += chunk("IDAT", compressed)
        file += chunk("IEND", [])
        return file
    }

    private static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        return bigEndian(UInt32(data.count)) + typeBytes + data + bigEndian(crc(typeBytes + data))
    }

    private static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    /// The CRC-32 PNG puts after each chunk, over its type and data.
    static func crc(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { UInt32(truncatingIfNeeded: crc32(0, $0.baseAddress, uInt($0.count))) }
    }

    // MARK: - Reading

    /// Decodes a PNG file.
    ///
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - subject: the file's name, for error messages.
    /// - Returns: an 8-bit image with 1 (gray), 2 (gray + alpha), 3 (RGB) or
    ///   4 (RGBA) channels: palettes become RGB, or RGBA when they carry
    ///   transparency; 1-, 2- and 4-bit gray is scaled to 0...255.
    /// - Throws: `LeNetError` (subject `subject`) when the file is not a PNG,
    ///   is truncated or corrupt (a chunk's CRC, the compressed data), is
    ///   interlaced or 16-bit, or declares more than `maximumPixels` pixels.
    public static func decode(_ bytes: [UInt8], subject: String) throws -> PixelImage {
        guard isPNG(bytes) else { throw LeNetError("not a PNG file (no PNG signature)", subject: subject) }
        var header: Header?
        var palette: [UInt8] = []  // (entries, 3)
        var paletteAlpha: [UInt8] = []  // (entries), from tRNS
        var data: [UInt8] = []  // the IDAT chunks, concatenated
        var position = 8
        var ended = false
        while !ended {
            guard position + 8 <= bytes.count else {
                throw LeNetError("truncated: the file ends after \(bytes.count) bytes, before the IEND chunk", subject: subject)
            }
            let length = Int(readUInt32(bytes, position))
            let typeBytes = Array(bytes[position + 4..<position + 8])
            let type = String(decoding: typeBytes, as: UTF8.self)
            guard length <= Int(Int32.max), position + 12 + length <= bytes.count else {
                throw LeNetError("truncated: chunk '\(type)' at byte \(position) needs \(length) bytes of data, "
                                 + "the file has \(max(bytes.count - position - 12, 0)) left", subject: subject)
            }
            let body = Array(bytes[position + 8..<position + 8 + length])
            guard readUInt32(bytes, position + 8 + length) == crc(typeBytes + body) else {
                throw LeNetError("corrupt: chunk '\(type)' at byte \(position) fails its CRC check", subject: subject)
            }
            position += 12 + length
            if header == nil && type != "IHDR" {
                throw LeNetError("corrupt: the first chunk is '\(type)', expected IHDR", subject: subject)
            }
            switch type {
            case "IHDR":
                header = try Header(body, subject: subject)
            case "PLTE":
                guard length % 3 == 0, length > 0, length <= 768 else {
                    throw LeNetError("corrupt: a palette of \(length) bytes (expected 3 to 768, a multiple of 3)", subject: subject)
                }
                palette = body
            case "tRNS":
                if header?.colorType == 3 { paletteAlpha = body }
            case "IDAT":
                data += body
            case "IEND":
                ended = true
            default:
                // Ancillary chunks (gAMA, pHYs, text, …) carry nothing a
                // classifier uses; an unknown critical chunk (upper-case first
                // letter) means the image cannot be read correctly.
                if let first = typeBytes.first, first >= 65, first <= 90 {
                    throw LeNetError("unsupported critical chunk '\(type)'", subject: subject)
                }
            }
        }
        guard let header else { throw LeNetError("corrupt: no IHDR chunk", subject: subject) }
        guard !data.isEmpty else { throw LeNetError("corrupt: no image data (IDAT chunk)", subject: subject) }
        if header.colorType == 3 && palette.isEmpty {
            throw LeNetError("corrupt: a palette image without a PLTE chunk", subject: subject)
        }
        let rowBytes = (header.width * header.bitsPerPixel + 7) / 8
        let expected = header.height * (1 + rowBytes)
        var raw = try inflate(data, expected: expected, subject: subject)  // (H, 1 + rowBytes)
        try unfilter(&raw, height: header.height, rowBytes: rowBytes,
                     bytesPerPixel: max(1, header.bitsPerPixel / 8), subject: subject)
        return try expand(raw, header, palette: palette, paletteAlpha: paletteAlpha, subject: subject)
    }

    /// Reads and decodes the PNG file at `path`.
    /// - Throws: `LeNetError` naming the path when it cannot be read or decoded.
    public static func read(path: String) throws -> PixelImage {
        try decode([UInt8](try DataFiles.read(path)), subject: path)
    }

    /// What IHDR says.
    struct Header {
        var width: Int, height: Int, bitDepth: Int, colorType: Int

        init(_ body: [UInt8], subject: String) throws {
            guard body.count == 13 else {
                throw LeNetError("corrupt: IHDR holds \(body.count) bytes, expected 13", subject: subject)
            }
            width = Int(readUInt32(body, 0))
            height = Int(readUInt32(body, 4))
            bitDepth = Int(body[8])
            colorType = Int(body[9])
            guard width > 0, height > 0 else {
                throw LeNetError("corrupt: the image is \(width)×\(height) pixels", subject: subject)
            }
            guard width <= PNG.maximumPixels / height else {
                throw LeNetError("the image is \(width)×\(height) pixels, more than the \(PNG.maximumPixels) supported", subject: subject)
            }
            let allowed: [Int: [Int]] = [0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]]
            guard let depths = allowed[colorType], depths.contains(bitDepth) else {
                throw LeNetError("corrupt: color type \(colorType) with bit depth \(bitDepth) is not a valid PNG", subject: subject)
            }
            guard bitDepth != 16 else {
                throw LeNetError("16-bit PNG images are not supported; save it with 8 bits per sample", subject: subject)
            }
            guard body[10] == 0, body[11] == 0 else {
                throw LeNetError("corrupt: unknown compression (\(body[10])) or filter method (\(body[11]))", subject: subject)
            }
            guard body[12] == 0 else {
                throw LeNetError(body[12] == 1 ? "interlaced (Adam7) PNG images are not supported; save it without interlacing"
                                     : "corrupt: unknown interlace method \(body[12])", subject: subject)
            }
        }

        /// Samples per pixel in the file: gray 1, RGB 3, palette 1, gray + alpha 2, RGBA 4.
        var samples: Int { [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][colorType] ?? 1 }
        var bitsPerPixel: Int { samples * bitDepth }
    }

    private static func readUInt32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    /// Inflates a zlib stream that must decode to exactly `expected` bytes.
    static func inflate(_ input: [UInt8], expected: Int, subject: String) throws -> [UInt8] {
        var stream = z_stream()
        guard inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw LeNetError("zlib could not start", subject: subject)
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: expected + 1)  // one spare byte detects excess data
        let status: Int32 = input.withUnsafeBufferPointer { inp in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: inp.baseAddress)
                stream.avail_in = uInt(inp.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        let produced = output.count - Int(stream.avail_out)
        switch status {
        case Z_STREAM_END where produced == expected:
            output.removeLast()
            return output
        case Z_STREAM_END where produced < expected:
            throw LeNetError("corrupt: the image data holds \(produced) bytes, expected \(expected)", subject: subject)
        case Z_STREAM_END, Z_OK, Z_BUF_ERROR:
            if produced > expected {
                throw LeNetError("corrupt: the image data holds more than the \(expected) bytes its size needs", subject: subject)
            }
            throw LeNetError("truncated: the compressed image data ends after \(produced) of \(expected) bytes", subject: subject)
        default:
            let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
            throw LeNetError("corrupt: the compressed image data is damaged (\(reason))", subject: subject)
        }
    }

    /// Undoes the row filters in place: each row starts with its filter type
    /// (0 none, 1 sub, 2 up, 3 average, 4 Paeth), which is left as it was.
    static func unfilter(_ raw: inout [UInt8], height: Int, rowBytes: Int, bytesPerPixel bpp: Int, subject: String) throws {
        let stride = rowBytes + 1
        try raw.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            for h in 0..<height {
                let row = base + h * stride + 1
                let previous: UnsafeMutablePointer<UInt8>? = h > 0 ? base + (h - 1) * stride + 1 : nil
                let filter = base[h * stride]
                switch filter {
                case 0:
                    break
                case 1:
                    var i = bpp
                    while i < rowBytes {
                        row[i] &+= row[i - bpp]
                        i += 1
                    }
                case 2:
                    if let previous { for i in 0..<rowBytes { row[i] &+= previous[i] } }
                case 3:
                    for i in 0..<rowBytes {
                        let left = i >= bpp ? Int(row[i - bpp]) : 0
                        let up = previous.map { Int($0[i]) } ?? 0
                        row[i] &+= UInt8((left + up) / 2)
                    }
                case 4:
                    for i in 0..<rowBytes {
                        let a = i >= bpp ? Int(row[i - bpp]) : 0
                        let b = previous.map { Int($0[i]) } ?? 0
                        let c = i >= bpp ? previous.map { Int($0[i - bpp]) } ?? 0 : 0
                        let p = a + b - c
                        let pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
                        row[i] &+= UInt8(pa <= pb && pa <= pc ? a : pb <= pc ? b : c)
                    }
                default:
                    throw LeNetError("corrupt: row \(h) has unknown filter type \(filter)", subject: subject)
                }
            }
        }
    }

    /// Filtered rows → 8-bit interleaved pixels.
    private static func expand(_ raw: [UInt8], _ header: Header, palette: [UInt8], paletteAlpha: [UInt8],
                               subject: String) throws -> PixelImage {
        let W = header.width, H = header.height, depth = header.bitDepth
        let rowBytes = (W * header.bitsPerPixel + 7) / 8
        if depth == 8 && header.colorType != 3 {
            let C = header.samples
            var pixels = [UInt8](repeating: 0, count: H * W * C)  // (H, W, C)
            for h in 0..<H {
                pixels.replaceSubrange(h * W * C..<(h + 1) * W * C, with: raw[h * (rowBytes + 1) + 1..<(h + 1) * (rowBytes + 1)])
            }
            return try PixelImage(width: W, height: H, channels: C, pixels: pixels)
        }
        // One sample per pixel of `depth` bits, most significant first: gray or a palette index.
        func sample(_ h: Int, _ w: Int) -> Int {
            let byte = Int(raw[h * (rowBytes + 1) + 1 + w * depth / 8])
            if depth == 8 { return byte }
            let shift = 8 - depth - (w * depth) % 8
            return (byte >> shift) & ((1 << depth) - 1)
        }
        if header.colorType == 0 {
            let scale = 255 / ((1 << depth) - 1)
            var pixels = [UInt8](repeating: 0, count: H * W)  // (H, W)
            for h in 0..<H { for w in 0..<W { pixels[h * W + w] = UInt8(sample(h, w) * scale) } }
            return try PixelImage(width: W, height: H, channels: 1, pixels: pixels)
        }
        let entries = palette.count / 3
        let C = paletteAlpha.isEmpty ? 3 : 4
        var pixels = [UInt8](repeating: 0, count: H * W * C)  // (H, W, C)
        for h in 0..<H {
            for w in 0..<W {
                let index = sample(h, w)
                guard index < entries else {
                    throw LeNetError("corrupt: pixel (\(w), \(h)) uses palette entry \(index) of \(entries)", subject: subject)
                }
                let out = (h * W + w) * C
                for c in 0..<3 { pixels[out + c] = palette[index * 3 + c] }
                if C == 4 { pixels[out + 3] = index < paletteAlpha.count ? paletteAlpha[index] : 255 }
            }
        }
        return try PixelImage(width: W, height: H, channels: C, pixels: pixels)
    }
}

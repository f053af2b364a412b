import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// PNG and PGM/PPM reading and writing, colour conversion and resizing.
/// The PNG files here are made by hand: chunks with a bitwise CRC-32 and
/// "stored" (uncompressed) deflate blocks, independent of zlib.
struct ImageFileTests {
    // MARK: - Hand-made PNG files

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let t = Array(type.utf8)
        return be32(UInt32(data.count)) + t + data + be32(crc32(t + data))
    }

    /// A zlib stream of one stored (uncompressed) deflate block.
    static func storedZlib(_ data: [UInt8]) -> [UInt8] {
        var a: UInt32 = 1, b: UInt32 = 0
        for x in data { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        let n = UInt16(data.count)
        return [0x78, 0x01, 0x01, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8(~n >> 8)] + data + be32(b << 16 | a)
    }

    /// A PNG file: IHDR, `extra` chunks, one IDAT holding `rows` (each with its
    /// filter byte first), IEND.
    static func png(width: Int, height: Int, depth: UInt8, color: UInt8, rows: [[UInt8]],
                    interlace: UInt8 = 0, extra: [[UInt8]] = []) -> [UInt8] {
        let header = be32(UInt32(width)) + be32(UInt32(height)) + [depth, color, 0, 0, interlace]
        return PNG.signature + chunk("IHDR", header) + extra.flatMap { $0 }
            + chunk("IDAT", storedZlib(rows.flatMap { $0 })) + chunk("IEND", [])
    }

    // MARK: - PNG

    @Test func testHandMadeRGBAndGrayAlphaAndRGBA() throws {
        let rgb = try PNG.decode(Self.png(width: 2, height: 2, depth: 8, color: 2,
                                          rows: [[0, 255, 0, 0, 0, 255, 0], [0, 0, 0, 255, 10, 20, 30]]), subject: "rgb")
        #expect([rgb.width, rgb.height, rgb.channels] as [Int] == [2, 2, 3])
        #expect(rgb.pixels == [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])

        let grayAlpha = try PNG.decode(Self.png(width: 2, height: 1, depth: 8, color: 4, rows: [[0, 200, 255, 100, 0]]), subject: "ga")
        #expect(grayAlpha.channels == 2)
        #expect(grayAlpha.pixels == [200, 255, 100, 0])

        let rgba = try PNG.decode(Self.png(width: 1, height: 1, depth: 8, color: 6, rows: [[0, 1, 2, 3, 4]]), subject: "rgba")
        #expect(rgba.channels == 4)
        #expect(rgba.pixels == [1, 2, 3, 4])
    }

    @Test func testAllFiveRowFilters() throws {
        // Rows filtered none/sub, up, average and Paeth, worked out by hand.
        let rows: [[UInt8]] = [
            [1, 10, 5, 5],  // sub: 10, 15, 20
            [2, 1, 1, 1],  // up: 11, 16, 21
            [3, 4, 3, 2],  // average: 4 + (0 + 11)/2 = 9, 3 + (9 + 16)/2 = 15, 2 + (15 + 21)/2 = 20
            [4, 1, 0, 255],  // Paeth: predicts up (9, 15, 20) each time: 10, 15, 19 (255 wraps)
            [0, 7, 8, 9],  // none
        ]
        let image = try PNG.decode(Self.png(width: 3, height: 5, depth: 8, color: 0, rows: rows), subject: "filters")
        #expect(image.pixels == [10, 15, 20, 11, 16, 21, 9, 15, 20, 10, 15, 19, 7, 8, 9])
        // Sub and Paeth on RGB step by a whole pixel (3 bytes).
        let rgb = try PNG.decode(Self.png(width: 2, height: 1, depth: 8, color: 2, rows: [[1, 10, 20, 30, 1, 2, 3]]), subject: "rgb sub")
        #expect(rgb.pixels == [10, 20, 30, 11, 22, 33])
    }

    @Test func testPalettesAndLowBitDepths() throws {
        let palette = Self.chunk("PLTE", [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9])
        // 2-bit indices 0, 1, 2, 3, 3 packed most significant first: 00 01 10 11 | 11 000000.
        let rgb = try PNG.decode(Self.png(width: 5, height: 1, depth: 2, color: 3, rows: [[0, 0b0001_1011, 0b1100_0000]],
                                          extra: [palette]), subject: "palette")
        #expect(rgb.channels == 3)
        #expect(rgb.pixels == [255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9, 9, 9, 9])
        // tRNS gives the first two entries alpha 0 and 128; the rest stay opaque.
        let rgba = try PNG.decode(Self.png(width: 3, height: 1, depth: 8, color: 3, rows: [[0, 0, 1, 3]],
                                           extra: [palette, Self.chunk("tRNS", [0, 128])]), subject: "tRNS")
        #expect(rgba.channels == 4)
        #expect(rgba.pixels == [255, 0, 0, 0, 0, 255, 0, 128, 9, 9, 9, 255])
        // 1-bit gray: 1 0 1 1 0 0 1 0 | 1 → 255 0 255 255 0 0 255 0 255.
        let bits = try PNG.decode(Self.png(width: 9, height: 1, depth: 1, color: 0, rows: [[0, 0b1011_0010, 0b1000_0000]]), subject: "1-bit")
        #expect(bits.pixels == [255, 0, 255, 255, 0, 0, 255, 0, 255])
        // 4-bit gray scales 0...15 to 0...255 (× 17).
        let nibbles = try PNG.decode(Self.png(width: 2, height: 1, depth: 4, color: 0, rows: [[0, 0x3F]]), subject: "4-bit")
        #expect(nibbles.pixels == [51, 255])
        // Ancillary chunks are skipped.
        let withText = try PNG.decode(Self.png(width: 1, height: 1, depth: 8, color: 0, rows: [[0, 42]],
                                               extra: [Self.chunk("tEXt", Array("Comment\u{0}hi".utf8))]), subject: "text")
        #expect(withText.pixels == [42])
    }

    @Test func testEncodeDecodeRoundTrip() throws {
        var rng = SeededGenerator(seed: 3)
        for channels in 1...4 {
            for (w, h) in [(1, 1), (7, 3), (32, 32), (33, 5)] {
                let pixels = (0..<w * h * channels).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let image = try PixelImage(width: w, height: h, channels: channels, pixels: pixels)
                let file = try PNG.encode(image)
                #expect(Array(file.prefix(8)) == PNG.signature)
                #expect(try PNG.decode(file, subject: "round trip") == image, "\(w)×\(h)×\(channels)")
                #expect(try PixelImage.decode(file, subject: "round trip") == image)
            }
        }
        // A real deflate stream compresses a flat image well.
        let flat = try PixelImage(width: 64, height: 64, channels: 3, pixels: [UInt8](repeating: 77, count: 64 * 64 * 3))
        #expect(try PNG.encode(flat).count < 300)
    }

    @Test func testPNGErrorsSayWhatIsWrong() throws {
        let good = Self.png(width: 2, height: 1, depth: 8, color: 0, rows: [[0, 1, 2]])
        #expect(throws: Never.self) { try PNG.decode(good, subject: "good.png") }
        // An interlace method PNG does not define.
        assertError("a.png", "interlace") {
            try PNG.decode(Self.png(width: 2, height: 1, depth: 8, color: 0, rows: [[0, 1, 2]], interlace: 2), subject: "a.png")
        }
        // 16-bit, but a row of 8-bit samples: too little image data.
        assertError("b.png", "image data") {
            try PNG.decode(Self.png(width: 1, height: 1, depth: 16, color: 0, rows: [[0, 1]]), subject: "b.png")
        }
        assertError("c.png", "truncated") { try PNG.decode(Array(good.prefix(good.count - 15)), subject: "c.png") }
        assertError("c2.png", "truncated") { try PNG.decode(Array(good.prefix(40)), subject: "c2.png") }
        var flipped = good
        flipped[30] ^= 0xFF  // IHDR's CRC (bytes 29...32): a critical chunk's CRC fails
        assertError("d.png", "CRC") { try PNG.decode(flipped, subject: "d.png") }
        var damaged = good
        damaged[damaged.count - 20] ^= 0xFF  // inside IDAT's zlib stream: its checksum fails first
        assertError("d2.png", "incorrect data check") { try PNG.decode(damaged, subject: "d2.png") }
        assertError("e.png", "not a PNG") { try PNG.decode(Array("hello, world".utf8), subject: "e.png") }
        assertError("f.png", "filter") {
            try PNG.decode(Self.png(width: 2, height: 1, depth: 8, color: 0, rows: [[7, 1, 2]]), subject: "f.png")
        }
        assertError("g.png", "Not enough image data") {
            try PNG.decode(Self.png(width: 2, height: 1, depth: 8, color: 0, rows: [[0]]), subject: "g.png")
        }
        assertError("h.png", "bit depth") {
            try PNG.decode(Self.png(width: 2, height: 1, depth: 3, color: 0, rows: [[0, 1]]), subject: "h.png")
        }
        assertError("i.png", "PLTE") {
            try PNG.decode(Self.png(width: 1, height: 1, depth: 8, color: 3, rows: [[0, 0]]), subject: "i.png")
        }
        assertError("j.png", "palette entry 5") {
            try PNG.decode(Self.png(width: 1, height: 1, depth: 8, color: 3, rows: [[0, 5]],
                                    extra: [Self.chunk("PLTE", [1, 2, 3])]), subject: "j.png")
        }
        // Found by Scripts/fuzz (FuzzPNG, out of memory): 72 bytes whose tEXt chunk declares
        // 1,766,015,824 bytes, which libpng 1.6.39 allocates before reading. Refused first.
        let bomb = try #require(Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAUAAAABAgMAAABrkIxgaUNDUHRFWHRQTFRF/wAAAPkA3HQd5KwAc1BMVABJbnRFTkSuQmCC"))
        assertError("bomb.png", "chunk 'tEXt' at byte 33 declares 1766015824 bytes, the file has 31 left") {
            try PNG.decode([UInt8](bomb), subject: "bomb.png")
        }
        assertError("k.png", "width is zero") {
            try PNG.decode(Self.png(width: 0, height: 1, depth: 8, color: 0, rows: [[0]]), subject: "k.png")
        }
    }

    // MARK: - PGM and PPM

    @Test func testPNMBinaryAndPlain() throws {
        let p5 = Array("P5\n# a comment\n3 1\n255\n".utf8) + [0, 128, 255]
        #expect(try PNM.decode(p5, subject: "p5").pixels == [0, 128, 255])
        let p6 = try PNM.decode(Array("P6 1 2 255 ".utf8) + [1, 2, 3, 4, 5, 6], subject: "p6")
        #expect([p6.width, p6.height, p6.channels] as [Int] == [1, 2, 3])
        #expect(p6.pixels == [1, 2, 3, 4, 5, 6])
        // Plain text, maxval 15: 0, 5, 15 → 0, 85, 255.
        let p2 = try PNM.decode(Array("P2\n3 1\n15\n0 5\n# mid-data comment\n15\n".utf8), subject: "p2")
        #expect(p2.pixels == [0, 85, 255])
        let p3 = try PNM.decode(Array("P3 1 1 255 10 20 30".utf8), subject: "p3")
        #expect(p3.pixels == [10, 20, 30])
        // 16-bit binary samples (maxval > 255) are big-endian and scaled.
        let wide = try PNM.decode(Array("P5 2 1 65535\n".utf8) + [0xFF, 0xFF, 0x80, 0x00], subject: "p5-16")
        #expect(wide.pixels == [255, 128])
        // Encoding and reading back.
        let image = try PixelImage(width: 2, height: 2, channels: 3, pixels: Array(0..<12))
        #expect(try PixelImage.decode(PNM.encode(image), subject: "round trip") == image)
        let gray = try PixelImage(width: 3, height: 1, channels: 1, pixels: [9, 8, 7])
        #expect(try PNM.decode(PNM.encode(gray), subject: "round trip") == gray)
    }

    @Test func testPNMErrors() throws {
        assertError("t.ppm", "truncated", "12") { try PNM.decode(Array("P6 2 2 255\n".utf8) + [1, 2, 3], subject: "t.ppm") }
        assertError("u.pgm", "truncated") { try PNM.decode(Array("P5 2".utf8), subject: "u.pgm") }
        assertError("v.pgm", "above maxval") { try PNM.decode(Array("P2 1 1 7 9".utf8), subject: "v.pgm") }
        assertError("w.pbm", "PBM") { try PNM.decode(Array("P4 1 1 ".utf8) + [0], subject: "w.pbm") }
        assertError("x.pgm", "number") { try PNM.decode(Array("P2 2 x 255".utf8), subject: "x.pgm") }
        assertError("y.pgm", "maxval") { try PNM.decode(Array("P5 1 1 0 ".utf8) + [0], subject: "y.pgm") }
        assertError("z.pgm", "truncated", "found 1") { try PNM.decode(Array("P2 2 1 255 4".utf8), subject: "z.pgm") }
        assertError("e.png", "empty") { try PixelImage.decode([], subject: "e.png") }
        assertError("j.jpg", "JPEG") { try PixelImage.decode([0xFF, 0xD8, 0xFF, 0xE0, 0, 0], subject: "j.jpg") }
        assertError("missing.png", "missing") { try PixelImage.read(path: "/nonexistent/missing.png") }
    }

    // MARK: - Conversion and resizing

    @Test func testChannelConversion() throws {
        let rgb = try PixelImage(width: 2, height: 1, channels: 3, pixels: [255, 0, 0, 10, 200, 30])
        // 0.299·255 = 76.2 → 76; 0.299·10 + 0.587·200 + 0.114·30 = 123.81 → 124.
        #expect(try rgb.converted(toChannels: 1).pixels == [76, 124])
        let gray = try PixelImage(width: 2, height: 1, channels: 1, pixels: [7, 250])
        #expect(try gray.converted(toChannels: 3).pixels == [7, 7, 7, 250, 250, 250])
        // Alpha over black: 200 at alpha 128 → (200·128 + 127) / 255 = 100.
        let rgba = try PixelImage(width: 1, height: 1, channels: 4, pixels: [200, 100, 50, 128])
        #expect(try rgba.converted(toChannels: 3).pixels == [100, 50, 25])
        let grayAlpha = try PixelImage(width: 2, height: 1, channels: 2, pixels: [200, 0, 200, 255])
        #expect(try grayAlpha.converted(toChannels: 1).pixels == [0, 200])
        #expect(try grayAlpha.converted(toChannels: 3).pixels == [0, 0, 0, 200, 200, 200])
        assertError("1 (gray) or 3") { try gray.converted(toChannels: 2) }
    }

    @Test func testResizeAreaAndBilinear() throws {
        // 4×4 → 2×2: each output is the mean of a 2×2 block.
        let big = try PixelImage(width: 4, height: 4, channels: 1, pixels: [
            0, 10, 100, 100,
            20, 30, 100, 100,
            0, 0, 255, 255,
            0, 4, 255, 255,
        ])
        #expect(try big.resized(width: 2, height: 2).pixels == [15, 100, 1, 255])
        // 3 → 2 columns: outputs cover [0, 1.5) and [1.5, 3): (0 + 0.5·30)/1.5 = 10, (0.5·30 + 60)/1.5 = 50.
        let three = try PixelImage(width: 3, height: 1, channels: 1, pixels: [0, 30, 60])
        #expect(try three.resized(width: 2, height: 1).pixels == [10, 50])
        // 2 → 4 bilinear (align_corners=False): sources −0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
        let two = try PixelImage(width: 2, height: 1, channels: 3, pixels: [0, 100, 200, 100, 100, 0])
        #expect(try two.resized(width: 4, height: 1).pixels == [0, 100, 200, 25, 100, 150, 75, 100, 50, 100, 100, 0])
        // Same size: unchanged; weights always sum to 1.
        #expect(try big.resized(width: 4, height: 4) == big)
        for (n, m) in [(5, 3), (100, 32), (32, 100), (7, 7), (1, 4), (4, 1)] {
            for taps in PixelImage.resamplingWeights(from: n, to: m) {
                #expect(abs((taps.reduce(0) { $0 + $1.weight }) - 1) <= 1e-5, "\(n) → \(m)")
            }
        }
        // A constant image stays constant at any size.
        let flat = try PixelImage(width: 37, height: 23, channels: 3, pixels: [UInt8](repeating: 99, count: 37 * 23 * 3))
        #expect(Set(try flat.resized(width: 32, height: 32).pixels) == [99])
        #expect(Set(try flat.resized(width: 64, height: 50).pixels) == [99])
    }

    @Test func testPlanarAndInterleavedAgree() throws {
        let planar: [UInt8] = [1, 2, 3, 4, 10, 20, 30, 40, 100, 200, 250, 255]  // (3, 2, 2)
        let image = try PixelImage(planar: planar, channels: 3, height: 2, width: 2)
        #expect(image.pixels == [1, 10, 100, 2, 20, 200, 3, 30, 250, 4, 40, 255])
        #expect(image.planar == planar)
    }
}

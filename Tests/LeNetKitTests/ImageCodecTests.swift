import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// JPEG through libjpeg-turbo against the bytes Pillow decodes, and what
/// libpng reads that the hand-written decoder did not: 16-bit samples and
/// Adam7 interlacing.
struct ImageCodecTests {
    /// The fixtures of Scripts/make_image_fixtures.py: NAME.jpg and the
    /// (H, W, C) bytes Pillow decoded from it, NAME.pillow.
    static let jpegFixtures = ["baseline-420", "baseline-422", "baseline-444", "progressive", "gray",
                               "gray-progressive", "cmyk", "restart"]

    static func fixture(_ name: String, _ ext: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures/images"),
                               "Fixtures/images/\(name).\(ext) is missing")
        return [UInt8](try Data(contentsOf: url))
    }

    // MARK: - JPEG

    /// Bitwise: Pillow decodes with libjpeg-turbo too, with the same
    /// defaults (the accurate integer IDCT, smooth upsampling), and both are
    /// integer arithmetic that libjpeg-turbo's SIMD and C paths compute
    /// identically. A CMYK file is C·K/255 per channel in both.
    @Test(arguments: jpegFixtures)
    func testJPEGDecodesToPillowsBytes(_ name: String) throws {
        let file = try Self.fixture(name, "jpg")
        let pillow = try Self.fixture(name, "pillow")
        let image = try PixelImage.decode(file, subject: "\(name).jpg")
        #expect(image.channels == (name.hasPrefix("gray") ? 1 : 3))
        #expect(image.pixels.count == pillow.count)
        let differing = zip(image.pixels, pillow).filter { $0 != $1 }.count
        #expect(differing == 0, "\(name): \(differing) of \(pillow.count) samples differ from Pillow's")
        #expect(JPEG.isJPEG(file))
    }

    @Test func testJPEGSizesFromTheHeader() throws {
        let image = try JPEG.decode(try Self.fixture("baseline-420", "jpg"), subject: "a.jpg")
        #expect([image.width, image.height] as [Int] == [37, 23])
        let progressive = try JPEG.decode(try Self.fixture("progressive", "jpg"), subject: "p.jpg")
        #expect([progressive.width, progressive.height] as [Int] == [40, 29])
    }

    @Test func testBadJPEGsSayWhatIsWrong() throws {
        let good = try Self.fixture("baseline-420", "jpg")
        // Cut inside the entropy-coded data: libjpeg would pad it with a
        // fake end marker and warn; here that is an error.
        assertError("cut.jpg", "JPEG") { try JPEG.decode(Array(good.prefix(good.count / 2)), subject: "cut.jpg") }
        assertError("header.jpg", "JPEG") { try JPEG.decode(Array(good.prefix(20)), subject: "header.jpg") }
        assertError("not.jpg", "not a JPEG") { try JPEG.decode(Array("hello".utf8), subject: "not.jpg") }
        // A start-of-frame that declares 65,000 × 65,000 pixels.
        var huge = good
        let sof = try #require((0..<huge.count - 9).first { huge[$0] == 0xFF && huge[$0 + 1] == 0xC0 })
        huge[sof + 5] = 0xFD; huge[sof + 6] = 0xE8  // height 65,000
        huge[sof + 7] = 0xFD; huge[sof + 8] = 0xE8  // width 65,000
        assertError("huge.jpg", "65000×65000", "more than") { try JPEG.decode(huge, subject: "huge.jpg") }
        // Damage in a Huffman table: corrupt, whatever libjpeg calls it.
        var damaged = good
        let dht = try #require((0..<damaged.count - 40).first { damaged[$0] == 0xFF && damaged[$0 + 1] == 0xC4 })
        for i in dht + 5..<dht + 21 { damaged[i] = 0xFF }
        assertError("dht.jpg", "cannot decode the JPEG image") { try JPEG.decode(damaged, subject: "dht.jpg") }
    }

    // MARK: - PNG through libpng

    /// The 16-bit samples scale to 8 bits with rounding: round(v · 255 / 65535).
    @Test func testSixteenBitPNG() throws {
        let values: [UInt16] = [0x0000, 0xFFFF, 0x1234, 0x8080, 0x7F00, 0x00FF]
        let expected = values.map { UInt8((Double($0) * 255 / 65535).rounded()) }
        #expect(expected == [0, 255, 18, 128, 127, 1])
        let bytes = values.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        let gray = try PNG.decode(ImageFileTests.png(width: 6, height: 1, depth: 16, color: 0, rows: [[0] + bytes]),
                                  subject: "gray16")
        #expect(gray.channels == 1)
        #expect(gray.pixels == expected)
        let rgb = try PNG.decode(ImageFileTests.png(width: 2, height: 1, depth: 16, color: 2, rows: [[0] + bytes]),
                                 subject: "rgb16")
        #expect(rgb.channels == 3)
        #expect(rgb.pixels == expected)
        // RGBA 16: alpha scales the same way.
        let rgba = try PNG.decode(ImageFileTests.png(width: 1, height: 1, depth: 16, color: 6, rows: [[0] + bytes.prefix(8)]),
                                  subject: "rgba16")
        #expect(rgba.pixels == Array(expected.prefix(4)))
    }

    /// Adam7: the seven passes of a 5 × 6 gray image, written by hand, give
    /// the pixels back in place.
    @Test func testInterlacedPNG() throws {
        let width = 5, height = 6
        let pixels = (0..<width * height).map { UInt8($0 * 7 % 256) }
        // (x0, y0, dx, dy) of each pass.
        let passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        var rows: [[UInt8]] = []
        for (x0, y0, dx, dy) in passes {
            let xs = Array(stride(from: x0, to: width, by: dx)), ys = Array(stride(from: y0, to: height, by: dy))
            guard !xs.isEmpty, !ys.isEmpty else { continue }  // an empty pass has no rows at all
            for y in ys { rows.append([0] + xs.map { pixels[y * width + $0] }) }
        }
        let image = try PNG.decode(ImageFileTests.png(width: width, height: height, depth: 8, color: 0, rows: rows,
                                                      interlace: 1), subject: "adam7")
        #expect([image.width, image.height, image.channels] as [Int] == [width, height, 1])
        #expect(image.pixels == pixels)
    }

    @Test func testPNGDeclaringTooManyPixelsIsRefused() {
        // 16,384 × 16,384 is 2^28 pixels, above the 2^26 limit; libpng's
        // own limits (2^24 a side) let it through to ours.
        assertError("big.png", "more than") {
            try PNG.decode(ImageFileTests.png(width: 16384, height: 16384, depth: 8, color: 0, rows: [[0, 0]]), subject: "big.png")
        }
    }
}

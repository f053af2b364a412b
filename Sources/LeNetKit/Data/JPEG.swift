// JPEG reading through libjpeg-turbo (CImageCodecs holds the C, and catches
// libjpeg's longjmp errors there). libjpeg's default decoder, the accurate
// integer IDCT with smooth chroma upsampling, is the one Pillow and
// torchvision use, so a JPEG gives the bytes Pillow gives.
import CImageCodecs

/// Decodes JPEG images.
enum JPEG {
    /// The most scans a progressive file may hold. Encoders write about 10;
    /// each scan is a pass over the whole image, so a small file of
    /// thousands of scans would take minutes to decode.
    static let maximumScans = 500

    /// Whether `bytes` start with a JPEG's start-of-image marker.
    static func isJPEG(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
    }

    /// Decodes a JPEG file held in memory, baseline or progressive.
    /// - Parameters:
    ///   - bytes: the whole file.
    ///   - subject: its name, for error messages.
    /// - Returns: 1 channel for a gray file, 3 (RGB) otherwise; CMYK files
    ///   are converted to RGB.
    /// - Throws: `LeNetError` (subject `subject`) with libjpeg's message
    ///   when the file is truncated or corrupt (data libjpeg would warn
    ///   about and go on from counts as corrupt), has more than
    ///   `PNG.maximumPixels` pixels or `maximumScans` scans.
    static func decode(_ bytes: [UInt8], subject: String) throws -> PixelImage {
        guard isJPEG(bytes) else { throw LeNetError("not a JPEG file (no start-of-image marker)", subject: subject) }
        var image = lk_image()
        let status = bytes.withUnsafeBufferPointer { file in
            lk_jpeg_decode(file.baseAddress, file.count, PNG.maximumPixels, Int32(maximumScans), &image)
        }
        return try DecodedImage.take(&image, status: status, format: "JPEG", subject: subject)
    }
}

import Foundation

/// Image files classified with a checkpoint, as `lenet predict` does it:
/// every file read and prepared before any result (a bad one stops the
/// run before any output), then each image's top classes, or, with
/// `number`, the row of digits it holds.
@_spi(CLI) public struct PredictionRun {
    /// The images' paths, in order.
    public let files: [String]
    /// One reading per image, or a number's digits per image.
    public let readings: [[ImageReading]]
    /// Whether `readings` are numbers' digits.
    public let number: Bool
    private let images: [PixelImage]
    private let weights: String

    /// - Parameters:
    ///   - classifier: the checkpoint's classifier (`Classifier(weights:)`).
    ///   - weights: the checkpoint's path, which the JSON names.
    ///   - files: image files: JPEG, PNG, PPM or PGM.
    ///   - top: classes per image (per digit with `number`).
    ///   - number: read each image as a row of digits.
    ///   - show: a directory for what the network saw, as PNG files.
    /// - Throws: `LeNetError` naming the file or option at fault.
    public init(classifier: Classifier, weights: String, files: [String], top: Int = 3, number: Bool = false,
                show: String? = nil) throws {
        guard !files.isEmpty else { throw LeNetError("give at least one image file", subject: "predict") }
        guard top > 0 else { throw LeNetError("must be > 0, got \(top)", option: .top) }
        let images = try files.map { try PixelImage.read(path: $0) }
        readings = number
            ? try zip(files, images).map { try classifier.readNumber($1, top: top, name: $0).digits }
            : try classifier.read(images, top: top, names: files).map { [$0] }
        if let show { try PredictionImages.write(readings, of: files, number: number, to: show) }
        (self.files, self.images, self.number, self.weights) = (files, images, number, weights)
    }

    /// `{"predictions": [...], "weights": path}`, keys sorted, one line:
    /// what `lenet predict --json` prints.
    public func json() throws -> String {
        try PredictionRecord.json(weights: weights, records: zip(files, zip(images, readings)).map { path, item in
            PredictionRecord(file: path, image: item.0, readings: item.1, number: number)
        })
    }

    /// "cat.jpg: cat 91.0%, dog 5.2%, deer 1.1%" per image; for a number,
    /// the number, then each digit's box and classes on a line of its own.
    public var lines: [String] {
        func scores(_ r: ImageReading) -> String {
            r.scores.map { String(format: "%@ %.1f%%", $0.name, $0.probability * 100) }.joined(separator: ", ")
        }
        return zip(files, readings).flatMap { path, reading -> [String] in
            guard number else { return ["\(path): " + (reading.first.map(scores) ?? "")] }
            return ["\(path): " + reading.map { $0.scores.first?.name ?? "" }.joined()]
                + reading.map { "  \($0.box.map { "\($0)" } ?? ""): " + scores($0) }
        }
    }
}

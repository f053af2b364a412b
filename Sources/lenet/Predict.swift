import ArgumentParser
import Foundation
import LeNetKit

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify your own images (JPEG, PNG, PPM, PGM) with a checkpoint: the top classes and their probabilities.",
        discussion: """
            Each image is converted to the model's channels (alpha over black, color to gray or gray to color), \
            resized to its input (32×32), and normalized as the training data were (the checkpoint's metadata). \
            Class names come from the checkpoint (written by `lenet train`), else from the dataset it names, else 0…9.
            """)

    @Option(help: "The weights (safetensors), from `lenet train --output` or PyTorch's state_dict.")
    var weights: String

    @Option(help: "The network (a built-in name or a JSON description), overriding the file's (default: its 'network' metadata, else its model's name or tensor names).")
    var model: String?

    @Option(help: "How many classes to print per image.")
    var top = 3

    @Flag(help: "Print one JSON object instead of lines.")
    var json = false

    @Option(help: ArgumentHelp("Threads that run parts of each batch at once (default: all cores).",
                               discussion: threadsDiscussion))
    var threads: Int?

    @Argument(help: "Image files: JPEG (baseline, progressive; colour, gray, CMYK), PNG (any colour type and bit depth, interlaced or not), PPM or PGM (P2, P3, P5, P6).")
    var images: [String] = []

    func run() throws {
        guard !images.isEmpty else { throw LeNetError("give at least one image file", subject: "predict") }
        guard top > 0 else { throw LeNetError("must be > 0, got \(top)", subject: "--top") }
        let threads = try checkThreads(threads)
        let classifier = try Classifier(weights: weights, description: model.map { try modelDescription($0, forCheckpoint: weights) })
        classifier.network.threads = threads
        // Read every file first, so a bad one stops the command before any output.
        let pixels = try images.map { try PixelImage.read(path: $0) }
        let results = try classifier.classify(pixels, top: top)
        if json {
            let predictions: [[String: Any]] = zip(images, zip(pixels, results)).map { path, item in
                [
                    "file": path,
                    "width": item.0.width, "height": item.0.height,
                    "top": item.1.map { ["class": $0.name, "index": $0.index, "probability": $0.probability] as [String: Any] },
                ]
            }
            let object: [String: Any] = ["weights": weights, "predictions": predictions]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for (path, scores) in zip(images, results) {
            print("\(path): " + scores.map { String(format: "%@ %.1f%%", $0.name, $0.probability * 100) }.joined(separator: ", "))
        }
    }
}

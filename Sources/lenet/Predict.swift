import ArgumentParser
import Foundation
import LeNetKit

extension ImagePreprocessing: ExpressibleByArgument {}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify your own images (JPEG, PNG, PPM, PGM) with a checkpoint: the top classes and their probabilities.",
        discussion: """
            A checkpoint trained on MNIST finds the digit in each image (dark ink on paper or light on dark, \
            anywhere in a photo or scan) and lays it out as MNIST's digits are: fit to 20×20, centred by its centre \
            of mass in 28×28, padded to the input. Any other checkpoint converts each image to the model's channels \
            (alpha over black, color to gray or gray to color) and resizes it to its input. Then the image is \
            normalized as the training data were (the checkpoint's metadata). Class names come from the checkpoint \
            (written by `lenet train`), else from the dataset it names, else 0…9.
            """)

    @Option(help: "The weights (safetensors), from `lenet train --output` or PyTorch's state_dict.")
    var weights: String

    @Option(help: "The network (a built-in name or a JSON description), overriding the file's (default: its 'network' metadata, else its model's name or tensor names).")
    var model: String?

    @Option(help: "How many classes to print per image (per digit with --number).")
    var top = 3

    @Option(help: "digit (find the digit, MNIST's layout) or resize (the whole image) (default: the checkpoint's; digit for MNIST).")
    var preprocess: ImagePreprocessing?

    @Flag(help: "Read each image as a row of digits (a zip code, an amount) and print the number.")
    var number = false

    @Option(help: "Write what the network saw for each image (each digit with --number) as PNG files in this directory.")
    var show: String?

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
        if let preprocess { classifier.preprocessing = preprocess }
        // Read and prepare every file first, so a bad one stops the command before any output.
        let pixels = try images.map { try PixelImage.read(path: $0) }
        let readings: [[ImageReading]] = number
            ? try zip(images, pixels).map { try classifier.readNumber($1, top: top, name: $0).digits }
            : try classifier.read(pixels, top: top, names: images).map { [$0] }
        if let show { try PredictionImages.write(readings, of: images, number: number, to: show) }
        if json {
            let records = zip(images, zip(pixels, readings)).map { path, item in
                PredictionRecord(file: path, image: item.0, readings: item.1, number: number)
            }
            print(try PredictionRecord.json(weights: weights, records: records))
            return
        }
        for (path, reading) in zip(images, readings) {
            func scores(_ r: ImageReading) -> String {
                r.scores.map { String(format: "%@ %.1f%%", $0.name, $0.probability * 100) }.joined(separator: ", ")
            }
            if number {
                print("\(path): " + reading.map { $0.scores[0].name }.joined())
                for r in reading { print("  \(r.box.map { "\($0)" } ?? ""): " + scores(r)) }
            } else {
                print("\(path): " + scores(reading[0]))
            }
        }
    }
}

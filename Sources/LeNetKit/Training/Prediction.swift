import Foundation  // libm (expf, logf, …) on every platform
// Classifying a user's own images with a trained checkpoint: each image is
// brought to the model's channels and size, stored as the same (C, H, W)
// bytes a dataset holds, and normalized by the same code and values that
// training used, so a photo and a test image reach the network alike.

/// A class and the probability the network gives it.
public struct ClassScore: Sendable, Equatable {
    /// The class index (the label).
    public var index: Int
    /// The class name.
    public var name: String
    /// The softmax probability, 0...1.
    public var probability: Double

    /// - Parameters:
    ///   - index: the class index.
    ///   - name: the class name.
    ///   - probability: its softmax probability.
    init(index: Int, name: String, probability: Double) {
        self.index = index
        self.name = name
        self.probability = probability
    }
}

/// What a classifier made of one image (or one digit of a number).
public struct ImageReading: Sendable, Equatable {
    /// The most probable classes, most probable first.
    public var scores: [ClassScore]
    /// Where the digit was found, in the image's pixels (`.digit`
    /// preprocessing); nil when the whole image was resized.
    public var box: PixelBox?
    /// What the network saw, before normalization: its input's size and channels.
    public var input: PixelImage
}

/// A written number read digit by digit.
public struct NumberReading: Sendable, Equatable {
    /// The digits' class names, left to right ("2026").
    public var text: String
    /// Each digit: its classes, box and input, left to right.
    public var digits: [ImageReading]
}

/// A trained network with what it needs to classify new images: its
/// normalization, class names and preprocessing.
///
/// ```swift
/// let classifier = try Classifier(weights: "cifar.safetensors")
/// let image = try PixelImage.read(path: "cat.png")
/// for score in try classifier.classify([image])[0] { print(score.name, score.probability) }
/// ```
///
/// A network trained on MNIST finds the digit in a photo or scan first
/// (`DigitPreprocessing`), and reads a row of digits with `readNumber(_:)`.
public final class Classifier {
    /// The network, loaded from the checkpoint.
    public let network: Network
    /// The normalization the network was trained with.
    public let normalization: Normalization
    /// The name of each output class.
    public let classNames: [String]
    /// How an image reaches the network's input; a checkpoint trained on
    /// MNIST says `.digit`.
    public var preprocessing: ImagePreprocessing
    /// How digits are found and laid out, for `.digit` and `readNumber(_:)`.
    var digitPreprocessing = DigitPreprocessing()

    /// - Parameters:
    ///   - network: a trained network.
    ///   - normalization: as in training; must fit the network's input channels.
    ///   - classNames: one per output class.
    ///   - preprocessing: how images reach the network's input.
    /// - Throws: `LeNetError` when the normalization or the names do not fit the network.
    public init(network: Network, normalization: Normalization, classNames: [String],
                preprocessing: ImagePreprocessing = .resize) throws {
        try network.checkClassifies()
        guard classNames.count == network.outputShape.count else {
            throw LeNetError("\(classNames.count) class names for a network with \(network.outputShape.count) outputs", subject: "classifier")
        }
        let shape = network.inputShape
        guard shape.channels == 1 || shape.channels == 3 else {
            throw LeNetError("the network takes \(shape.channels) channels; images have 1 or 3", subject: "classifier")
        }
        self.network = network
        self.normalization = try normalization.validated(channels: network.inputShape.channels)
        self.classNames = classNames
        self.preprocessing = preprocessing
    }

    /// A classifier from a checkpoint: its model, normalization, class
    /// names (see `Checkpoint.classNames(metadata:classes:)`) and
    /// preprocessing (`Checkpoint.preprocessing(metadata:subject:)`).
    /// - Parameters:
    ///   - path: a safetensors file from `lenet train` or PyTorch.
    ///   - description: the network, overriding what the file says.
    /// - Throws: `LeNetError` naming the file when it cannot be loaded.
    public convenience init(weights path: String, description: NetworkDescription? = nil) throws {
        let loaded = try Checkpoint.loadNetwork(path: path, description: description)
        try self.init(network: loaded.network, normalization: loaded.normalization,
                      classNames: Checkpoint.classNames(metadata: loaded.metadata, classes: loaded.network.outputShape.count),
                      preprocessing: Checkpoint.preprocessing(metadata: loaded.metadata, subject: path))
    }

    /// The `top` most probable classes of each image, most probable first.
    ///
    /// With `.resize`, each image is converted to the network's channels
    /// (alpha over black; gray ↔ RGB) and resized to its input size (area
    /// average when shrinking, bilinear when growing) with `PixelImage`;
    /// with `.digit`, the digit is found and laid out as MNIST's are
    /// (`DigitPreprocessing.digit(in:inputShape:)`). Then it is normalized
    /// exactly as the training data were.
    /// - Parameters:
    ///   - images: any sizes and channel counts.
    ///   - top: how many classes to return per image (at most the number of classes).
    /// - Throws: `LeNetError` when `top` is not positive, or (`.digit`) an
    ///   image holds no ink.
    public func classify(_ images: [PixelImage], top: Int = 3) throws -> [[ClassScore]] {
        try read(images, top: top).map(\.scores)
    }

    /// `classify(_:top:)` with where each digit was found and what the network saw.
    ///
    /// The images are classified as one batch, as `classify(_:top:)` does,
    /// so the two give the same probabilities bit for bit.
    /// - Parameters:
    ///   - images: any sizes and channel counts.
    ///   - top: how many classes to return per image.
    ///   - names: what to call each image in an error about it (its file),
    ///     one per image; "image" when nil.
    /// - Throws: as `classify(_:top:)`, a problem with an image named as `names` says.
    public func read(_ images: [PixelImage], top: Int = 3, names: [String]? = nil) throws -> [ImageReading] {
        guard top > 0 else { throw LeNetError("must be > 0, got \(top)", subject: "classify(top:)") }
        let prepared = try images.indices.map { i -> (input: PixelImage, box: PixelBox?) in
            try Self.naming(names.flatMap { $0.indices.contains(i) ? $0[i] : nil }) {
                switch preprocessing {
                case .resize:
                    return (try images[i].converted(toChannels: network.inputShape.channels)
                        .resized(width: network.inputShape.width, height: network.inputShape.height), nil)
                case .digit:
                    let digit = try digitPreprocessing.digit(in: images[i], inputShape: network.inputShape)
                    return (try digit.input.converted(toChannels: network.inputShape.channels), digit.box)
                }
            }
        }
        // A digit's centre of mass is placed to the nearest pixel, so it is
        // read as the average over its layout and its eight one-pixel shifts.
        let scores = preprocessing == .digit ? try classifyShifted(inputs: prepared.map(\.input), top: top)
            : try classify(inputs: prepared.map(\.input), top: top)
        return zip(prepared, scores).map { ImageReading(scores: $1, box: $0.box, input: $0.input) }
    }

    /// The digits written in a row in `image` (a zip code, an amount), read
    /// left to right (`DigitPreprocessing.digits(in:inputShape:)`), whatever
    /// `preprocessing` is.
    /// - Parameters:
    ///   - image: a photo or scan of the number.
    ///   - top: how many classes to keep per digit; `text` uses the first.
    ///   - name: what to call the image in an error about it (its file); "image" when nil.
    /// - Throws: `LeNetError` when `top` is not positive or the image holds
    ///   no ink, a problem with the image named as `name` says.
    public func readNumber(_ image: PixelImage, top: Int = 3, name: String? = nil) throws -> NumberReading {
        guard top > 0 else { throw LeNetError("must be > 0, got \(top)", subject: "readNumber(top:)") }
        let channels = network.inputShape.channels
        let found = try Self.naming(name) {
            try digitPreprocessing.digits(in: image, inputShape: network.inputShape) { inputs in
                let c = try inputs.map { try $0.converted(toChannels: channels) }
                return try self.classifyShifted(inputs: c, top: 1).map { $0[0] }
            }
        }
        let inputs = try found.map { try $0.input.converted(toChannels: network.inputShape.channels) }
        let scores = try classifyShifted(inputs: inputs, top: top)
        let digits = zip(found, zip(inputs, scores)).map { ImageReading(scores: $1.1, box: $0.box, input: $1.0) }
        return NumberReading(text: digits.map { $0.scores[0].name }.joined(), digits: digits)
    }

    /// `body`, with an error about the image (subject "image") given the
    /// image's `name` (its file) as its subject, when there is one.
    private static func naming<T>(_ name: String?, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as LeNetError where error.subject == "image" {
            if let name { error.subject = name }
            throw error
        }
    }

    /// `classify(inputs:top:)` averaged over the input and its eight shifts
    /// by one pixel (the 3×3 neighbourhood of where the centring put it).
    func classifyShifted(inputs: [PixelImage], top: Int) throws -> [[ClassScore]] {
        guard top > 0 else { throw LeNetError("must be > 0, got \(top)", subject: "classify(top:)") }
        let shifts = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)]
        let K = classNames.count
        var results: [[ClassScore]] = []
        // A few hundred inputs at a time, so the shifted copies stay small.
        for first in stride(from: 0, to: inputs.count, by: 256) {
            let chunk = inputs[first..<min(first + 256, inputs.count)]
            var shifted: [PixelImage] = []
            for input in chunk {
                for (dx, dy) in shifts { shifted.append(try input.shifted(dx: dx, dy: dy)) }
            }
            let all = try classify(inputs: shifted, top: K)
            for i in 0..<chunk.count {
                var p = [Double](repeating: 0, count: K)  // (K)
                for j in 0..<shifts.count { for score in all[i * shifts.count + j] { p[score.index] += score.probability / Double(shifts.count) } }
                results.append(ranked(p, top: top, total: 1))
            }
        }
        return results
    }

    /// The `top` classes by `p` (ties to the lower index), each with
    /// probability `p / total`.
    func ranked(_ p: [Double], top: Int, total: Double) -> [ClassScore] {
        let order = p.indices.sorted { p[$0] > p[$1] || (p[$0] == p[$1] && $0 < $1) }
        return order.prefix(top).map { ClassScore(index: $0, name: classNames[$0], probability: p[$0] / total) }
    }

    /// Classifies images already at the network's input size and channels.
    func classify(inputs: [PixelImage], top: Int) throws -> [[ClassScore]] {
        guard top > 0 else { throw LeNetError("must be > 0, got \(top)", subject: "classify(top:)") }
        guard !inputs.isEmpty else { return [] }
        let shape = network.inputShape
        var bytes: [UInt8] = []  // (N, C, H, W)
        bytes.reserveCapacity(inputs.count * shape.count)
        for input in inputs { bytes += input.planar }
        // Labels are not used; the dataset is the path to the training normalization.
        let dataset = try ImageDataset(name: "images", channels: shape.channels, height: shape.height, width: shape.width,
                                       images: bytes, labels: [UInt8](repeating: 0, count: inputs.count),
                                       classNames: ["image"])
        let K = network.outputShape.count
        let batch = 64
        try network.reserve(batch: min(inputs.count, batch), backward: false)
        let labels = try IndexBuffer(count: min(inputs.count, batch), name: "labels")  // (N)
        var results: [[ClassScore]] = []
        var first = 0
        while first < inputs.count {
            let n = min(batch, inputs.count - first)
            let logits = try network.infer(batch: n) { chunk, x in  // (N, K)
                dataset.fill(batch: first + chunk.lowerBound..<first + chunk.upperBound, normalization: normalization,
                             into: x, labels: labels.pointer + chunk.lowerBound)
            }
            for s in 0..<n {
                let row = logits + s * K
                var zmax = row[0]
                for k in 1..<K { zmax = max(zmax, row[k]) }
                var sum = 0.0
                var p = [Double](repeating: 0, count: K)  // (K)
                for k in 0..<K { p[k] = exp(Double(row[k] - zmax)); sum += p[k] }
                results.append(ranked(p, top: top, total: sum))
            }
            first += n
        }
        return results
    }
}

/// One image's predictions as `lenet predict --json` writes them.
struct PredictionRecord: Encodable, Sendable {
    /// One class's line.
    struct Score: Encodable, Sendable {
        /// The class name.
        var `class`: String
        /// Its index.
        var index: Int
        /// Its softmax probability.
        var probability: Double
    }

    /// One digit of a number: where it is and its classes.
    struct Digit: Encodable, Sendable {
        /// Where the digit's ink is, in the image's pixels.
        var box: PixelBox?
        /// Its classes, most probable first.
        var top: [Score]
    }

    /// The image file.
    var file: String
    /// The image's columns and rows.
    var width: Int, height: Int
    /// The image's classes, most probable first (not for a number).
    var top: [Score]?
    /// Where the digit was found (`.digit` preprocessing, not for a number).
    var box: PixelBox?
    /// The number read (`Classifier.readNumber`).
    var number: String?
    /// The number's digits, left to right.
    var digits: [Digit]?

    /// - Parameters:
    ///   - file: the image's path.
    ///   - image: the image as read.
    ///   - readings: one reading, or a number's digits.
    ///   - number: whether `readings` are a number's digits.
    init(file: String, image: PixelImage, readings: [ImageReading], number: Bool) {
        func scores(_ r: ImageReading) -> [Score] {
            r.scores.map { Score(class: $0.name, index: $0.index, probability: $0.probability) }
        }
        self.file = file
        (width, height) = (image.width, image.height)
        if number {
            self.number = readings.map { $0.scores.first?.name ?? "" }.joined()
            digits = readings.map { Digit(box: $0.box, top: scores($0)) }
        } else if let first = readings.first {
            top = scores(first)
            box = first.box
        }
    }

    /// `{"predictions": [...], "weights": path}`, keys sorted, one line.
    static func json(weights: String, records: [PredictionRecord]) throws -> String {
        struct Output: Encodable {
            var predictions: [PredictionRecord]
            var weights: String
        }
        return try JSONLine.encode(Output(predictions: records, weights: weights))
    }

}

/// Writes what a network saw, so a user can see why an image was misread.
enum PredictionImages {
    /// The PNG file names for `readings` of `files`: the file's name
    /// without its extension, `-1`, `-2`, … for a number's digits, and,
    /// when two names would be the same, each file's position in front of all.
    static func names(_ readings: [[ImageReading]], of files: [String], number: Bool) -> [[String]] {
        let stems = files.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent }
        func names(_ stems: [String]) -> [[String]] {
            zip(stems, readings).map { stem, reading in number ? reading.indices.map { "\(stem)-\($0 + 1).png" } : ["\(stem).png"] }
        }
        let plain = names(stems)
        let all = plain.flatMap { $0 }
        guard Set(all).count < all.count else { return plain }
        // "i-" in front of every name: no two can then be the same.
        return names(stems.indices.map { "\($0 + 1)-\(stems[$0])" })
    }

    /// Writes each reading's `input` as a PNG in `directory` (created when
    /// missing), named by `names(_:of:number:)`.
    /// - Throws: `LeNetError` naming the directory or file when it cannot be written.
    static func write(_ readings: [[ImageReading]], of files: [String], number: Bool, to directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LeNetError("cannot create the directory: \(error.localizedDescription)", subject: directory)
        }
        for (names, reading) in zip(Self.names(readings, of: files, number: number), readings) {
            for (name, r) in zip(names, reading) {
                try FileIO.writeAtomically(try PNG.encode(r.input), to: DataFiles.join(directory, name))
            }
        }
    }
}

import Foundation
import LeNetKit

/// Finds the dataset a command should use: `--data` and `--dataset`, or
/// what ./data holds. (The command line's, not the library's: a library
/// user passes a directory to `DatasetKind.load`.)
enum DataLocation {
    /// Where `lenet` looks when no `--data` is given.
    static let defaultDirectory = "data"

    /// What to do when no data is found: how to get CIFAR-10 and Fashion-MNIST.
    static let howToGetData = """
        no dataset found in ./data. Get CIFAR-10 (binary version) from \
        https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and extract it into ./data \
        (tar xzf cifar-10-binary.tar.gz -C data, giving ./data/cifar-10-batches-bin/), or install \
        Fashion-MNIST with `apt-get install dataset-fashion-mnist` and pass --data /usr/share/datasets/fashion-mnist
        """

    /// The directory and dataset kind to use.
    /// - Parameters:
    ///   - directory: `--data`, or nil to look in ./data.
    ///   - kind: `--dataset`, or nil to detect it from the files.
    /// - Throws: `LeNetError` naming the directory when it is missing or
    ///   holds no dataset LeNetKit knows.
    static func resolve(directory: String?, kind: DatasetKind?) throws -> (directory: String, kind: DatasetKind) {
        var isDirectory: ObjCBool = false
        guard let directory else {
            guard FileManager.default.fileExists(atPath: defaultDirectory, isDirectory: &isDirectory), isDirectory.boolValue,
                  let found = kind ?? DatasetKind.detect(directory: defaultDirectory) else {
                throw LeNetError(howToGetData, subject: "--data")
            }
            return (defaultDirectory, found)
        }
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw LeNetError("no such directory", subject: directory)
        }
        guard isDirectory.boolValue else { throw LeNetError("is not a directory", subject: directory) }
        if let kind { return (directory, kind) }
        guard let found = DatasetKind.detect(directory: directory) else {
            throw LeNetError("holds no CIFAR-10 batches (data_batch_1.bin …), no MNIST IDX files (train-images-idx3-ubyte …) and no class folders of images (train/<class>/*.jpg)", subject: directory)
        }
        return (directory, found)
    }
}

extension DataOptions {
    /// One split of the dataset in `directory`. For an image folder, the
    /// decoding's progress, the held-out split and any skipped files are
    /// reported on stderr; `shape` is the model's input.
    /// - Throws: `LeNetError` from the loader, or naming `--skip-bad-images`
    ///   or `--validation-split` when they do not apply.
    func load(_ kind: DatasetKind, from directory: String, split: Split, shape: FeatureShape, threads: Int) throws -> ImageDataset {
        guard kind == .folder else {
            if skipBadImages { throw LeNetError("applies to image folders only, not \(kind.displayName)", subject: "--skip-bad-images") }
            if validationSplit != nil { throw LeNetError("applies to image folders only, not \(kind.displayName)", subject: "--validation-split") }
            // MNIST's 28×28 digits are padded to LeNet-5's 32×32 field unless the network takes them as they are (LeNet-1).
            return try kind.load(directory: directory, split: split, padTo32: shape.height != 28 || shape.width != 28)
        }
        var options = ImageFolder.Options(shape: shape)
        options.skipsBadImages = skipBadImages
        options.threads = threads
        if let validationSplit {
            guard validationSplit > 0, validationSplit < 1 else {
                throw LeNetError("must be between 0 and 1, got \(validationSplit)", subject: "--validation-split")
            }
            if FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("test")) {
                throw LeNetError("\(directory) has a test/ folder; --validation-split applies only without one", subject: "--validation-split")
            }
            options.validationFraction = validationSplit
        }
        let source = (directory as NSString).appendingPathComponent(split.rawValue)
        let progress = DecodingProgress(what: source)
        let loaded = try ImageFolder.load(directory: directory, split: split, options: options, progress: progress.update)
        let count = loaded.dataset.count + loaded.skipped.count
        printError(String(format: "decoded %@ images from %@ in %.1f s (%@ images/s)", grouped(count),
                          loaded.heldOut == nil ? source : (directory as NSString).appendingPathComponent("train"),
                          loaded.seconds, grouped(Int(Double(count) / max(loaded.seconds, 1e-9)))))
        if let heldOut = loaded.heldOut {
            let share = String(format: "%g%% of each class, seed %llu", heldOut.fraction * 100, heldOut.seed)
            printError(split == .train
                ? "no test/ folder in \(directory): holding out \(share), of train/ as the test set (the same in every run; --validation-split sets the share)"
                : "the test set: \(grouped(loaded.dataset.count)) images held out from \(directory)/train (\(share))")
        }
        if !loaded.skipped.isEmpty {
            printError("skipped \(grouped(loaded.skipped.count)) bad image(s) of \(grouped(count)):")
            for bad in loaded.skipped { printError("  \(bad.path): \(bad.reason)") }
        }
        return loaded.dataset
    }
}

/// "decoding DIR: 1,024/10,000 images" on stderr: redrawn on a terminal,
/// a line every few seconds otherwise.
final class DecodingProgress {
    private let what: String
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let start = DispatchTime.now().uptimeNanoseconds
    private var lastDraw = 0.0

    init(what: String) { self.what = what }

    func update(done: Int, total: Int) {
        let now = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        guard done < total, now - lastDraw >= (isTerminal ? 0.1 : 10) else {
            if done == total && isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
            return
        }
        lastDraw = now
        let line = "decoding \(what): \(grouped(done))/\(grouped(total)) images"
        FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[2K" + line : line + "\n").utf8))
    }
}

import Foundation

/// Where a run's images are and how to read them: a directory (or `./data`
/// when none is given), its kind (detected from the files when not given),
/// and, for class folders of images, how to treat bad files and a missing
/// test/ folder. `load` reads one split for a network's input.
public struct DatasetLocation: Sendable {
    /// Where `resolve` looks when no directory is given.
    @_spi(CLI) public static let defaultDirectory = "data"

    /// The directory; nil: `./data`.
    public var directory: String?
    /// What it holds; nil: detected from the files.
    public var kind: DatasetKind?
    /// Image folders: skip files that cannot be decoded (listed through
    /// `log`) instead of stopping at the first.
    public var skipsBadImages = false
    /// Image folders without a test/ folder: the share of each class of
    /// train/ held out as the test set (default 0.1).
    public var validationFraction: Double?

    /// - Parameters:
    ///   - directory: the dataset directory, or nil for `./data`.
    ///   - kind: what it holds, or nil to detect it from the files.
    public init(directory: String? = nil, kind: DatasetKind? = nil) {
        self.directory = directory
        self.kind = kind
    }

    /// The location with its directory and kind found and checked.
    /// - Throws: `LeNetError` naming the directory when it is missing or
    ///   holds no dataset LeNetKit knows (naming the `data` option, with how
    ///   to get CIFAR-10 and Fashion-MNIST, when `./data` holds none).
    @_spi(CLI) public func resolved() throws -> (directory: String, kind: DatasetKind) {
        guard let directory else {
            guard DataFiles.isDirectory(Self.defaultDirectory),
                  let found = kind ?? DatasetKind.detect(directory: Self.defaultDirectory) else {
                throw LeNetError(Self.howToGetData, option: .data)
            }
            return (Self.defaultDirectory, found)
        }
        guard FileManager.default.fileExists(atPath: directory) else { throw LeNetError("no such directory", subject: directory) }
        guard DataFiles.isDirectory(directory) else { throw LeNetError("is not a directory", subject: directory) }
        guard let found = kind ?? DatasetKind.detect(directory: directory) else {
            throw LeNetError("holds no CIFAR-10 batches (data_batch_1.bin …), no MNIST IDX files (train-images-idx3-ubyte …) "
                + "and no class folders of images (train/<class>/*.jpg)", subject: directory)
        }
        return (directory, found)
    }

    /// What to do when no data is found: how to get CIFAR-10 and Fashion-MNIST.
    static let howToGetData = """
        no dataset found in ./data. Get CIFAR-10 (binary version) from \
        https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz and extract it into ./data \
        (tar xzf cifar-10-binary.tar.gz -C data, giving ./data/cifar-10-batches-bin/), or install \
        Fashion-MNIST with `apt-get install dataset-fashion-mnist` and pass --data /usr/share/datasets/fashion-mnist
        """

    /// One split, shaped for a network's input: MNIST's 28×28 digits are
    /// padded to 32×32 unless the input is 28×28 (LeNet-1); image folders
    /// are decoded and resized on `threads` threads.
    /// - Parameters:
    ///   - split: train or test.
    ///   - shape: the network's input.
    ///   - threads: decoding threads (image folders).
    ///   - log: lines for a person to read: an image folder's decoding
    ///     progress (`progress`), its held-out split and skipped files.
    ///   - progress: an image folder's split being decoded (its path), its
    ///     files decoded so far, and in all.
    /// - Throws: `LeNetError` from the reader, or naming the folder-only
    ///   options when they are set for another kind.
    public func load(_ split: Split, shape: FeatureShape, threads: Int, log: (String) -> Void = { _ in },
                     progress: ((_ what: String, _ done: Int, _ total: Int) -> Void)? = nil) throws -> ImageDataset {
        let (directory, kind) = try resolved()
        guard kind == .folder else {
            if skipsBadImages { throw LeNetError("applies to image folders only, not \(kind.displayName)", option: .skipBadImages) }
            if validationFraction != nil {
                throw LeNetError("applies to image folders only, not \(kind.displayName)", option: .validationSplit)
            }
            return try kind.load(directory: directory, split: split, padTo32: shape.height != 28 || shape.width != 28)
        }
        var options = ImageFolder.Options(shape: shape)
        options.skipsBadImages = skipsBadImages
        options.threads = threads
        if let validationFraction {
            guard validationFraction > 0, validationFraction < 1 else {
                throw LeNetError("must be between 0 and 1, got \(validationFraction)", option: .validationSplit)
            }
            if FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("test")) {
                throw LeNetError("\(directory) has a test/ folder; it applies only without one", option: .validationSplit)
            }
            options.validationFraction = validationFraction
        }
        let source = (directory as NSString).appendingPathComponent(split.rawValue)
        let loaded = try ImageFolder.load(directory: directory, split: split, options: options,
                                          progress: progress.map { report in { report(source, $0, $1) } })
        let count = loaded.dataset.count + loaded.skipped.count
        log(String(format: "decoded %@ images from %@ in %.1f s (%@ images/s)", grouped(count),
                   loaded.heldOut == nil ? source : (directory as NSString).appendingPathComponent("train"),
                   loaded.seconds, grouped(Int(Double(count) / max(loaded.seconds, 1e-9)))))
        if let heldOut = loaded.heldOut {
            let share = String(format: "%g%% of each class, seed %llu", heldOut.fraction * 100, heldOut.seed)
            log(split == .train
                ? "no test/ folder in \(directory): holding out \(share), of train/ as the test set "
                    + "(the same in every run; \(LeNetError.Option.validationSplit.rawValue) sets the share)"
                : "the test set: \(grouped(loaded.dataset.count)) images held out from \(directory)/train (\(share))")
        }
        if !loaded.skipped.isEmpty {
            log("skipped \(grouped(loaded.skipped.count)) bad image(s) of \(grouped(count)):")
            for bad in loaded.skipped { log("  \(bad.path): \(bad.reason)") }
        }
        return loaded.dataset
    }
}

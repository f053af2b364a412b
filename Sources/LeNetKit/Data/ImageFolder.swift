// A dataset of the user's own image files, in the layout of torchvision's
// ImageFolder: DIR/train/<class>/*.jpg and DIR/test/<class>/*.jpg, class
// names the sorted folder names. Every image is decoded once, when the
// dataset loads, brought to the model's input (channels, then size) and kept
// as bytes like CIFAR-10's: decoding again every epoch would add about a
// fifth to an epoch (docs/DATA.md has the figures), and the bytes of a
// 32×32 input are few.
import Foundation

/// Loads datasets from folders of JPEG, PNG, PPM and PGM files.
///
/// ```
/// DIR/train/cat/0001.jpg      class names: the folders of train/, sorted
/// DIR/train/dog/0002.png      (labels are their indices)
/// DIR/test/cat/0003.jpg       test/ is optional: without it, a seeded,
/// DIR/test/dog/...            stratified share of train/ is held out
/// ```
enum ImageFolder {
    /// The file name extensions read (any case); other files are ignored,
    /// as are names starting with ".".
    static let fileExtensions: Set<String> = ["jpg", "jpeg", "png", "ppm", "pgm"]

    /// How to load one split.
    struct Options: Sendable {
        /// The model's input, (C, H, W): each image is converted to C
        /// channels (alpha over black, RGB ↔ gray) and resized to H × W.
        var shape: FeatureShape
        /// Skip files that cannot be read or decoded (listed in
        /// `Loaded.skipped`) instead of stopping at the first.
        var skipsBadImages = false
        /// Without a test/ folder: the share of each class's training
        /// images held out as the test split, in [0, 1).
        var validationFraction = 0.1
        /// Seeds the held-out split.
        var seed: UInt64 = 0
        /// Threads that decode at once.
        var threads = ProcessInfo.processInfo.activeProcessorCount

        /// Options for a model whose input is `shape`.
        init(shape: FeatureShape) {
            self.shape = shape
        }
    }

    /// A file that could not be used, and why.
    struct BadImage: Sendable, Equatable {
        /// The file's path.
        let path: String
        /// What is wrong with it (the decoder's message).
        let reason: String
    }

    /// A loaded split and what happened on the way.
    struct Loaded: Sendable {
        /// The images, labelled; class names are the folder names.
        let dataset: ImageDataset
        /// The files skipped (`Options.skipsBadImages`), in path order.
        let skipped: [BadImage]
        /// Set when there was no test/ folder and this split is one side of
        /// the held-out split: the fraction held out and its seed.
        let heldOut: (fraction: Double, seed: UInt64)?
        /// Wall-clock seconds spent reading and decoding.
        let seconds: Double
    }

    /// The files of one split, labelled, before decoding.
    struct Listing: Sendable, Equatable {
        /// The class names, sorted: the label of a file is its index here.
        let classNames: [String]
        /// The files and their labels, by class then by path.
        let files: [File]
        /// Whether these come from a share of train/ (no test/ folder).
        let isHeldOut: Bool
    }

    /// An image file and its class.
    struct File: Sendable, Equatable {
        /// The file's path.
        let path: String
        /// The index of its class in `Listing.classNames`.
        let label: Int
    }

    /// Whether `directory` has this layout: a train/ or test/ folder that
    /// holds at least one folder.
    static func looksLikeImageFolder(_ directory: String) -> Bool {
        [Split.train, .test].contains { split in
            let path = DataFiles.join(directory, split.rawValue)
            return DataFiles.isDirectory(path) && !((try? subfolders(of: path)) ?? []).isEmpty
        }
    }

    /// The files of one split, without reading them.
    ///
    /// - Parameters:
    ///   - directory: the folder holding train/ and test/.
    ///   - split: which one. Without a test/ folder, `.test` is a held-out
    ///     share of train/ (`validationFraction` of each class, at least
    ///     one image of any class with two or more, chosen by `seed`) and
    ///     `.train` the rest.
    ///   - validationFraction: the share of each class held out when there
    ///     is no test/ folder.
    ///   - seed: which images are held out.
    /// - Throws: `LeNetError` naming the folder when the layout is missing,
    ///   a class of train/ holds no images, test/ has a class train/ lacks,
    ///   or the split holds no images.
    static func list(directory: String, split: Split, validationFraction: Double = 0.1,
                            seed: UInt64 = 0) throws -> Listing {
        try DataFiles.requireDirectory(directory, what: "image folder (train/<class>/…, test/<class>/…)")
        let trainPath = DataFiles.join(directory, Split.train.rawValue)
        let testPath = DataFiles.join(directory, Split.test.rawValue)
        let hasTrain = DataFiles.isDirectory(trainPath), hasTest = DataFiles.isDirectory(testPath)
        guard hasTrain || hasTest else {
            throw LeNetError("holds no train/ or test/ folder (expected train/<class>/*.jpg and test/<class>/*.jpg)",
                             subject: directory)
        }
        guard validationFraction >= 0, validationFraction < 1 else {
            throw LeNetError("must be in [0, 1), got \(validationFraction)", subject: "ImageFolder.Options.validationFraction")
        }
        // Labels come from train/ when it exists, so train and test agree.
        let classNames = try subfolders(of: hasTrain ? trainPath : testPath)
        guard !classNames.isEmpty else {
            throw LeNetError("holds no class folders", subject: hasTrain ? trainPath : testPath)
        }
        guard classNames.count <= 256 else {
            throw LeNetError("holds \(classNames.count) class folders; at most 256 are supported", subject: trainPath)
        }
        if split == .test && hasTest {
            let testClasses = try subfolders(of: testPath)
            if let stranger = testClasses.first(where: { !classNames.contains($0) }), hasTrain {
                throw LeNetError("class folder '\(stranger)' has no counterpart in \(trainPath)", subject: testPath)
            }
            let files = try testClasses.flatMap { name -> [File] in
                let label = classNames.firstIndex(of: name) ?? 0
                return try imageFiles(in: DataFiles.join(testPath, name)).map { File(path: $0, label: label) }
            }
            guard !files.isEmpty else { throw LeNetError("holds no images", subject: testPath) }
            return Listing(classNames: classNames, files: files, isHeldOut: false)
        }
        guard hasTrain else { throw LeNetError("no train/ folder", subject: directory) }
        var kept: [File] = [], heldOut: [File] = []
        for (label, name) in classNames.enumerated() {
            let files = try imageFiles(in: DataFiles.join(trainPath, name))
            guard !files.isEmpty else {
                throw LeNetError("holds no images (\(fileExtensions.sorted().map { "." + $0 }.joined(separator: ", ")))",
                                 subject: DataFiles.join(trainPath, name))
            }
            if hasTest {
                kept += files.map { File(path: $0, label: label) }
                continue
            }
            // Stratified: the same share of every class, from its own
            // seeded shuffle (seed and label), kept in path order.
            let share = Int((validationFraction * Double(files.count)).rounded())
            let count = files.count < 2 ? 0 : min(max(share, validationFraction > 0 ? 1 : 0), files.count - 1)
            var rng = SeededGenerator(seed: seed &+ UInt64(label) &* 0x9E37_79B9_7F4A_7C15)
            let chosen = Set(Array(0..<files.count).shuffled(using: &rng).prefix(count))
            for (i, path) in files.enumerated() {
                if chosen.contains(i) {
                    heldOut.append(File(path: path, label: label))
                } else {
                    kept.append(File(path: path, label: label))
                }
            }
        }
        let files = split == .train ? kept : heldOut
        guard !files.isEmpty else {
            throw LeNetError(split == .train ? "holds no images" : "no test/ folder, and a validation fraction of \(validationFraction) holds out no images",
                             subject: split == .train ? trainPath : directory)
        }
        return Listing(classNames: classNames, files: files, isHeldOut: !hasTest)
    }

    /// Loads one split: lists it, then decodes every file in parallel.
    ///
    /// - Parameters:
    ///   - directory: the folder holding train/ and test/.
    ///   - split: which one (see `list` for the held-out split).
    ///   - options: the model's input shape and how to treat bad files.
    ///   - progress: called on the calling thread now and then with the
    ///     images decoded so far and the total.
    /// - Throws: `LeNetError` from `list`, or naming the first file (in path
    ///   order) that cannot be read or decoded, unless
    ///   `options.skipsBadImages`; then when every file was bad.
    static func load(directory: String, split: Split, options: Options,
                            progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> Loaded {
        let shape = options.shape
        guard shape.channels == 1 || shape.channels == 3, shape.height > 0, shape.width > 0 else {
            throw LeNetError("images can be loaded as 1 or 3 channels of at least 1×1, not \(shape)", subject: "ImageFolder.Options.shape")
        }
        guard options.threads > 0 else {
            throw LeNetError("must be > 0, got \(options.threads)", subject: "ImageFolder.Options.threads")
        }
        let start = DispatchTime.now().uptimeNanoseconds
        let listing = try list(directory: directory, split: split, validationFraction: options.validationFraction,
                               seed: options.seed)
        let n = listing.files.count, size = shape.channels * shape.height * shape.width
        var images = [UInt8](repeating: 0, count: n * size)  // (N, C, H, W)
        var failures = [String?](repeating: nil, count: n)  // (N)
        // In rounds of a few hundred files: a progress line between rounds,
        // and a stop soon after the first bad file.
        let round = 256
        for first in stride(from: 0, to: n, by: round) {
            let last = min(first + round, n)
            images.withUnsafeMutableBufferPointer { images in
                failures.withUnsafeMutableBufferPointer { failures in
                    // Each file writes its own slot of both: disjoint.
                    ThreadBudget.with(options.threads) {
                        parallelFor(last - first) { range in
                            for i in range.lowerBound + first..<range.upperBound + first {
                                do {
                                    let bytes = try decode(listing.files[i].path, shape: shape)
                                    _ = UnsafeMutableBufferPointer(rebasing: images[i * size..<(i + 1) * size])
                                        .update(fromContentsOf: bytes)
                                } catch let error as LeNetError {
                                    failures[i] = error.message
                                } catch {
                                    failures[i] = "\(error)"
                                }
                            }
                        }
                    }
                }
            }
            progress?(last, n)
            if !options.skipsBadImages, let i = failures[first..<last].firstIndex(where: { $0 != nil }),
               let reason = failures[i] {
                throw LeNetError(reason + " (pass skipsBadImages, --skip-bad-images, to skip such files)",
                                 subject: listing.files[i].path)
            }
        }
        var skipped: [BadImage] = []
        var labels: [UInt8] = []
        labels.reserveCapacity(n)
        // Without skipped files the buffer is the dataset as it stands; with
        // some, the good images move up over the gaps, in place.
        var kept = 0
        for (i, file) in listing.files.enumerated() {
            if let reason = failures[i] {
                skipped.append(BadImage(path: file.path, reason: reason))
                continue
            }
            if kept != i {
                // kept < i: the two images' bytes do not overlap.
                images.withUnsafeMutableBufferPointer { bytes in
                    guard let base = bytes.baseAddress else { return }
                    (base + kept * size).update(from: base + i * size, count: size)
                }
            }
            labels.append(UInt8(file.label))
            kept += 1
        }
        images.removeLast((n - kept) * size)
        if labels.isEmpty {
            throw LeNetError("none of its \(n) images could be decoded; the first: \(skipped.first?.path ?? "")", subject: directory)
        }
        let name = (URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent) + " " + split.rawValue
        let dataset = try ImageDataset(name: name, channels: shape.channels, height: shape.height, width: shape.width,
                                       images: images, labels: labels, classNames: listing.classNames)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return Loaded(dataset: dataset, skipped: skipped,
                      heldOut: listing.isHeldOut ? (options.validationFraction, options.seed) : nil, seconds: seconds)
    }

    /// One file as the model's input bytes. (C, H, W)
    static func decode(_ path: String, shape: FeatureShape) throws -> [UInt8] {
        let image = try PixelImage.read(path: path)
        return try image.converted(toChannels: shape.channels).resized(width: shape.width, height: shape.height).planar
    }

    /// The sorted names of the folders in `path` (hidden ones left out).
    static func subfolders(of path: String) throws -> [String] {
        try entries(of: path).filter { DataFiles.isDirectory(DataFiles.join(path, $0)) }
    }

    /// The image files under `path`, in its folders too (at most 16 deep:
    /// a symbolic link to a parent folder would otherwise never end),
    /// sorted by path.
    static func imageFiles(in path: String, depth: Int = 0) throws -> [String] {
        var files: [String] = []
        for name in try entries(of: path) {
            let full = DataFiles.join(path, name)
            if DataFiles.isDirectory(full) {
                guard depth < 16 else { throw LeNetError("folders nest more than 16 deep (a link loop?)", subject: full) }
                files += try imageFiles(in: full, depth: depth + 1)
            } else if fileExtensions.contains((name as NSString).pathExtension.lowercased()) {
                files.append(full)
            }
        }
        return files.sorted()
    }

    private static func entries(of path: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
        } catch {
            throw LeNetError("cannot list the folder: \(error.localizedDescription)", subject: path)
        }
    }
}

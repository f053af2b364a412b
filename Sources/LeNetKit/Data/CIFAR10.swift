// CIFAR-10 in its binary form (cifar-10-binary.tar.gz, extracted): each
// file is a run of 3,073-byte records, a label byte then the red, green and
// blue 32x32 planes. That is already (N, C, H, W) minus the label byte, so
// loading is one copy per record.
import Foundation

/// Reads the CIFAR-10 binary batches.
public enum CIFAR10 {
    /// Channels, rows and columns of one image.
    static let channels = 3, height = 32, width = 32
    /// Bytes per record: one label byte, then 3 * 32 * 32 pixel bytes.
    static let recordSize = 1 + channels * height * width
    /// The folder the archive extracts to.
    static let folderName = "cifar-10-batches-bin"
    /// The class names used when `batches.meta.txt` is absent, by label.
    public static let standardClassNames = [
        "airplane", "automobile", "bird", "cat", "deer",
        "dog", "frog", "horse", "ship", "truck",
    ]

    /// The batch files of a split, in the order their images are loaded.
    static func fileNames(split: Split) -> [String] {
        switch split {
        case .train: return (1...5).map { "data_batch_\($0).bin" }
        case .test: return ["test_batch.bin"]
        }
    }

    /// Loads one split of CIFAR-10.
    ///
    /// The images keep the files' order: train is `data_batch_1.bin` through
    /// `data_batch_5.bin` (50,000 images), test is `test_batch.bin` (10,000).
    /// Class names come from `batches.meta.txt` (one per line, blank lines
    /// ignored) when it is there, else `standardClassNames`.
    ///
    /// - Parameters:
    ///   - directory: a directory holding `cifar-10-batches-bin/`, or the
    ///     batch files themselves.
    ///   - split: `.train` or `.test`.
    /// - Returns: a dataset of 3x32x32 images with labels 0...9.
    /// - Throws: `LeNetError` naming the directory or file: the directory or a
    ///   batch file is missing, a file is empty or not a whole number of
    ///   records, a label is above 9, `batches.meta.txt` does not hold 10 names.
    public static func load(directory: String, split: Split) throws -> ImageDataset {
        try DataFiles.requireDirectory(directory, what: "CIFAR-10")
        let nested = DataFiles.join(directory, folderName)
        let folder = DataFiles.isDirectory(nested) ? nested : directory
        let paths = fileNames(split: split).map { DataFiles.join(folder, $0) }

        // Check every file's size before reading any, so a bad download fails
        // at once, and the images are allocated once at their full size.
        var recordCounts: [Int] = []  // (files)
        for path in paths {
            guard DataFiles.isFile(path) else { throw missingFile(path, in: directory) }
            recordCounts.append(try records(inFileOfSize: try DataFiles.size(path), path: path))
        }
        let n = recordCounts.reduce(0, +)
        let imageSize = recordSize - 1

        var images = [UInt8](repeating: 0, count: n * imageSize)  // (N, 3, 32, 32)
        var labels = [UInt8](repeating: 0, count: n)  // (N)
        var first = 0  // index of the first image of the current file
        for (path, expected) in zip(paths, recordCounts) {
            let data = try DataFiles.read(path)
            // The size was checked above; check again in case the file changed.
            let found = try records(inFileOfSize: data.count, path: path)
            guard found == expected else {
                throw LeNetError("file changed while loading (\(expected) records, then \(found))",
                                 subject: path)
            }
            try data.withUnsafeBytes { (file: UnsafeRawBufferPointer) throws in
                try images.withUnsafeMutableBytes { out in
                    try labels.withUnsafeMutableBytes { labelBytes in
                        try decode(
                            file, records: found,
                            images: UnsafeMutableRawBufferPointer(
                                rebasing: out[(first * imageSize)..<((first + found) * imageSize)]),
                            labels: UnsafeMutableRawBufferPointer(rebasing: labelBytes[first..<(first + found)]),
                            source: path)
                    }
                }
            }
            first += found
        }

        let classNames = try self.classNames(folder: folder)
        return ImageDataset(
            unchecked: "CIFAR-10 \(split.rawValue)", channels: channels, height: height, width: width,
            images: images, labels: labels, classNames: classNames)
    }

    /// The images and labels of one batch file held in memory, checked as
    /// `load(directory:split:)` checks each file.
    ///
    /// - Parameters:
    ///   - bytes: the whole file: records of one label byte and 3x32x32 pixels.
    ///   - source: the file name (or any label) used as the subject of errors.
    /// - Returns: the images, (N, 3, 32, 32), and the labels, (N).
    /// - Throws: `LeNetError` with `subject: source` when the bytes are empty,
    ///   not a whole number of records, or a label is above 9.
    static func parse(_ bytes: [UInt8], source: String) throws -> (images: [UInt8], labels: [UInt8]) {
        let n = try records(inFileOfSize: bytes.count, path: source)
        let imageSize = recordSize - 1
        var images = [UInt8](repeating: 0, count: n * imageSize)  // (N, 3, 32, 32)
        var labels = [UInt8](repeating: 0, count: n)  // (N)
        try bytes.withUnsafeBytes { file in
            try images.withUnsafeMutableBytes { out in
                try labels.withUnsafeMutableBytes { labelBytes in
                    try decode(file, records: n, images: out, labels: labelBytes, source: source)
                }
            }
        }
        return (images, labels)
    }

    /// Copies `records` records of `file` into `images` ((records, 3, 32, 32)
    /// bytes) and `labels` (`records` bytes), checking every label.
    private static func decode(
        _ file: UnsafeRawBufferPointer, records: Int,
        images: UnsafeMutableRawBufferPointer, labels: UnsafeMutableRawBufferPointer, source: String
    ) throws {
        let imageSize = recordSize - 1
        guard file.count >= records * recordSize, images.count >= records * imageSize, labels.count >= records,
              let src = file.baseAddress, let dst = images.baseAddress else { return }
        for r in 0..<records {
            let record = src + r * recordSize
            let label = record.load(as: UInt8.self)
            guard label <= 9 else {
                throw LeNetError("record \(r) has label \(label); CIFAR-10 labels are 0...9", subject: source)
            }
            labels[r] = label
            (dst + r * imageSize).copyMemory(from: record + 1, byteCount: imageSize)
        }
    }

    /// The number of records in a file of `size` bytes, or an error naming it.
    private static func records(inFileOfSize size: Int, path: String) throws -> Int {
        guard size > 0 else {
            throw LeNetError("file is empty; expected records of \(recordSize) bytes", subject: path)
        }
        guard size % recordSize == 0 else {
            throw LeNetError(
                "size \(size) bytes is not a multiple of the \(recordSize)-byte record "
                    + "(1 label byte + 3x32x32 pixels); \(size / recordSize) whole records "
                    + "and \(size % recordSize) bytes over",
                subject: path)
        }
        return size / recordSize
    }

    private static func missingFile(_ path: String, in directory: String) -> LeNetError {
        var message = "missing CIFAR-10 batch file (looked in \(directory) and \(directory)/\(folderName))"
        if DataFiles.isFile(DataFiles.join(directory, "cifar-10-binary.tar.gz")) {
            message += "; extract cifar-10-binary.tar.gz there first (tar xzf)"
        }
        return LeNetError(message, subject: path)
    }

    /// Names from `batches.meta.txt`, or the standard ten when it is absent.
    private static func classNames(folder: String) throws -> [String] {
        let path = DataFiles.join(folder, "batches.meta.txt")
        guard DataFiles.isFile(path) else { return standardClassNames }
        guard let text = String(data: try DataFiles.read(path), encoding: .utf8) else {
            throw LeNetError("is not UTF-8 text", subject: path)
        }
        let names = text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard names.count == standardClassNames.count else {
            throw LeNetError(
                "expected \(standardClassNames.count) class names (one per line), found \(names.count)",
                subject: path)
        }
        return names
    }
}

// The IDX format of MNIST and Fashion-MNIST: a 4-byte magic number (two zero
// bytes, the element type, the number of dimensions), each dimension as a
// big-endian UInt32, then the elements in row-major order. The files are
// usually gzip-compressed; both forms are read, told apart by their first bytes.
import Foundation

/// Reads IDX files of unsigned bytes, plain or gzip-compressed.
enum IDX {
    /// The magic number of an image file: unsigned bytes, 3 dimensions (N, H, W).
    static let imagesMagic: UInt32 = 0x0000_0803
    /// The magic number of a label file: unsigned bytes, 1 dimension (N).
    static let labelsMagic: UInt32 = 0x0000_0801

    /// The dimensions and elements of the IDX file at `path`.
    ///
    /// - Parameters:
    ///   - path: a plain or gzip-compressed IDX file (detected by content, not name).
    ///   - expectedMagic: when given, the magic number the file must have,
    ///     e.g. `imagesMagic`.
    /// - Returns: the dimensions and the elements, row-major.
    /// - Throws: `LeNetError` naming `path`: missing, truncated or corrupt
    ///   gzip, bad magic number, truncated or overlong data.
    static func read(path: String, expectedMagic: UInt32? = nil) throws -> (dims: [Int], bytes: [UInt8]) {
        try withContents(path: path, expectedMagic: expectedMagic) { dims, payload in
            (dims, [UInt8](payload))
        }
    }

    /// The dimensions and elements of an IDX file held in memory (plain, or
    /// gzip-compressed). For tests and fuzzers: it never traps on any input.
    ///
    /// - Parameters:
    ///   - bytes: the file's contents.
    ///   - expectedMagic: when given, the magic number it must have.
    ///   - subject: where the bytes came from, for error messages.
    /// - Throws: `LeNetError` as `read(path:expectedMagic:)` does.
    static func parse(
        _ bytes: [UInt8], expectedMagic: UInt32? = nil, subject: String = "<memory>"
    ) throws -> (dims: [Int], bytes: [UInt8]) {
        try bytes.withUnsafeBytes { raw in
            try withDecoded(raw, subject: subject) { contents in
                let (dims, payload) = try split(contents, expectedMagic: expectedMagic, subject: subject)
                return (dims, [UInt8](payload))
            }
        }
    }

    /// Calls `body` with the dimensions and the elements of the file at `path`,
    /// without copying the elements out of the (decoded) file.
    static func withContents<T>(
        path: String, expectedMagic: UInt32?,
        _ body: ([Int], UnsafeRawBufferPointer) throws -> T
    ) throws -> T {
        let data = try DataFiles.read(path)
        return try data.withUnsafeBytes { raw in
            try withDecoded(raw, subject: path) { contents in
                let (dims, payload) = try split(contents, expectedMagic: expectedMagic, subject: path)
                return try body(dims, payload)
            }
        }
    }

    /// The most a gzip-compressed IDX file may decode to: 4 GiB, several times
    /// the largest IDX dataset (EMNIST's 814,255 images, 640 MB), so that a
    /// small hostile .gz cannot fill memory.
    static let maximumDecodedSize = 1 << 32

    /// `body` over the bytes, gunzipped first when they are gzip.
    private static func withDecoded<T>(
        _ raw: UnsafeRawBufferPointer, subject: String,
        _ body: (UnsafeRawBufferPointer) throws -> T
    ) throws -> T {
        guard Gzip.isGzip(raw) else { return try body(raw) }
        let decoded = try Gzip.decompress(raw, subject: subject, limit: maximumDecodedSize)
        return try decoded.withUnsafeBytes { try body($0) }
    }

    /// Splits an IDX file into its dimensions and its elements, checking both.
    private static func split(
        _ file: UnsafeRawBufferPointer, expectedMagic: UInt32?, subject: String
    ) throws -> ([Int], UnsafeRawBufferPointer) {
        guard file.count >= 4 else {
            throw LeNetError(
                "truncated IDX file: expected at least 4 bytes of header, found \(file.count)",
                subject: subject)
        }
        let magic = bigEndianUInt32(file, at: 0)
        if let expectedMagic, magic != expectedMagic {
            throw LeNetError(
                "bad magic number: expected \(hex(expectedMagic)), found \(hex(magic))",
                subject: subject)
        }
        guard file[0] == 0, file[1] == 0 else {
            throw LeNetError(
                "bad magic number: expected 0x000008nn (unsigned-byte IDX), found \(hex(magic))",
                subject: subject)
        }
        guard file[2] == 0x08 else {
            throw LeNetError(
                "unsupported IDX element type 0x\(String(file[2], radix: 16)); "
                    + "only unsigned bytes (0x08) are supported",
                subject: subject)
        }
        let rank = Int(file[3])
        guard rank > 0 else {
            throw LeNetError("IDX header has no dimensions (magic \(hex(magic)))", subject: subject)
        }
        let header = 4 + 4 * rank
        guard file.count >= header else {
            throw LeNetError(
                "truncated IDX file: expected at least \(header) bytes of header for "
                    + "\(rank) dimensions, found \(file.count)",
                subject: subject)
        }
        var dims: [Int] = []  // (rank)
        var elements = 1
        for d in 0..<rank {
            let size = Int(bigEndianUInt32(file, at: 4 + 4 * d))
            dims.append(size)
            let product = elements.multipliedReportingOverflow(by: size)
            guard !product.overflow else {
                throw LeNetError("IDX dimensions \(dims) are too large", subject: subject)
            }
            elements = product.partialValue
        }
        // The header too can push a product just below Int.max over it.
        let (expected, tooLarge) = header.addingReportingOverflow(elements)
        guard !tooLarge else {
            throw LeNetError("IDX dimensions \(dims) are too large", subject: subject)
        }
        guard file.count == expected else {
            let shape = dims.map(String.init).joined(separator: "x")
            throw LeNetError(
                file.count < expected
                    ? "truncated IDX file: expected \(expected) bytes for a \(shape) array, found \(file.count)"
                    : "IDX file too long: expected \(expected) bytes for a \(shape) array, found "
                        + "\(file.count) (\(file.count - expected) bytes of trailing data)",
                subject: subject)
        }
        return (dims, UnsafeRawBufferPointer(rebasing: file[header...]))
    }

    private static func bigEndianUInt32(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { ($0 << 8) | UInt32(bytes[offset + $1]) }
    }

    /// `0x00000803`: eight hex digits.
    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}

// MARK: - MNIST and Fashion-MNIST

/// The two datasets that share MNIST's files and format.
public enum MNISTVariant: String, Sendable, CaseIterable {
    /// Handwritten digits, labels 0...9 named "0"..."9".
    case mnist
    /// Zalando's clothing images, same format and sizes.
    case fashionMNIST = "fashion-mnist"

    /// "MNIST" or "Fashion-MNIST".
    var displayName: String {
        switch self {
        case .mnist: return "MNIST"
        case .fashionMNIST: return "Fashion-MNIST"
        }
    }

    /// The name of each class, by label.
    var classNames: [String] {
        switch self {
        case .mnist:
            return (0...9).map(String.init)
        case .fashionMNIST:
            return ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        }
    }
}

/// Loads MNIST and Fashion-MNIST from their IDX files.
public enum MNIST {
    /// The side the images are padded to when `padTo32` is set: LeNet-5's input.
    static let paddedSide = 32

    /// The file names of a split's images and labels, without `.gz`.
    static func fileNames(split: Split) -> (images: String, labels: String) {
        switch split {
        case .train: return ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
        case .test: return ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
        }
    }

    /// The names a file goes by: as given, gzip-compressed, and the
    /// `train-images.idx3-ubyte` spelling some mirrors use, in that order.
    static func candidateNames(_ name: String) -> [String] {
        let dotted = name.replacingOccurrences(of: "-idx", with: ".idx")
        return [name, name + ".gz", dotted, dotted + ".gz"]
    }

    /// The path of the first of `candidateNames(name)` present in `directory`.
    static func findFile(_ name: String, in directory: String) -> String? {
        candidateNames(name).map { DataFiles.join(directory, $0) }.first(where: DataFiles.isFile)
    }

    /// Loads one split of MNIST or Fashion-MNIST.
    ///
    /// Looks for `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (train)
    /// or `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (test), each
    /// plain or `.gz`, also spelled `train-images.idx3-ubyte`.
    ///
    /// - Parameters:
    ///   - directory: the directory holding the files.
    ///   - split: `.train` (60,000 images) or `.test` (10,000).
    ///   - variant: which dataset the files hold; sets the class names.
    ///   - padTo32: pad each image with zeros to 32x32, centered (28x28 gets 2
    ///     pixels on every side), the input size of LeNet-5.
    /// - Returns: a dataset of 1xHxW images (1x32x32 when padded), labels 0...9.
    /// - Throws: `LeNetError` naming the file: missing, bad magic number,
    ///   truncated or corrupt, image and label counts differ, label above 9,
    ///   no images, or too large to pad to 32x32.
    public static func load(
        directory: String, split: Split, variant: MNISTVariant = .mnist, padTo32: Bool = true
    ) throws -> ImageDataset {
        try DataFiles.requireDirectory(directory, what: variant.displayName)
        let names = fileNames(split: split)
        let imagesPath = try path(of: names.images, in: directory, variant: variant)
        let labelsPath = try path(of: names.labels, in: directory, variant: variant)

        let labels = try IDX.withContents(path: labelsPath, expectedMagic: IDX.labelsMagic) {
            _, payload in [UInt8](payload)  // (N)
        }
        if let i = labels.firstIndex(where: { $0 > 9 }) {
            throw LeNetError("label \(labels[i]) of image \(i) is out of range 0...9", subject: labelsPath)
        }

        return try IDX.withContents(path: imagesPath, expectedMagic: IDX.imagesMagic) { dims, payload in
            let (n, h, w) = (dims[0], dims[1], dims[2])  // the magic number fixed rank 3
            guard n == labels.count else {
                throw LeNetError(
                    "holds \(n) images but \(labelsPath) holds \(labels.count) labels",
                    subject: imagesPath)
            }
            guard n > 0, h > 0, w > 0 else {
                throw LeNetError("holds no images (dimensions \(n)x\(h)x\(w))", subject: imagesPath)
            }
            let name = "\(variant.displayName) \(split.rawValue)"
            guard padTo32 else {
                return ImageDataset(
                    unchecked: name, channels: 1, height: h, width: w,
                    images: [UInt8](payload), labels: labels, classNames: variant.classNames)
            }
            guard h <= paddedSide, w <= paddedSide else {
                throw LeNetError("images are \(h)x\(w); cannot pad them to \(paddedSide)x\(paddedSide)",
                                 subject: imagesPath)
            }
            let images = pad(payload, n: n, h: h, w: w, to: paddedSide)  // (N, 1, 32, 32)
            return ImageDataset(
                unchecked: name, channels: 1, height: paddedSide, width: paddedSide,
                images: images, labels: labels, classNames: variant.classNames)
        }
    }

    /// (N, H, W) images centered in (N, side, side) ones, zeros around.
    /// Pixel (r, c) moves to (r + (side - H) / 2, c + (side - W) / 2).
    static func pad(_ source: UnsafeRawBufferPointer, n: Int, h: Int, w: Int, to side: Int) -> [UInt8] {
        let top = (side - h) / 2, left = (side - w) / 2
        var padded = [UInt8](repeating: 0, count: n * side * side)  // (N, side, side)
        padded.withUnsafeMutableBytes { out in
            guard let dst = out.baseAddress, let src = source.baseAddress else { return }
            for i in 0..<n {
                for r in 0..<h {
                    (dst + (i * side + top + r) * side + left)
                        .copyMemory(from: src + (i * h + r) * w, byteCount: w)
                }
            }
        }
        return padded
    }

    private static func path(of name: String, in directory: String, variant: MNISTVariant) throws -> String {
        if let found = findFile(name, in: directory) { return found }
        throw LeNetError(
            "missing \(variant.displayName) file (looked for "
                + candidateNames(name).joined(separator: ", ") + ")",
            subject: DataFiles.join(directory, name))
    }
}

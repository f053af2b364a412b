// The in-memory form of every dataset LeNetKit reads: images kept as the
// bytes the files hold, normalized to Float one batch at a time. Bytes are a
// quarter of the size of floats (CIFAR-10 train: 150 MB instead of 600 MB),
// and normalizing one batch's images costs little next to the convolutions.
import Foundation

/// Which half of a dataset to load.
public enum Split: String, Sendable, CaseIterable {
    case train
    case test
}

// MARK: - ImageDataset

/// Labelled images of one size, stored as bytes in (N, C, H, W) order.
///
/// Every loader (`CIFAR10`, `MNIST`, `DatasetKind.load`) returns one, checked:
/// sizes agree and every label names a class. `fill(batch:normalization:into:labels:)`
/// turns a batch of it into the Float tensor a model reads.
public struct ImageDataset: Sendable {
    /// A name for messages and logs, e.g. "CIFAR-10 train".
    public let name: String
    /// Channels per image (C): 3 for CIFAR-10, 1 for MNIST.
    public let channels: Int
    /// Rows per image (H).
    public let height: Int
    /// Columns per image (W).
    public let width: Int
    /// Pixels as stored in the files, 0...255. (N, C, H, W)
    let images: [UInt8]
    /// The class of each image, each `< classNames.count`. (N)
    public let labels: [UInt8]
    /// The name of each class, indexed by label.
    public let classNames: [String]

    /// The number of images (N).
    public var count: Int { labels.count }
    /// Bytes per image: C * H * W.
    var imageSize: Int { channels * height * width }

    /// A dataset from its parts, checked.
    ///
    /// - Parameters:
    ///   - name: a name for messages, e.g. "MNIST test".
    ///   - channels: C of one image's shape (C, H, W), > 0.
    ///   - height: H, > 0.
    ///   - width: W, > 0.
    ///   - images: N * C * H * W bytes, (N, C, H, W).
    ///   - labels: N labels, each `< classNames.count`. (N)
    ///   - classNames: at least one name, at most 256.
    /// - Throws: `LeNetError` (subject `name`) when the shape is not positive,
    ///   `images.count != labels.count * C * H * W`, or a label names no class.
    public init(
        name: String, channels: Int, height: Int, width: Int,
        images: [UInt8], labels: [UInt8], classNames: [String]
    ) throws {
        guard channels > 0, height > 0, width > 0 else {
            throw LeNetError(
                "image shape must be positive, got C=\(channels) H=\(height) W=\(width)",
                subject: name)
        }
        guard !classNames.isEmpty, classNames.count <= 256 else {
            throw LeNetError(
                "expected 1 to 256 class names, got \(classNames.count)", subject: name)
        }
        let (expected, overflow) = labels.count.multipliedReportingOverflow(
            by: channels * height * width)
        guard !overflow, images.count == expected else {
            throw LeNetError(
                "\(labels.count) labels of \(channels)x\(height)x\(width) images need "
                    + "\(labels.count) * \(channels * height * width) image bytes, found \(images.count)",
                subject: name)
        }
        if let i = labels.firstIndex(where: { Int($0) >= classNames.count }) {
            throw LeNetError(
                "label \(labels[i]) of image \(i) is out of range 0...\(classNames.count - 1)",
                subject: name)
        }
        self.init(
            unchecked: name, channels: channels, height: height, width: width,
            images: images, labels: labels, classNames: classNames)
    }

    /// For loaders that have already checked what `init` checks.
    init(
        unchecked name: String, channels: Int, height: Int, width: Int,
        images: [UInt8], labels: [UInt8], classNames: [String]
    ) {
        self.name = name
        self.channels = channels
        self.height = height
        self.width = width
        self.images = images
        self.labels = labels
        self.classNames = classNames
    }

    /// The first `n` images (all of them when `n >= count`, none when `n <= 0`),
    /// for `--limit`.
    public func prefix(_ n: Int) -> ImageDataset {
        let n = min(max(n, 0), count)
        if n == count { return self }
        return ImageDataset(
            unchecked: name, channels: channels, height: height, width: width,
            images: Array(images[0..<n * imageSize]), labels: Array(labels[0..<n]),
            classNames: classNames)
    }

    /// Writes the images at `indices`, normalized, and their labels into
    /// caller-owned buffers. Allocates nothing: it runs every training step.
    ///
    /// ```
    /// images[b, c, h, w] = (bytes[indices[b], c, h, w] / 255 - mean[c]) / std[c]
    /// labels[b]          = labels[indices[b]]
    /// ```
    ///
    /// - Parameters:
    ///   - indices: n image indices, each in `0..<count` (e.g. a batch from `BatchOrder`).
    ///   - normalization: per-channel mean and std; must fit `channels`
    ///     (see `Normalization.validated(channels:)`).
    ///   - images: room for n * C * H * W floats. (n, C, H, W)
    ///   - labels: room for n labels. (n)
    func fill(
        batch indices: some Collection<Int>,
        normalization: Normalization,
        into images: UnsafeMutablePointer<Float>,
        labels: UnsafeMutablePointer<Int32>
    ) {
        // Both are programming errors, not bad input: a loader checked the data,
        // and the command line checks the normalization with `validated`.
        precondition(normalization.fits(channels: channels),
                     "normalization has \(normalization.mean.count) channels, dataset \(channels)")
        let plane = height * width
        let size = imageSize
        self.images.withUnsafeBufferPointer { bytes in
            guard let bytes = bytes.baseAddress else { return }
            var b = 0
            for index in indices {
                precondition(index >= 0 && index < count, "index \(index) out of 0..<\(count)")
                labels[b] = Int32(self.labels[index])
                for c in 0..<channels {
                    let (scale, shift) = normalization.affine(channel: c)
                    let src = bytes + index * size + c * plane
                    let dst = images + b * size + c * plane
                    for p in 0..<plane {
                        dst[p] = Float(src[p]) * scale + shift
                    }
                }
                b += 1
            }
        }
    }
}

// MARK: - Normalization

/// The per-channel mean and standard deviation that pixel values in [0, 1]
/// are normalized with: `(x - mean[c]) / std[c]`.
///
/// One value applies to every channel; otherwise there is one per channel.
public struct Normalization: Sendable, Equatable {
    /// The mean per channel, or one for all channels.
    public let mean: [Float]
    /// The standard deviation per channel, or one for all; each > 0.
    public let std: [Float]

    /// Mean 0.5 and std 0.5 for every channel: maps bytes 0...255 to -1...1.
    /// The default for CIFAR-10 and MNIST alike.
    public static let half = Normalization(unchecked: [0.5], std: [0.5])
    /// LeCun et al. 1998's input levels: the paper (byte 0) at −0.1, full
    /// ink (byte 255) at 1.175, which gives MNIST a mean near 0 and a
    /// variance near 1: std 1/1.275, mean 0.1/1.275.
    static let lecun1998 = Normalization(unchecked: [Float(0.1 / 1.275)], std: [Float(1 / 1.275)])

    /// A normalization, checked.
    ///
    /// - Parameters:
    ///   - mean: one value, or one per channel.
    ///   - std: one value, or one per channel; each finite and > 0.
    ///   - channels: when given, the image channels it must fit: each list
    ///     holds 1 or `channels` values.
    /// - Throws: `LeNetError` (subject "normalization") naming the bad value.
    public init(mean: [Float], std: [Float], channels: Int? = nil) throws {
        guard !mean.isEmpty, !std.isEmpty else {
            throw LeNetError("mean and std need at least one value each", subject: "normalization")
        }
        if let bad = mean.first(where: { !$0.isFinite }) {
            throw LeNetError("mean must be finite, got \(bad)", subject: "normalization")
        }
        if let bad = std.first(where: { !($0.isFinite && $0 > 0) }) {
            throw LeNetError("std must be finite and > 0, got \(bad)", subject: "normalization")
        }
        if mean.count != std.count && mean.count != 1 && std.count != 1 {
            throw LeNetError(
                "mean has \(mean.count) values and std \(std.count); give 1 or one per channel",
                subject: "normalization")
        }
        self.init(unchecked: mean, std: std)
        if let channels { _ = try validated(channels: channels) }
    }

    private init(unchecked mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }

    /// The same mean and std for all channels.
    ///
    /// - Parameters:
    ///   - mean: the mean of pixel values in [0, 1].
    ///   - std: the standard deviation; finite and > 0.
    ///   - channels: how many channels to repeat them for (> 0).
    /// - Throws: `LeNetError` when `std <= 0`, a value is not finite, or `channels <= 0`.
    static func uniform(mean: Float, std: Float, channels: Int) throws -> Normalization {
        guard channels > 0 else {
            throw LeNetError("channels must be > 0, got \(channels)", subject: "normalization")
        }
        return try Normalization(
            mean: Array(repeating: mean, count: channels),
            std: Array(repeating: std, count: channels))
    }

    /// Whether it applies to images with `channels` channels.
    func fits(channels: Int) -> Bool {
        (mean.count == 1 || mean.count == channels) && (std.count == 1 || std.count == channels)
    }

    /// `self`, after checking it fits images with `channels` channels.
    ///
    /// - Throws: `LeNetError` saying how many values were given and needed.
    func validated(channels: Int) throws -> Normalization {
        guard fits(channels: channels) else {
            throw LeNetError(
                "mean has \(mean.count) and std \(std.count) values, but images have \(channels) "
                    + (channels == 1 ? "channel: give 1 value each" : "channels: give 1 or \(channels) values each"),
                subject: "normalization")
        }
        return self
    }

    /// The mean for channel `c`.
    @inline(__always)
    func mean(channel c: Int) -> Float { mean.count == 1 ? mean[0] : mean[c] }

    /// The std for channel `c`.
    @inline(__always)
    func std(channel c: Int) -> Float { std.count == 1 ? std[0] : std[c] }

    /// (x / 255 − mean) / std for channel `c` as one multiply-add on the
    /// byte x: (scale, shift) with value = x·scale + shift.
    @inline(__always)
    func affine(channel c: Int) -> (scale: Float, shift: Float) {
        (1 / (255 * std(channel: c)), -mean(channel: c) / std(channel: c))
    }
}

// MARK: - Reading files

/// Small file-system helpers shared by the loaders; each failure is a
/// `LeNetError` naming the path.
enum DataFiles {
    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            && isDirectory.boolValue
    }

    static func isFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            && !isDirectory.boolValue
    }

    /// Throws unless `path` is an existing directory.
    static func requireDirectory(_ path: String, what: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw LeNetError("no such directory (expected the \(what) files here)", subject: path)
        }
        guard isDirectory.boolValue else {
            throw LeNetError("is a file, expected a directory holding the \(what) files",
                             subject: path)
        }
    }

    /// The size of the file at `path` in bytes, without reading it.
    static func size(_ path: String) throws -> Int {
        guard isFile(path) else { throw LeNetError("missing file", subject: path) }
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            guard let size = (attributes[.size] as? NSNumber)?.intValue else {
                throw LeNetError("cannot read the file size", subject: path)
            }
            return size
        } catch let error as LeNetError {
            throw error
        } catch {
            throw LeNetError("cannot read: \(error.localizedDescription)", subject: path)
        }
    }

    /// The whole file at `path`.
    static func read(_ path: String) throws -> Data {
        guard isFile(path) else { throw LeNetError("missing file", subject: path) }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw LeNetError("cannot read: \(error.localizedDescription)", subject: path)
        }
    }

    /// `directory/name`.
    static func join(_ directory: String, _ name: String) -> String {
        (directory as NSString).appendingPathComponent(name)
    }
}

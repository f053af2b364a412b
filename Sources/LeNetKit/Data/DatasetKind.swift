// Which dataset a directory holds, so `lenet train --data DIR` needs no
// --dataset flag in the common cases.
import Foundation

/// The datasets LeNetKit can load.
public enum DatasetKind: String, CaseIterable, Sendable {
    case cifar10
    case mnist
    case fashionMNIST = "fashion-mnist"
    /// Image files in class folders (`ImageFolder`): train/<class>/*.jpg, test/<class>/*.jpg.
    case folder

    /// "CIFAR-10", "MNIST", "Fashion-MNIST" or "image folder".
    @_spi(CLI) public var displayName: String {
        switch self {
        case .cifar10: return "CIFAR-10"
        case .mnist: return MNISTVariant.mnist.displayName
        case .fashionMNIST: return MNISTVariant.fashionMNIST.displayName
        case .folder: return "image folder"
        }
    }

    /// Guesses the dataset in `directory` from the files it holds.
    ///
    /// The rule, in order:
    /// 1. `cifar-10-batches-bin/`, `data_batch_1.bin` or `test_batch.bin`
    ///    present: `.cifar10`.
    /// 2. Any MNIST IDX file present (`train-images-idx3-ubyte`,
    ///    `t10k-labels-idx1-ubyte`, ..., plain or `.gz`): `.fashionMNIST` when
    ///    the directory's path (symbolic links resolved) contains "fashion"
    ///    in any case, or the directory holds a file whose name does (e.g. a
    ///    marker file `FASHION`, or `fashion-mnist.md`); `.mnist` otherwise.
    ///    The two datasets' files are identical in name and format, so nothing
    ///    in them tells them apart.
    /// 3. A train/ or test/ folder holding class folders
    ///    (`ImageFolder.looksLikeImageFolder`): `.folder`.
    /// 4. Otherwise `nil`.
    ///
    /// A directory that holds both CIFAR-10 or IDX files and class folders
    /// is read by the first rule that matches; `--dataset folder` (or
    /// loading `.folder` directly) picks the folders.
    static func detect(directory: String) -> DatasetKind? {
        guard DataFiles.isDirectory(directory) else { return nil }
        if DataFiles.isDirectory(DataFiles.join(directory, CIFAR10.folderName))
            || DataFiles.isFile(DataFiles.join(directory, "data_batch_1.bin"))
            || DataFiles.isFile(DataFiles.join(directory, "test_batch.bin")) {
            return .cifar10
        }
        let idxNames = [Split.train, .test].flatMap { split -> [String] in
            let names = MNIST.fileNames(split: split)
            return [names.images, names.labels]
        }
        guard idxNames.contains(where: { MNIST.findFile($0, in: directory) != nil }) else {
            return ImageFolder.looksLikeImageFolder(directory) ? .folder : nil
        }
        let resolved = URL(fileURLWithPath: directory).resolvingSymlinksInPath().path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        if resolved.lowercased().contains("fashion")
            || entries.contains(where: { $0.lowercased().contains("fashion") }) {
            return .fashionMNIST
        }
        return .mnist
    }

    /// Loads one split of this dataset from `directory`.
    ///
    /// - Parameters:
    ///   - directory: as `CIFAR10.load` or `MNIST.load` take it.
    ///   - split: `.train` or `.test`.
    ///   - padTo32: for MNIST and Fashion-MNIST, pad 28x28 images to 32x32
    ///     (the models take 32x32); ignored otherwise.
    ///   - folder: for `.folder`, the input shape and the handling of bad
    ///     files (default: 3×32×32, the CIFAR LeNet's input; stop at the
    ///     first bad file). `ImageFolder.load` also returns what was skipped.
    /// - Throws: `LeNetError` from the loader, naming the file.
    func load(directory: String, split: Split, padTo32: Bool = true,
                     folder: ImageFolder.Options? = nil) throws -> ImageDataset {
        switch self {
        case .folder:
            let options = folder ?? ImageFolder.Options(shape: FeatureShape(channels: 3, height: 32, width: 32))
            return try ImageFolder.load(directory: directory, split: split, options: options).dataset
        case .cifar10:
            return try CIFAR10.load(directory: directory, split: split)
        case .mnist:
            return try MNIST.load(directory: directory, split: split, variant: .mnist, padTo32: padTo32)
        case .fashionMNIST:
            return try MNIST.load(
                directory: directory, split: split, variant: .fashionMNIST, padTo32: padTo32)
        }
    }
}

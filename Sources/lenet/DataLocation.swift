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
            throw LeNetError("holds no CIFAR-10 batches (data_batch_1.bin …) and no MNIST IDX files (train-images-idx3-ubyte …)", subject: directory)
        }
        return (directory, found)
    }
}

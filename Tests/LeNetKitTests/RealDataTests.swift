import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Training on real data: Fashion-MNIST from Debian's `dataset-fashion-mnist`
/// (installed by .ci/run). Skipped, with the command that installs it, when absent.
struct RealDataTests {
    static let directory = "/usr/share/datasets/fashion-mnist"

    @Test(.enabled(if: DatasetKind.detect(directory: RealDataTests.directory) == .fashionMNIST,
                   "Fashion-MNIST is not in /usr/share/datasets/fashion-mnist; install it with: apt-get install dataset-fashion-mnist"))
    func testLeNet5LearnsFashionMNISTInOneEpoch() throws {
        let train = try DatasetKind.fashionMNIST.load(directory: Self.directory, split: .train).prefix(30_000)
        let test = try DatasetKind.fashionMNIST.load(directory: Self.directory, split: .test)
        #expect(test.count == 10_000)
        #expect(train.height == 32)  // padded from 28
        let network = try Models.lenet5(seed: 0)
        var options = TrainingOptions()
        options.epochs = 1
        let trainer = try Trainer(network: network, dataset: train, options: options)
        let epoch = try trainer.trainEpoch()
        let result = try network.evaluate(on: test, normalization: options.normalization)
        print("Fashion-MNIST, LeNet-5, 1 epoch on 30,000 images: train loss \(epoch.loss), test accuracy \(result.accuracy)")
        #expect(epoch.loss < 0.8)
        #expect(result.accuracy >= 0.80)
        #expect(result.classNames.first == "T-shirt/top")
        #expect(result.perClass.count == 10)
    }
}

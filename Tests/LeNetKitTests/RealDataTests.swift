import Foundation
import XCTest
@testable import LeNetKit

/// Training on real data: Fashion-MNIST from Debian's `dataset-fashion-mnist`
/// (installed by .ci/run). Skipped, with the command that installs it, when absent.
final class RealDataTests: XCTestCase {
    static let directory = "/usr/share/datasets/fashion-mnist"

    func testLeNet5LearnsFashionMNISTInOneEpoch() throws {
        guard DatasetKind.detect(directory: Self.directory) == .fashionMNIST else {
            throw XCTSkip("Fashion-MNIST is not in \(Self.directory); install it with: apt-get install dataset-fashion-mnist")
        }
        let train = try DatasetKind.fashionMNIST.load(directory: Self.directory, split: .train).prefix(30_000)
        let test = try DatasetKind.fashionMNIST.load(directory: Self.directory, split: .test)
        XCTAssertEqual(test.count, 10_000)
        XCTAssertEqual(train.height, 32)  // padded from 28
        let network = try Models.lenet5(seed: 0)
        var options = TrainingOptions()
        options.epochs = 1
        let trainer = try Trainer(network: network, model: .lenet5, dataset: train, options: options)
        let epoch = try trainer.trainEpoch()
        let result = try network.evaluate(on: test, normalization: options.normalization)
        print("Fashion-MNIST, LeNet-5, 1 epoch on 30,000 images: train loss \(epoch.loss), test accuracy \(result.accuracy)")
        XCTAssertLessThan(epoch.loss, 0.8)
        XCTAssertGreaterThanOrEqual(result.accuracy, 0.80)
        XCTAssertEqual(result.classNames.first, "T-shirt/top")
        XCTAssertEqual(result.perClass.count, 10)
    }
}

import Foundation
import Testing
@testable import LeNetKit

/// Checkpoints in the `lenetkit-1` format, written by the code of
/// 2026-12-07 and kept in `Fixtures/checkpoints`: every later format must
/// go on reading and resuming them.
struct CheckpointFormatTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// One kept checkpoint: how it was trained and where it stopped.
    struct Kept: Sendable, CustomTestStringConvertible {
        var name: String
        var optimizer: TrainingOptions.OptimizerKind
        /// Complete epochs, then steps into the next one.
        var epochs: Int, steps: Int
        var testDescription: String { name }

        /// The options both the writer and the reader use.
        var options: TrainingOptions {
            var o = TrainingOptions()
            o.epochs = 3
            o.batchSize = 16
            o.seed = 3
            o.threads = 1
            o.optimizer = optimizer
            o.learningRate = optimizer == .sgd ? 0.01 : 1e-3
            o.weightDecay = 1e-4
            return o
        }
    }

    /// An Adam checkpoint stopped 3 steps into its second epoch, and an SGD
    /// (momentum 0.9) one between epochs, of `TrainingTests.smallNetwork`
    /// on 90 squares (6 steps an epoch).
    static let kept = [
        Kept(name: "lenetkit1-adam-midepoch", optimizer: .adam, epochs: 1, steps: 3),
        Kept(name: "lenetkit1-sgd", optimizer: .sgd, epochs: 1, steps: 0),
    ]

    static func data() throws -> ImageDataset { try TrainingTests.squares(count: 90, seed: 1) }

    /// Writes the kept checkpoints into the source tree. It runs only with
    /// `LENETKIT_WRITE_CHECKPOINT_FIXTURES=1`: the files are meant to stay as
    /// the code of their day wrote them, not to follow the code.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["LENETKIT_WRITE_CHECKPOINT_FIXTURES"] == "1"),
          arguments: kept)
    func writeKeptCheckpoint(_ kept: Kept) throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/checkpoints")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let trainer = try Trainer(network: try TrainingTests.smallNetwork(), dataset: try Self.data(), options: kept.options)
        for _ in 0..<kept.epochs { _ = try trainer.trainEpoch() }
        if kept.steps > 0 {
            var taken = 0
            _ = try trainer.trainEpoch(shouldStop: {
                defer { taken += 1 }
                return taken == kept.steps
            })
        }
        try trainer.saveCheckpoint(to: directory.appendingPathComponent(kept.name + ".safetensors").path)
    }

    /// Each kept checkpoint resumes where it stopped: the position, the
    /// weights and the optimizer's state exactly as the files hold them
    /// (loading copies floats, so bitwise); the run then finishes its
    /// epochs, and a checkpoint written now resumes to the same weights.
    @Test(arguments: kept)
    func testKeptCheckpointResumes(_ kept: Kept) throws {
        let path = try #require(Bundle.module.url(forResource: kept.name, withExtension: "safetensors",
                                                  subdirectory: "Fixtures/checkpoints")).path
        let weights = try SafetensorsFile.read(path: path)
        let state = try SafetensorsFile.read(path: Checkpoint.statePath(for: path))
        #expect(weights.metadata[Checkpoint.Key.format] == "lenetkit-1")

        let network = try TrainingTests.smallNetwork(seed: 99)  // another start: everything must come from the files
        let trainer = try Trainer(network: network, dataset: try Self.data(), options: kept.options)
        try trainer.resume(from: path)
        let stepsPerEpoch = 6
        #expect(trainer.epoch == kept.epochs)
        #expect(trainer.stepInEpoch == kept.steps)
        #expect(trainer.imagesSeen == 90 * kept.epochs + 16 * kept.steps)
        #expect(trainer.optimizer.stepCount == stepsPerEpoch * kept.epochs + kept.steps)
        for entry in network.parameters.entries {
            #expect(network.parameters.values(of: entry.name) == weights[entry.name]?.values, "\(entry.name)")
        }
        for tensor in trainer.optimizer.stateTensors() {
            #expect(tensor.values == state[tensor.name]?.values, "\(tensor.name)")
        }

        while trainer.epoch < kept.options.epochs {
            let result = try trainer.trainEpoch()
            #expect(result.loss.isFinite && result.isComplete)
        }
        let again = try temporaryDirectory().appendingPathComponent("again.safetensors").path
        try trainer.saveCheckpoint(to: again)
        let reread = try Trainer(network: try TrainingTests.smallNetwork(seed: 7), dataset: try Self.data(), options: kept.options)
        try reread.resume(from: again)
        #expect(Array(reread.network.parameters.values) == Array(network.parameters.values))
        #expect(reread.optimizer.stepCount == stepsPerEpoch * kept.options.epochs)
    }
}

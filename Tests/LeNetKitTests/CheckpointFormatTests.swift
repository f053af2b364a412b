import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Checkpoints kept in `Fixtures/checkpoints` as the code of their day
/// wrote them: `lenetkit-1` ones (flat state metadata) written on
/// 2026-12-07, before the training state became one JSON value, and
/// `lenetkit-2` ones written the same day after it. Every later format must
/// go on reading and resuming them.
struct CheckpointFormatTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// One kept checkpoint: how it was trained and where it stopped.
    struct Kept: Sendable, CustomTestStringConvertible {
        var name: String
        /// The format it was written in (`Checkpoint.Key.format` of its weights file).
        var format: String
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

    /// In each format, an Adam checkpoint stopped 3 steps into its second
    /// epoch, and an SGD (momentum 0.9) one between epochs, of
    /// `TrainingTests.smallNetwork` on 90 squares (6 steps an epoch).
    static let kept = [
        Kept(name: "lenetkit1-adam-midepoch", format: "lenetkit-1", optimizer: .adam, epochs: 1, steps: 3),
        Kept(name: "lenetkit1-sgd", format: "lenetkit-1", optimizer: .sgd, epochs: 1, steps: 0),
        Kept(name: "lenetkit2-adam-midepoch", format: "lenetkit-2", optimizer: .adam, epochs: 1, steps: 3),
        Kept(name: "lenetkit2-sgd", format: "lenetkit-2", optimizer: .sgd, epochs: 1, steps: 0),
    ]

    static func data() throws -> ImageDataset { try TrainingTests.squares(count: 90, seed: 1) }

    /// Writes the kept checkpoints of the format the code writes today into
    /// the source tree (those of older formats stay as they are). It runs
    /// only with `LENETKIT_WRITE_CHECKPOINT_FIXTURES=1`: the files are meant
    /// to stay as the code of their day wrote them, not to follow the code.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["LENETKIT_WRITE_CHECKPOINT_FIXTURES"] == "1"),
          arguments: kept.filter { $0.format == Checkpoint.format })
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
        #expect(weights.metadata[Checkpoint.Key.format] == kept.format)

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
        for tensor in trainer.checkpointed.stateTensors() {
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

    /// What each kept lenetkit-1 state file's text says, as the training
    /// state it converts to: the words and Double bit patterns copied from
    /// its `shuffle_state` and `epoch_running`.
    static let lenetkit1States: [String: TrainingState] = [
        "lenetkit1-adam-midepoch": TrainingState(
            epoch: 1, imagesSeen: 138, epochStep: 3, optimizer: .adam,
            shuffleState: [0x7ad_93ab_1898_0b7d, 0x5ff7_b6de_8296_fcab, 0x2d4d_f6b9_2bed_8644, 0x9a57_471f_c1ee_cef3],
            weightsDigest: "8a4dc8894d01a328", ema: nil,
            interruptedEpoch: TrainingState.InterruptedEpoch(
                batchSize: 16, examples: 90, lossSum: Double(bitPattern: 0x405a_defe_0000_0000), images: 0x30, correct: 0xc,
                seconds: Double(bitPattern: 0x3f7e_9f00_4708_e43b)),
            timeBudget: nil),
        "lenetkit1-sgd": TrainingState(
            epoch: 1, imagesSeen: 90, epochStep: 0, optimizer: .sgd,
            shuffleState: [0x7ad_93ab_1898_0b7d, 0x5ff7_b6de_8296_fcab, 0x2d4d_f6b9_2bed_8644, 0x9a57_471f_c1ee_cef3],
            weightsDigest: "509aaee3d4dbd579", ema: nil, interruptedEpoch: nil, timeBudget: nil),
    ]

    /// A kept lenetkit-1 state converts to the training state its flat keys
    /// say, field by field; resumed and saved again straight away, the
    /// checkpoint's lenetkit-2 state holds that same value, and its weights
    /// file the same tensors.
    @Test(arguments: kept.filter { $0.format == Checkpoint.legacyFormat })
    func testLenetkit1StateConvertsToTheSameValue(_ kept: Kept) throws {
        let path = try #require(Bundle.module.url(forResource: kept.name, withExtension: "safetensors",
                                                  subdirectory: "Fixtures/checkpoints")).path
        let statePath = Checkpoint.statePath(for: path)
        let stateFile = try SafetensorsFile.read(path: statePath)
        #expect(stateFile.metadata[Checkpoint.Key.format] == nil && stateFile.metadata[TrainingState.metadataKey] == nil)
        let expected = try #require(Self.lenetkit1States[kept.name])
        let converted = try TrainingState(stateFile: stateFile, imagesSeen: expected.imagesSeen, source: statePath)
        #expect(converted == expected)
        #expect(converted.interruptedEpoch?.lossSum.bitPattern == expected.interruptedEpoch?.lossSum.bitPattern)
        #expect(converted.interruptedEpoch?.seconds.bitPattern == expected.interruptedEpoch?.seconds.bitPattern)

        let trainer = try Trainer(network: try TrainingTests.smallNetwork(seed: 99), dataset: try Self.data(), options: kept.options)
        try trainer.resume(from: path)
        let again = try temporaryDirectory().appendingPathComponent("again.safetensors").path
        try trainer.saveCheckpoint(to: again)
        #expect(try trainingState(ofCheckpoint: again) == expected)
        #expect(try SafetensorsFile.read(path: again).tensors == SafetensorsFile.read(path: path).tensors)
        #expect(try SafetensorsFile.read(path: again).metadata[Checkpoint.Key.format] == Checkpoint.format)
    }
}

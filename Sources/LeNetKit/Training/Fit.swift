/// One finished epoch of `Trainer.fit`: what training did, and how the
/// network did on the test set after it.
public struct FitEpoch: Sendable {
    /// The epoch's training figures (`isComplete` is always true here).
    public var result: EpochResult
    /// The evaluation on `fit`'s test set after the epoch, nil without one.
    public var evaluation: Evaluation?
}

/// How `Trainer.fit` ended.
public enum FitOutcome: Equatable, Sendable {
    /// Every epoch up to the one asked for is done (none was left to do
    /// when the trainer had done them already).
    case finished
    /// `shouldStop` said stop: the position, mid-epoch included, is in the
    /// checkpoint when one was given, and a `resume(from:)` and `fit`
    /// continue from it to the weights an uninterrupted run ends with.
    case stopped
}

extension Trainer {
    /// The whole training loop: epochs until `epochs` are done (counting
    /// those a resumed checkpoint did), each followed by an evaluation on
    /// `test` and a checkpoint; the loop `lenet train` runs.
    ///
    /// The checkpoint is written after each epoch's evaluation (atomically,
    /// so a crash leaves the previous one), and on a stop request, mid-epoch
    /// included. Resuming from it with `resume(from:)` and calling `fit`
    /// again gives bitwise the weights of a run that never stopped.
    /// - Parameters:
    ///   - epochs: the epoch to train up to; by default `options.epochs`.
    ///   - test: evaluated after every epoch (at the training batch size,
    ///     which reuses the training buffers), or nil.
    ///   - checkpoint: the weights file `saveCheckpoint(to:)` writes (its
    ///     state beside it), or nil to save nothing.
    ///   - misclassifiedLimit: how many misclassified test images each
    ///     evaluation lists (for a report).
    ///   - progress: called after every step.
    ///   - epochEnd: called after every epoch's evaluation and checkpoint;
    ///     an error it throws ends `fit` with that error.
    ///   - shouldStop: asked before every step (a Ctrl-C handler's flag).
    /// - Returns: `.finished`, or `.stopped` when `shouldStop` said so.
    /// - Throws: `LeNetError` when `epochs` is not positive, the loss stops
    ///   being finite (the last checkpoint is kept), or a checkpoint
    ///   cannot be written; and what `epochEnd` throws.
    @discardableResult
    public func fit(epochs: Int? = nil, test: ImageDataset? = nil, checkpoint: String? = nil, misclassifiedLimit: Int = 0,
                    progress: ((StepProgress) -> Void)? = nil, epochEnd: ((FitEpoch) throws -> Void)? = nil,
                    shouldStop: (() -> Bool)? = nil) throws -> FitOutcome {
        let epochs = epochs ?? options.epochs
        guard epochs > 0 else { throw LeNetError("must be > 0, got \(epochs)", subject: "fit(epochs:)") }
        func stop() throws -> FitOutcome {
            if let checkpoint { try saveCheckpoint(to: checkpoint) }
            return .stopped
        }
        while epoch < epochs {
            if shouldStop?() == true { return try stop() }
            let result = try trainEpoch(progress: progress, shouldStop: shouldStop)
            guard result.isComplete else { return try stop() }
            let evaluation = try test.map {
                try dataParallel.evaluate(on: $0, normalization: options.normalization, batchSize: options.batchSize,
                                          misclassifiedLimit: misclassifiedLimit,
                                          testTimeAugmentation: options.testTimeAugmentation)
            }
            if let checkpoint { try saveCheckpoint(to: checkpoint) }
            try epochEnd?(FitEpoch(result: result, evaluation: evaluation))
        }
        return .finished
    }
}

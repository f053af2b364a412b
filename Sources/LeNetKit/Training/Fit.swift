import Dispatch

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
    /// `test` and a checkpoint; the loop `lenet train` runs. With
    /// `options.ema` the evaluation and the checkpoint's weights are the
    /// weights' moving average; when `fit` returns, the network holds the
    /// trained weights (`withAveragedWeights` shows the average). With
    /// `options.timeBudget`, epochs until the budget is spent instead: the
    /// schedule is fitted to it, and the last epoch may end early, with its
    /// evaluation and checkpoint, inside the budget.
    ///
    /// The checkpoint is written after each epoch's evaluation (atomically,
    /// so a crash leaves the previous one), and on a stop request, mid-epoch
    /// included. Resuming from it with `resume(from:)` and calling `fit`
    /// again gives bitwise the weights of a run that never stopped.
    /// - Parameters:
    ///   - epochs: the epoch to train up to; by default `options.epochs`
    ///     (ignored with a time budget).
    ///   - test: evaluated after every epoch (at the training batch size,
    ///     which reuses the training buffers), or nil.
    ///   - checkpoint: the weights file `saveCheckpoint(to:)` writes (its
    ///     state beside it), or nil to save nothing.
    ///   - misclassifiedLimit: how many misclassified test images each
    ///     evaluation lists (for a report).
    ///   - progress: called after every step.
    ///   - epochEnd: called after every epoch's evaluation and checkpoint,
    ///     with the network holding the weights evaluated (with
    ///     `options.ema`, the average: see `withAveragedWeights`); an error
    ///     it throws ends `fit` with that error.
    ///   - shouldStop: asked before every step (a Ctrl-C handler's flag).
    /// - Returns: `.finished`, or `.stopped` when `shouldStop` said so.
    /// - Throws: `LeNetError` when `epochs` is not positive, the loss stops
    ///   being finite (the last checkpoint is kept), or a checkpoint
    ///   cannot be written; and what `epochEnd` throws.
    @discardableResult
    public func fit(epochs: Int? = nil, test: ImageDataset? = nil, checkpoint: String? = nil, misclassifiedLimit: Int = 0,
                    progress: ((EpochResult) -> Void)? = nil, epochEnd: ((EpochResult) throws -> Void)? = nil,
                    shouldStop: (() -> Bool)? = nil) throws -> FitOutcome {
        let epochs = epochs ?? options.epochs
        guard epochs > 0 else { throw LeNetError("must be > 0, got \(epochs)", subject: "fit(epochs:)") }
        var clock = BudgetClock(self, testImages: test?.count ?? 0)
        func stop() throws -> FitOutcome {
            clock.record()
            if let checkpoint { try saveCheckpoint(to: checkpoint) }
            return .stopped
        }
        while clock.budget != nil || epoch < epochs {
            if shouldStop?() == true { return try stop() }
            var budgetSpent = false
            var result = try trainEpoch(progress: progress, shouldStop: {
                if shouldStop?() == true { return true }
                budgetSpent = clock.isSpent()
                return budgetSpent
            })
            guard result.isComplete || budgetSpent else { return try stop() }
            let epochEndStart = DispatchTime.now().uptimeNanoseconds
            // The epoch's end sees what training yields: with EMA, the average.
            try withAveragedWeights {
                result.evaluation = try test.map {
                    try dataParallel.evaluate(on: $0, normalization: options.normalization, batchSize: options.batchSize,
                                              misclassifiedLimit: misclassifiedLimit,
                                              testTimeAugmentation: options.testTimeAugmentation)
                }
                clock.record()
                if let checkpoint { try saveCheckpoint(to: checkpoint) }
                try epochEnd?(result)
            }
            if budgetSpent { return .finished }
            // An epoch's end (the evaluation, the checkpoint, the caller's
            // report) is what the budget keeps for the last one.
            clock.epochEnded(seconds: Double(DispatchTime.now().uptimeNanoseconds - epochEndStart) / 1e9)
            clock.fitSchedule()
        }
        return .finished
    }
}

/// `fit`'s account of a time budget (`TrainingOptions.timeBudget`): the
/// seconds spent, the time a step and an evaluation take, and the schedule
/// length that fits what is left.
struct BudgetClock {
    /// The trainer whose schedule and spent seconds this keeps.
    let trainer: Trainer
    /// The budget in seconds, or nil for a run of so many epochs.
    let budget: Double?
    private let started = DispatchTime.now().uptimeNanoseconds
    private let spentBefore: Double
    private let stepsBefore: Int
    private let testImages: Int
    /// The last epoch end's seconds (evaluation, checkpoint, the caller's
    /// `epochEnd`; nil before the first), and all of them.
    private var epochEndSeconds: Double?, epochEndsSeconds = 0.0
    /// Steps timed before the schedule is first fitted: until then it runs
    /// with a provisional length (the one-cycle and cosine schedules barely
    /// move over their first steps, whatever the length).
    static let calibrationSteps = 50

    init(_ trainer: Trainer, testImages: Int) {
        self.trainer = trainer
        self.testImages = testImages
        budget = trainer.options.timeBudget
        spentBefore = trainer.budgetSecondsUsed
        stepsBefore = trainer.optimizer.stepCount
        // A resumed run keeps what the run before it kept for the last
        // evaluation until it has timed one: with nothing timed yet it would
        // keep nothing, and take a step the run before stopped short of.
        epochEndSeconds = trainer.budgetReserve
        if budget != nil, trainer.scheduleSteps == nil {
            trainer.scheduleSteps = trainer.optimizer.stepCount + 100 * Self.calibrationSteps
        }
    }

    /// The budget's seconds spent, this run's and the resumed ones'.
    var spent: Double { spentBefore + Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 }

    /// Whether to stop before the next step: the schedule is done, or the
    /// last evaluation's time would overrun the budget. Fits the schedule
    /// once the first steps have been timed.
    func isSpent() -> Bool {
        guard let budget else { return false }
        let done = trainer.optimizer.stepCount - stepsBefore
        if done == Self.calibrationSteps { fitSchedule() }
        return trainer.optimizer.stepCount >= (trainer.scheduleSteps ?? 0) || spent + expectedEvaluation >= budget
    }

    /// What the next epoch's end will take: the last one's time, or before
    /// the first, a third of the training time of as many images as the
    /// test set (a forward pass is about a third of a training step's work).
    private var expectedEvaluation: Double {
        if let epochEndSeconds { return epochEndSeconds }
        let done = trainer.optimizer.stepCount - stepsBefore
        guard done > 0, testImages > 0 else { return 0 }
        let perImage = (spent - spentBefore) / Double(done * max(trainer.options.batchSize, 1))
        return perImage * Double(testImages) / 3
    }

    mutating func epochEnded(seconds: Double) {
        epochEndSeconds = seconds
        epochEndsSeconds += seconds
    }

    /// Sets the schedule's length to the steps already taken plus those
    /// that fit in what is left of the budget, with an evaluation at every
    /// epoch's end and one at the last step.
    func fitSchedule() {
        guard let budget else { return }
        let done = trainer.optimizer.stepCount - stepsBefore
        let trainingSeconds = spent - spentBefore - epochEndsSeconds
        guard done > 0, trainingSeconds > 0 else { return }
        let perStep = trainingSeconds / Double(done), left = budget - spent
        let batch = max(trainer.options.batchSize, 1)
        let perEpoch = max((trainer.dataset.count + batch - 1) / batch, 1)
        let inThisEpoch = perEpoch - trainer.stepInEpoch
        var steps = max(Int(left / perStep), 0)
        for _ in 0..<3 {
            let evaluations = 1 + (steps > inThisEpoch ? (steps - inThisEpoch + perEpoch - 1) / perEpoch : 0)
            steps = max(Int((left - Double(evaluations) * expectedEvaluation) / perStep), 0)
        }
        trainer.scheduleSteps = trainer.optimizer.stepCount + steps
    }

    /// Notes the seconds spent, and those kept for the last evaluation, in
    /// the trainer, for its checkpoint.
    func record() {
        guard budget != nil else { return }
        trainer.budgetSecondsUsed = spent
        trainer.budgetReserve = expectedEvaluation
    }
}

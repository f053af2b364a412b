// lenetkit-1 state files, written until the training state became one JSON
// value: flat string metadata, with Doubles as their bit patterns in
// hexadecimal. They are read only here, into the same `TrainingState` a
// lenetkit-2 file decodes to, and checked by the same `validate()`.
import Foundation

extension TrainingState {
    /// The keys of a lenetkit-1 state file beyond the weights file's
    /// (`epoch`, `epoch_step`, `ema`, of which it holds a copy).
    private enum LegacyKey {
        /// A `TrainingOptions.OptimizerKind` raw value.
        static let optimizer = "optimizer"
        /// The generator's four words in hexadecimal, comma-separated.
        static let shuffleState = "shuffle_state"
        /// 16 hexadecimal digits; absent in files from before digests.
        static let weightsDigest = "weights_digest"
        /// Mid-epoch: the epoch's batch size, decimal.
        static let batchSize = "batch_size"
        /// Mid-epoch: the number of training images, decimal.
        static let examples = "examples"
        /// Mid-epoch: the loss sum's bits, images, correct and the seconds'
        /// bits, as four hexadecimal words, comma-separated.
        static let epochRunning = "epoch_running"
        /// With a time budget: the schedule's steps (decimal, 0 before it
        /// was fitted), the seconds spent's bits and, once timed, the
        /// reserve's bits (hexadecimal), comma-separated.
        static let budget = "budget"
    }

    /// The training state a lenetkit-1 state file's flat metadata holds, as
    /// a lenetkit-1 resume read it: the same figures, bit for bit.
    /// - Parameters:
    ///   - metadata: the state file's metadata.
    ///   - imagesSeen: the weights file's `images_seen` (the state's own copy
    ///     was not read).
    ///   - source: the state file's path, for errors.
    /// - Throws: `LeNetError` naming `source` and the key that is missing,
    ///   malformed or out of range.
    init(lenetkit1 metadata: [String: String], imagesSeen: Int, source: String) throws {
        func failure(_ key: String, expected: String) -> LeNetError {
            LeNetError("lenetkit-1 metadata '\(key)' is \(metadata[key].map(Self.shown) ?? "missing"), expected \(expected)", subject: source)
        }
        func count(_ key: String) throws -> Int {
            guard let text = metadata[key], let value = Int(text) else { throw failure(key, expected: "a whole number") }
            return value
        }
        /// Hexadecimal words, comma-separated, `count` of them.
        func words(_ key: String, count: Int, expected: String) throws -> [UInt64] {
            let parts = (metadata[key] ?? "").split(separator: ",", omittingEmptySubsequences: false)
            let words = parts.compactMap { UInt64($0, radix: 16) }
            guard words.count == parts.count, words.count == count else { throw failure(key, expected: expected) }
            return words
        }
        let step = metadata[Checkpoint.Key.epochStep] == nil ? 0 : try count(Checkpoint.Key.epochStep)
        guard let optimizer = metadata[LegacyKey.optimizer].flatMap(TrainingOptions.OptimizerKind.init(rawValue:)) else {
            throw failure(LegacyKey.optimizer, expected: TrainingOptions.OptimizerKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        var ema: Double?
        if let text = metadata[Checkpoint.Key.ema] {
            guard let value = Double(text) else { throw failure(Checkpoint.Key.ema, expected: "a number in (0, 1)") }
            ema = value
        }
        var running: InterruptedEpoch?
        if step > 0 {
            let figures = try words(LegacyKey.epochRunning, count: 4,
                                    expected: "four hexadecimal words (the loss sum's bits, images, correct, the seconds' bits)")
            guard let images = Int(exactly: figures[1]), let correct = Int(exactly: figures[2]) else {
                throw failure(LegacyKey.epochRunning, expected: "images and correct of at most \(Int.max)")
            }
            running = InterruptedEpoch(batchSize: try count(LegacyKey.batchSize), examples: try count(LegacyKey.examples),
                                       lossSum: Double(bitPattern: figures[0]), images: images, correct: correct,
                                       seconds: Double(bitPattern: figures[3]))
        }
        var budget: BudgetAccount?
        if let text = metadata[LegacyKey.budget] {
            let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            let seconds = parts.dropFirst().compactMap { UInt64($0, radix: 16).map { Double(bitPattern: $0) } }
            guard parts.count == 2 || parts.count == 3, seconds.count == parts.count - 1,
                  let steps = parts.first.flatMap({ Int($0) }) else {
                throw failure(LegacyKey.budget, expected: "steps, seconds spent and seconds kept for the last evaluation "
                              + "(hexadecimal Double bits), comma-separated")
            }
            budget = BudgetAccount(scheduleSteps: steps == 0 ? nil : steps, secondsUsed: seconds[0], reserve: seconds.dropFirst().first)
        }
        self.init(epoch: try count(Checkpoint.Key.epoch), imagesSeen: imagesSeen, epochStep: step, optimizer: optimizer,
                  shuffleState: try words(LegacyKey.shuffleState, count: 4, expected: "four hexadecimal words, comma-separated"),
                  weightsDigest: metadata[LegacyKey.weightsDigest], ema: ema, interruptedEpoch: running, timeBudget: budget)
        do {
            try validate()
        } catch let error as TrainingStateFieldError {
            let key = Self.legacyKey(of: error.field)
            let named = key == error.field ? "'\(key)'" : "'\(key)' (training state field '\(error.field)')"
            throw LeNetError("lenetkit-1 metadata \(named) \(error.problem)", subject: source)
        }
    }

    /// The lenetkit-1 key a field of the training state was read from.
    private static func legacyKey(of field: String) -> String {
        switch field {
        case "interrupted_epoch.batch_size": LegacyKey.batchSize
        case "interrupted_epoch.examples": LegacyKey.examples
        case _ where field.hasPrefix("interrupted_epoch"): LegacyKey.epochRunning
        case _ where field.hasPrefix("time_budget"): LegacyKey.budget
        case "images_seen": "images_seen (of the weights file)"
        default: field
        }
    }
}

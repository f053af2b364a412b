// The training state of a checkpoint as one value: what `Trainer.resume`
// restores besides tensors. A lenetkit-2 state file stores it as JSON under
// its `training_state` metadata key, beside the optimizer's tensors; a
// lenetkit-1 file's flat keys are converted into the same value
// (LegacyTrainingState.swift), so `resume` has one way of restoring.
//
// JSON rather than one string per figure: the Doubles (loss sum, seconds)
// round-trip bitwise as JSONEncoder writes them (the shortest digits that
// read back to the same Double, subnormals included), and UInt64 words and
// Int counts are read back exactly by JSONDecoder, so no bit patterns in
// hexadecimal are needed and the file reads as what it means. Tested in
// TrainingStateTests.
import Foundation

/// Everything `Trainer.resume` restores that is not a tensor: where training
/// stood, the shuffling generator, the interrupted epoch's running figures
/// and the time budget's account. docs/CHECKPOINTS.md describes its JSON
/// field by field.
///
/// Decoding checks what a damaged or hostile file could get wrong and names
/// the field; a value that decodes resumes without trapping.
struct TrainingState: Equatable, Sendable {
    /// The state file's metadata key holding the JSON.
    static let metadataKey = "training_state"

    /// Epochs completed.
    var epoch: Int
    /// Training images processed in all epochs so far.
    var imagesSeen: Int
    /// Batches of the next epoch already trained: 0 between epochs.
    var epochStep: Int
    /// The optimizer whose tensors the state file holds.
    var optimizer: TrainingOptions.OptimizerKind
    /// The batch order's xoshiro256** generator, its four words: the state
    /// the next epoch's shuffle draws from, or, mid-epoch, the one the
    /// current epoch's shuffle was drawn from (`BatchOrder.epochStart`).
    var shuffleState: [UInt64]
    /// `Checkpoint.weightsDigest` of the weights the state was saved with;
    /// nil only in a lenetkit-1 file written before digests were recorded.
    var weightsDigest: String?
    /// The decay of the weight average (`TrainingOptions.ema`), when there is one.
    var ema: Double?
    /// The running figures of the epoch under way: present exactly when
    /// `epochStep > 0`.
    var interruptedEpoch: InterruptedEpoch?
    /// The time budget's account, in a run with `TrainingOptions.timeBudget`.
    var timeBudget: BudgetAccount?

    /// An epoch stopped part way: it continues only with the same batches,
    /// and its result counts the steps before the stop.
    struct InterruptedEpoch: Equatable, Sendable {
        /// `TrainingOptions.batchSize` of the epoch.
        var batchSize: Int
        /// The number of training images.
        var examples: Int
        /// Σ batch loss × batch size over the steps so far.
        var lossSum: Double
        /// Images trained in the epoch so far.
        var images: Int
        /// Of those, the ones classified right.
        var correct: Int
        /// Seconds the epoch has taken so far.
        var seconds: Double
    }

    /// What `fit` keeps of a time budget (`Trainer.scheduleSteps`,
    /// `budgetSecondsUsed`, `budgetReserve`).
    struct BudgetAccount: Equatable, Sendable {
        /// The schedule's length in optimizer steps as last fitted to the
        /// budget; nil before it was first fitted.
        var scheduleSteps: Int?
        /// The budget's seconds spent.
        var secondsUsed: Double
        /// The seconds kept back for the last evaluation; nil before an
        /// epoch's end has been timed.
        var reserve: Double?
    }

    /// The shuffling generator, nil unless `shuffleState` has four words.
    var generator: SeededGenerator? {
        guard shuffleState.count == 4 else { return nil }
        return SeededGenerator(state: (shuffleState[0], shuffleState[1], shuffleState[2], shuffleState[3]))
    }
}

/// A field of a training state that is missing, of another kind than the
/// format says, or out of range.
struct TrainingStateFieldError: Error, Equatable {
    /// Its path in the JSON: `epoch`, `interrupted_epoch.correct`,
    /// `shuffle_state[2]`; empty for the whole value.
    var field: String
    /// What is wrong, worded to follow the field: "is -1, expected …".
    var problem: String

    init(_ field: String, _ problem: String) {
        self.field = field
        self.problem = problem
    }
}

// MARK: - Checks

extension TrainingState {
    /// Throws `TrainingStateFieldError` for the first field out of range:
    /// counts negative or beyond `WholeNumber`'s limits, seconds or a loss
    /// sum not finite or negative, more images in the epoch than seen or
    /// more correct than images, a generator that is not four words or all
    /// zero, an interrupted epoch's figures without a step or a step without
    /// them.
    func validate() throws {
        try Self.check(epoch, "epoch", in: 0...WholeNumber.maximumCount)
        try Self.check(imagesSeen, "images_seen", in: 0...WholeNumber.maximumImages)
        try Self.check(epochStep, "epoch_step", in: 0...WholeNumber.maximumCount)
        guard shuffleState.count == 4 else {
            throw TrainingStateFieldError("shuffle_state", "has \(shuffleState.count) words, expected 4")
        }
        // xoshiro256** stays at zero from there: the shuffle would never change.
        guard shuffleState.contains(where: { $0 != 0 }) else {
            throw TrainingStateFieldError("shuffle_state", "is all zeros, a state the generator never reaches")
        }
        if let digest = weightsDigest, digest.count != 16 || !digest.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) {
            throw TrainingStateFieldError("weights_digest", "is \(Self.shown(digest)), expected 16 lowercase hexadecimal digits")
        }
        if let ema, !(ema > 0 && ema < 1) {
            throw TrainingStateFieldError("ema", "is \(ema), expected a number in (0, 1)")
        }
        switch (epochStep, interruptedEpoch) {
        case (1..., nil):
            throw TrainingStateFieldError("interrupted_epoch", "is missing, and epoch_step says the state was written \(epochStep) steps into an epoch")
        case (0, .some):
            throw TrainingStateFieldError("interrupted_epoch", "is present, and epoch_step says the state was written between epochs")
        default:
            break
        }
        if let running = interruptedEpoch {
            let field = "interrupted_epoch."
            try Self.check(running.batchSize, field + "batch_size", in: 1...WholeNumber.maximumCount)
            try Self.check(running.examples, field + "examples", in: 1...WholeNumber.maximumImages)
            try Self.check(running.images, field + "images", in: 0...imagesSeen, upTo: "images_seen")
            try Self.check(running.correct, field + "correct", in: 0...running.images, upTo: field + "images")
            try Self.check(nonNegative: running.lossSum, field + "loss_sum")
            try Self.check(nonNegative: running.seconds, field + "seconds")
        }
        if let budget = timeBudget {
            if let steps = budget.scheduleSteps {
                try Self.check(steps, "time_budget.schedule_steps", in: 1...WholeNumber.maximumCount)
            }
            try Self.check(nonNegative: budget.secondsUsed, "time_budget.seconds_used")
            if let reserve = budget.reserve { try Self.check(nonNegative: reserve, "time_budget.reserve") }
        }
    }

    /// Throws unless `value` is in `range`; `upTo` names the field that
    /// bounds it, when one does.
    private static func check(_ value: Int, _ field: String, in range: ClosedRange<Int>, upTo bound: String? = nil) throws {
        guard !range.contains(value) else { return }
        if let bound, value > range.upperBound {
            throw TrainingStateFieldError(field, "is \(value), more than \(bound) (\(range.upperBound))")
        }
        throw TrainingStateFieldError(field, "is \(value), expected a whole number from \(range.lowerBound) to \(range.upperBound)")
    }

    /// Throws unless `value` is finite and ≥ 0 (seconds, a sum of losses).
    private static func check(nonNegative value: Double, _ field: String) throws {
        guard value.isFinite, value >= 0 else {
            throw TrainingStateFieldError(field, "is \(value), expected a finite number ≥ 0")
        }
    }

    /// A string from a file, for a message: quoted and escaped (one line
    /// whatever it holds), cut at 40 characters.
    static func shown(_ text: String) -> String {
        (text.count > 40 ? String(text.prefix(40)) + "…" : text).debugDescription
    }
}

// MARK: - JSON

extension TrainingState: Codable {
    private enum Keys: String, CodingKey, CaseIterable {
        case format, epoch, optimizer, ema
        case imagesSeen = "images_seen", epochStep = "epoch_step", shuffleState = "shuffle_state"
        case weightsDigest = "weights_digest", interruptedEpoch = "interrupted_epoch", timeBudget = "time_budget"
    }

    /// Reads and validates (`validate()`) a lenetkit-2 value.
    /// - Throws: `TrainingStateFieldError` naming the first field that is
    ///   missing, unknown, of another kind or out of range.
    init(from decoder: any Decoder) throws {
        // The format first: a later one's fields are not ours to judge.
        let fields = try JSONFields<Keys>(decoder, checkingKeys: false)
        let format: String = try fields.value(.format, "a string")
        guard format == Checkpoint.format else {
            throw TrainingStateFieldError("format", "is \(Self.shown(format)); this LeNetKit reads \(Checkpoint.format) (and \(Checkpoint.legacyFormat)) states")
        }
        try fields.rejectUnknownKeys(decoder)
        epoch = try fields.value(.epoch, "a whole number")
        imagesSeen = try fields.value(.imagesSeen, "a whole number")
        epochStep = try fields.value(.epochStep, "a whole number")
        let names = TrainingOptions.OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")
        let name: String = try fields.value(.optimizer, "one of \(names)")
        guard let kind = TrainingOptions.OptimizerKind(rawValue: name) else {
            throw TrainingStateFieldError(fields.name(.optimizer), "is \(Self.shown(name)), expected one of \(names)")
        }
        optimizer = kind
        shuffleState = try fields.words(.shuffleState)
        weightsDigest = try fields.value(.weightsDigest, "a string of 16 hexadecimal digits")
        ema = try fields.optional(.ema, "a number in (0, 1)")
        interruptedEpoch = try fields.optional(.interruptedEpoch, "an object")
        timeBudget = try fields.optional(.timeBudget, "an object")
        try validate()
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(Checkpoint.format, forKey: .format)
        try container.encode(epoch, forKey: .epoch)
        try container.encode(imagesSeen, forKey: .imagesSeen)
        try container.encode(epochStep, forKey: .epochStep)
        try container.encode(optimizer.rawValue, forKey: .optimizer)
        try container.encode(shuffleState, forKey: .shuffleState)
        try container.encodeIfPresent(weightsDigest, forKey: .weightsDigest)
        try container.encodeIfPresent(ema, forKey: .ema)
        try container.encodeIfPresent(interruptedEpoch, forKey: .interruptedEpoch)
        try container.encodeIfPresent(timeBudget, forKey: .timeBudget)
    }

    /// The JSON a state file stores: keys sorted, no spaces.
    /// - Parameter source: the state file, for the error.
    /// - Throws: `LeNetError` naming `source` and the field when the value
    ///   is out of range (it would not resume).
    func json(source: String) throws -> String {
        do {
            try validate()
        } catch let error as TrainingStateFieldError {
            throw LeNetError("cannot save training state field '\(error.field)', which \(error.problem)", subject: source)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        } catch {
            throw LeNetError("cannot encode the training state: \(error)", subject: source)
        }
    }

    /// The value of a lenetkit-2 state file's `training_state` JSON.
    /// - Throws: `LeNetError` naming `source` and the field that is wrong.
    static func decode(json: String, source: String) throws -> TrainingState {
        do {
            return try JSONDecoder().decode(TrainingState.self, from: Data(json.utf8))
        } catch let error as TrainingStateFieldError {
            let what = error.field.isEmpty ? "metadata '\(metadataKey)'" : "training state field '\(error.field)'"
            throw LeNetError("\(what) \(error.problem)", subject: source)
        } catch {
            throw LeNetError("metadata '\(metadataKey)' is not valid JSON", subject: source)
        }
    }

    /// The training state in a state file: its `training_state` JSON
    /// (lenetkit-2), or the flat keys of a lenetkit-1 file (which has no
    /// `format`) converted by `init(lenetkit1:imagesSeen:source:)`.
    /// - Parameters:
    ///   - imagesSeen: the weights file's `images_seen`, which a lenetkit-1
    ///     resume took from there.
    ///   - source: the state file's path, for errors.
    /// - Throws: `LeNetError` naming `source` and the field.
    init(stateFile file: SafetensorsFile, imagesSeen: Int, source: String) throws {
        if let json = file.metadata[Self.metadataKey] {
            self = try Self.decode(json: json, source: source)
            return
        }
        switch file.metadata[Checkpoint.Key.format] {
        case nil, Checkpoint.legacyFormat?:
            self = try Self(lenetkit1: file.metadata, imagesSeen: imagesSeen, source: source)
        case let other?:
            throw LeNetError("has format \(Self.shown(other)) and no '\(Self.metadataKey)' metadata; this LeNetKit reads "
                             + "\(Checkpoint.format) and \(Checkpoint.legacyFormat) state files", subject: source)
        }
    }
}

// The nested values' encoders are synthesized from their CodingKeys (an
// optional field left out when nil); their decoders name the field.

extension TrainingState.InterruptedEpoch: Codable {
    private enum CodingKeys: String, CodingKey, CaseIterable {
        case batchSize = "batch_size", examples, lossSum = "loss_sum", images, correct, seconds
    }

    init(from decoder: any Decoder) throws {
        let fields = try JSONFields<CodingKeys>(decoder)
        batchSize = try fields.value(.batchSize, "a whole number")
        examples = try fields.value(.examples, "a whole number")
        lossSum = try fields.value(.lossSum, "a number")
        images = try fields.value(.images, "a whole number")
        correct = try fields.value(.correct, "a whole number")
        seconds = try fields.value(.seconds, "a number")
    }
}

extension TrainingState.BudgetAccount: Codable {
    private enum CodingKeys: String, CodingKey, CaseIterable {
        case scheduleSteps = "schedule_steps", secondsUsed = "seconds_used", reserve
    }

    init(from decoder: any Decoder) throws {
        let fields = try JSONFields<CodingKeys>(decoder)
        scheduleSteps = try fields.optional(.scheduleSteps, "a whole number")
        secondsUsed = try fields.value(.secondsUsed, "a number")
        reserve = try fields.optional(.reserve, "a number")
    }
}

/// The fields of one JSON object, each read with an error that names it
/// when it is missing or holds another kind of value. JSONDecoder's own
/// error for a number out of a type's range names no field ("The given data
/// was not valid JSON"), so each field is read on its own and described.
private struct JSONFields<Key: CodingKey & CaseIterable> {
    private let container: KeyedDecodingContainer<Key>
    /// The object's path: "" at the top, "interrupted_epoch" inside it.
    private let path: String

    /// - Parameter checkingKeys: whether to `rejectUnknownKeys` now.
    init(_ decoder: any Decoder, checkingKeys: Bool = true) throws {
        path = decoder.codingPath.map(\.stringValue).joined(separator: ".")
        do {
            container = try decoder.container(keyedBy: Key.self)
        } catch {
            throw TrainingStateFieldError(path, "is not a JSON object")
        }
        if checkingKeys { try rejectUnknownKeys(decoder) }
    }

    func name(_ key: Key) -> String { path.isEmpty ? key.stringValue : path + "." + key.stringValue }

    /// Throws for a key that is none of `Key`'s: a misspelt field would
    /// otherwise be read as missing, or not at all.
    func rejectUnknownKeys(_ decoder: any Decoder) throws {
        let known = Set(Key.allCases.map(\.stringValue))
        let keys = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
        if let unknown = keys.sorted().first(where: { !known.contains($0) }) {
            let field = String(TrainingState.shown(unknown).dropFirst().dropLast())
            throw TrainingStateFieldError(path.isEmpty ? field : path + "." + field,
                                          "is not a field of the \(Checkpoint.format) training state")
        }
    }

    /// The field's value.
    /// - Parameter expected: what it should be, for the message.
    func value<T: Decodable>(_ key: Key, _ expected: String) throws -> T {
        guard container.contains(key) else { throw TrainingStateFieldError(name(key), "is missing") }
        do {
            return try container.decode(T.self, forKey: key)
        } catch let error as TrainingStateFieldError {
            throw error
        } catch {
            throw TrainingStateFieldError(name(key), "is \(found(key)), expected \(expected)")
        }
    }

    /// The field's value, nil when it is absent or null.
    func optional<T: Decodable>(_ key: Key, _ expected: String) throws -> T? {
        guard container.contains(key), (try? container.decodeNil(forKey: key)) != true else { return nil }
        return try value(key, expected)
    }

    /// An array of UInt64 words, each element checked (their number is `validate`'s).
    func words(_ key: Key) throws -> [UInt64] {
        let expected = "a whole number from 0 to \(UInt64.max)"
        guard container.contains(key) else { throw TrainingStateFieldError(name(key), "is missing") }
        guard var list = try? container.nestedUnkeyedContainer(forKey: key) else {
            throw TrainingStateFieldError(name(key), "is \(found(key)), expected an array of four words, each \(expected)")
        }
        var words: [UInt64] = []
        while !list.isAtEnd {
            let index = list.currentIndex
            guard let word = try? list.decode(UInt64.self) else {
                let shown = (try? list.decode(Double.self)).map(Self.shown) ?? "not a number"
                throw TrainingStateFieldError("\(name(key))[\(index)]", "is \(shown), expected \(expected)")
            }
            words.append(word)
        }
        return words
    }

    /// What a field holds that could not be read as expected, for a message.
    private func found(_ key: Key) -> String {
        if let number = try? container.decode(Double.self, forKey: key) { return Self.shown(number) }
        if let text = try? container.decode(String.self, forKey: key) { return TrainingState.shown(text) }
        if let flag = try? container.decode(Bool.self, forKey: key) { return "\(flag)" }
        if (try? container.decodeNil(forKey: key)) == true { return "null" }
        if (try? container.nestedUnkeyedContainer(forKey: key)) != nil { return "an array" }
        if (try? container.nestedContainer(keyedBy: AnyKey.self, forKey: key)) != nil { return "an object" }
        return "a number beyond a Double's range"
    }

    /// A number as the file wrote it: -1 rather than -1.0.
    private static func shown(_ number: Double) -> String {
        guard let whole = Int(exactly: number) else { return "\(number)" }
        return "\(whole)"
    }
}

/// Any key of a JSON object, to list them all.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

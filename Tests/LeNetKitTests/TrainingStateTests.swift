import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// The training state of a checkpoint (`TrainingState`, lenetkit-2): its
/// JSON keeps every figure bitwise, a checkpoint resumes from it exactly,
/// and every field a damaged or hostile file gets wrong is named in one line.
struct TrainingStateTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// A state with every optional part, its Doubles all `value`.
    static func state(_ value: Double, words: [UInt64] = [0xFFFF_FFFF_FFFF_FFFF, 1 << 63, 1, 0x7ad_93ab_1898_0b7d]) -> TrainingState {
        TrainingState(epoch: 7, imagesSeen: WholeNumber.maximumImages, epochStep: 3, optimizer: .adamw, shuffleState: words,
                      weightsDigest: "0123456789abcdef", ema: 0.999,
                      interruptedEpoch: TrainingState.InterruptedEpoch(batchSize: 16, examples: 90, lossSum: value, images: 48,
                                                                       correct: 48, seconds: value),
                      timeBudget: TrainingState.BudgetAccount(scheduleSteps: 240, secondsUsed: value, reserve: value))
    }

    /// Doubles whose digits are easy to get wrong: subnormals, the largest
    /// finite, values next to powers of two and ten, and thirds.
    static let awkward: [Double] = [
        0, Double.leastNonzeroMagnitude, Double.leastNonzeroMagnitude.nextUp, Double(bitPattern: 0x000F_FFFF_FFFF_FFFF), Double.leastNormalMagnitude,
        Double.leastNormalMagnitude.nextDown, 0.1, 1.0 / 3, 2.0 / 3, 0.007475854, 107.4842529296875, 1e22, 1e23,
        9_007_199_254_740_994, 0.9999999999999999, 1.0000000000000002, 123_456_789.123_456_79, Double.greatestFiniteMagnitude,
        Double(Float.leastNonzeroMagnitude), Double(Float(0.1)),
    ]

    /// Each awkward Double, and UInt64 words up to 2⁶⁴ − 1, come back from
    /// the JSON to the bit (Swift writes the shortest digits that read back
    /// to the same Double, and reads whole numbers exactly).
    @Test(arguments: awkward)
    func testAwkwardDoublesRoundTripBitwise(_ value: Double) throws {
        let state = Self.state(value)
        let back = try TrainingState.decode(json: try state.json(source: "s"), source: "s")
        #expect(back == state)
        let figures = [back.interruptedEpoch?.lossSum, back.interruptedEpoch?.seconds, back.timeBudget?.secondsUsed, back.timeBudget?.reserve]
        #expect(figures.map { $0?.bitPattern } == Array(repeating: value.bitPattern, count: 4))
        #expect(back.shuffleState == [0xFFFF_FFFF_FFFF_FFFF, 1 << 63, 1, 0x7ad_93ab_1898_0b7d])
    }

    /// 20,000 Doubles of random bit patterns (the finite, non-negative
    /// ones) and random words round-trip bitwise too.
    @Test func testRandomBitPatternsRoundTripBitwise() throws {
        var rng = SeededGenerator(seed: 11)
        var tried = 0
        while tried < 20_000 {
            let value = abs(Double(bitPattern: rng.next()))
            guard value.isFinite else { continue }
            tried += 1
            let state = Self.state(value, words: [rng.next(), rng.next(), rng.next(), rng.next() | 1])
            let back = try TrainingState.decode(json: try state.json(source: "s"), source: "s")
            guard back == state, back.interruptedEpoch?.lossSum.bitPattern == value.bitPattern else {
                Issue.record("\(value) (bits \(String(value.bitPattern, radix: 16))) came back as \(String(describing: back.interruptedEpoch?.lossSum))")
                return
            }
        }
    }

    /// The lenetkit-2 JSON of a known checkpoint, field by field: the kept
    /// lenetkit-1 Adam checkpoint, resumed and saved again straight away.
    @Test func testJSONOfAKnownCheckpoint() throws {
        let kept = try #require(CheckpointFormatTests.kept.first { $0.name == "lenetkit1-adam-midepoch" })
        let path = try #require(Bundle.module.url(forResource: kept.name, withExtension: "safetensors",
                                                  subdirectory: "Fixtures/checkpoints")).path
        let trainer = try Trainer(network: try TrainingTests.smallNetwork(seed: 99), dataset: try CheckpointFormatTests.data(),
                                  options: kept.options)
        try trainer.resume(from: path)
        let again = try temporaryDirectory().appendingPathComponent("again.safetensors").path
        try trainer.saveCheckpoint(to: again)

        let state = try SafetensorsFile.read(path: Checkpoint.statePath(for: again))
        #expect(state.metadata.keys.sorted() == ["format", "training_state"])
        #expect(state.metadata["format"] == "lenetkit-2")
        #expect(state.tensors.map(\.name) == ["adam.exp_avg", "adam.exp_avg_sq", "adam.step"])
        #expect(state.metadata["training_state"] == """
            {"epoch":1,"epoch_step":3,"format":"lenetkit-2","images_seen":138,\
            "interrupted_epoch":{"batch_size":16,"correct":12,"examples":90,"images":48,"loss_sum":107.4842529296875,"seconds":0.007475854},\
            "optimizer":"adam","shuffle_state":[553260692297747325,6915196819640614059,3264536580079846980,11121436006537940723],\
            "weights_digest":"8a4dc8894d01a328"}
            """)
        let value = try trainingState(ofCheckpoint: again)
        #expect(value.epoch == 1 && value.epochStep == 3 && value.imagesSeen == 138 && value.optimizer == .adam)
        #expect(value.shuffleState == [553_260_692_297_747_325, 6_915_196_819_640_614_059, 3_264_536_580_079_846_980, 11_121_436_006_537_940_723])
        #expect(value.weightsDigest == "8a4dc8894d01a328" && value.ema == nil && value.timeBudget == nil)
        let running = try #require(value.interruptedEpoch)
        #expect(running.batchSize == 16 && running.examples == 90 && running.images == 48 && running.correct == 12)
        #expect(running.lossSum.bitPattern == 0x405a_defe_0000_0000 && running.seconds.bitPattern == 0x3f7e_9f00_4708_e43b)
        // The weights file keeps its flat keys, now with format lenetkit-2.
        let weights = try SafetensorsFile.read(path: again).metadata
        #expect(weights["format"] == "lenetkit-2" && weights["epoch"] == "1" && weights["epoch_step"] == "3")
        #expect(weights["images_seen"] == "138" && weights["seed"] == "3" && weights["dataset"] == "squares")
    }

    /// Options of a run with everything a state can hold: Adam, a weight
    /// average, a time budget and a one-cycle schedule (whose rate depends
    /// on the fitted schedule length).
    func budgetOptions() -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = 3
        o.batchSize = 16
        o.seed = 3
        o.threads = 1
        o.ema = 0.8
        o.timeBudget = 1000
        o.schedule = .onecycle
        return o
    }

    /// A trainer of `budgetOptions()` with the budget's account set as `fit`
    /// would have left it (a schedule of 20 steps, awkward seconds).
    func budgetTrainer(seed: UInt64 = 1) throws -> Trainer {
        let trainer = try Trainer(network: try TrainingTests.smallNetwork(seed: seed), dataset: try TrainingTests.squares(count: 90, seed: 1),
                                  options: budgetOptions())
        trainer.scheduleSteps = 20
        trainer.budgetSecondsUsed = 1.0 / 3
        trainer.budgetReserve = .leastNonzeroMagnitude
        return trainer
    }

    /// Stopped two steps into its second epoch, saved as lenetkit-2, and
    /// resumed by new objects, a run with Adam, a weight average and a time
    /// budget ends with bitwise the weights and average of one that never
    /// stopped; the budget's account comes back to the bit.
    @Test func testMidEpochAdamWithAverageAndBudgetResumesBitwise() throws {
        let straight = try budgetTrainer()
        for _ in 0..<3 { _ = try straight.trainEpoch() }

        let path = try temporaryDirectory().appendingPathComponent("ck.safetensors").path
        let stopped = try budgetTrainer()
        _ = try stopped.trainEpoch()
        var asked = 0
        _ = try stopped.trainEpoch(shouldStop: { asked += 1; return asked > 2 })
        try stopped.saveCheckpoint(to: path)
        let saved = try trainingState(ofCheckpoint: path)
        #expect(saved.epoch == 1 && saved.epochStep == 2 && saved.imagesSeen == 122 && saved.optimizer == .adam && saved.ema == 0.8)
        #expect(saved.interruptedEpoch?.images == 32 && saved.interruptedEpoch?.batchSize == 16)
        #expect(saved.timeBudget == TrainingState.BudgetAccount(scheduleSteps: 20, secondsUsed: 1.0 / 3, reserve: .leastNonzeroMagnitude))

        let resumed = try budgetTrainer(seed: 99)
        (resumed.scheduleSteps, resumed.budgetSecondsUsed, resumed.budgetReserve) = (nil, 0, nil)
        try resumed.resume(from: path)
        #expect(resumed.epoch == 1 && resumed.stepInEpoch == 2 && resumed.imagesSeen == 122)
        #expect(resumed.scheduleSteps == 20)
        #expect(resumed.budgetSecondsUsed.bitPattern == (1.0 / 3).bitPattern)
        #expect(resumed.budgetReserve?.bitPattern == (Double.leastNonzeroMagnitude).bitPattern)
        #expect(resumed.weightAverage?.updates == 8)
        let rest = try resumed.trainEpoch()
        #expect(rest.images == 90 && rest.isComplete)
        _ = try resumed.trainEpoch()
        #expect(Array(resumed.network.parameters.values).map(\.bitPattern) == Array(straight.network.parameters.values).map(\.bitPattern))
        #expect(resumed.weightAverage?.values.map(\.bitPattern) == straight.weightAverage?.values.map(\.bitPattern))
        #expect(resumed.optimizer.stepCount == 18)
    }

    /// A state that would not resume is not written, and the previous
    /// checkpoint stays.
    @Test func testAStateOutOfRangeIsNotSaved() throws {
        var state = Self.state(1)
        state.interruptedEpoch?.seconds = .nan
        let error = #expect(throws: LeNetError.self) { try state.json(source: "ck.state") }
        #expect(error.map { "\($0)" } == "ck.state: cannot save training state field 'interrupted_epoch.seconds', which is nan, expected a finite number ≥ 0")
    }

    // MARK: Hostile JSON

    /// A lenetkit-2 state file's JSON changed as `change` says, and the
    /// message `resume` must give (after the state file's path).
    struct Hostile: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var change: @Sendable (String) -> String
        var message: String

        /// `key`'s value (the first `"key":` in the JSON) replaced by `value`.
        init(_ key: String, _ value: String, _ message: String) {
            testDescription = "\(key) = \(value)"
            change = { Hostile.replace(key, in: $0, with: "\"\(key)\":" + value) }
            self.message = message
        }

        /// `key` and its value taken out.
        init(removing key: String, _ message: String) {
            testDescription = "no \(key)"
            change = { Hostile.replace(key, in: $0, with: "").replacingOccurrences(of: ",,", with: ",")
                .replacingOccurrences(of: "{,", with: "{").replacingOccurrences(of: ",}", with: "}") }
            self.message = message
        }

        /// `"key":value` put in first.
        init(adding key: String, _ value: String, _ message: String) {
            testDescription = "with \(key)"
            change = { "{\"\(key)\":\(value)," + $0.dropFirst() }
            self.message = message
        }

        /// The whole JSON replaced.
        init(whole json: String, _ message: String) {
            testDescription = json
            change = { _ in json }
            self.message = message
        }

        /// `"key":value` (value a number, string, array or flat object) replaced.
        static func replace(_ key: String, in json: String, with replacement: String) -> String {
            let pattern = "\"\(key)\":(\\[[^\\]]*\\]|\\{[^}]*\\}|\"[^\"]*\"|[^,}\\]]*)"
            guard let regex = try? NSRegularExpression(pattern: pattern),
                  let match = regex.firstMatch(in: json, range: NSRange(json.startIndex..., in: json)),
                  let range = Range(match.range, in: json) else { return json }
            return json.replacingCharacters(in: range, with: replacement)
        }
    }

    static let hostile: [Hostile] = [
        Hostile("epoch", "-1", "training state field 'epoch' is -1, expected a whole number from 0 to 1000000000"),
        Hostile("epoch", "1.5", "training state field 'epoch' is 1.5, expected a whole number"),
        Hostile("images_seen", "1e300", "training state field 'images_seen' is 1e+300, expected a whole number"),
        Hostile("images_seen", "1125899906842625", "training state field 'images_seen' is 1125899906842625, expected a whole number from 0 to 1125899906842624"),
        Hostile("epoch_step", "9223372036854775808", "training state field 'epoch_step' is 9.223372036854776e+18, expected a whole number"),
        Hostile("optimizer", #""rmsprop""#, #"training state field 'optimizer' is "rmsprop", expected one of adam, adamw, sgd, sdlm"#),
        Hostile("shuffle_state", "[1,2,3]", "training state field 'shuffle_state' has 3 words, expected 4"),
        Hostile("shuffle_state", "[0,0,0,0]", "training state field 'shuffle_state' is all zeros, a state the generator never reaches"),
        Hostile("shuffle_state", "[1,2,18446744073709551616,4]",
                "training state field 'shuffle_state[2]' is 1.8446744073709552e+19, expected a whole number from 0 to 18446744073709551615"),
        Hostile("shuffle_state", "[1,-2,3,4]", "training state field 'shuffle_state[1]' is -2, expected a whole number from 0 to 18446744073709551615"),
        Hostile("shuffle_state", #""1,2,3,4""#,
                #"training state field 'shuffle_state' is "1,2,3,4", expected an array of four words, each a whole number from 0 to 18446744073709551615"#),
        Hostile("weights_digest", #""zz""#, #"training state field 'weights_digest' is "zz", expected 16 lowercase hexadecimal digits"#),
        Hostile("ema", "1.5", "training state field 'ema' is 1.5, expected a number in (0, 1)"),
        Hostile("format", #""lenetkit-3""#, #"training state field 'format' is "lenetkit-3"; this LeNetKit reads lenetkit-2 (and lenetkit-1) states"#),
        Hostile(adding: "epochs", "3", "training state field 'epochs' is not a field of the lenetkit-2 training state"),
        Hostile("batch_size", "true", "training state field 'interrupted_epoch.batch_size' is true, expected a whole number"),
        Hostile("batch_size", "0", "training state field 'interrupted_epoch.batch_size' is 0, expected a whole number from 1 to 1000000000"),
        Hostile("images", "1000", "training state field 'interrupted_epoch.images' is 1000, more than images_seen (122)"),
        Hostile("correct", "9999", "training state field 'interrupted_epoch.correct' is 9999, more than interrupted_epoch.images (32)"),
        Hostile("loss_sum", "1e999", "training state field 'interrupted_epoch.loss_sum' is a number beyond a Double's range, expected a number"),
        Hostile("seconds", "-0.5", "training state field 'interrupted_epoch.seconds' is -0.5, expected a finite number ≥ 0"),
        Hostile("seconds_used", "-1", "training state field 'time_budget.seconds_used' is -1.0, expected a finite number ≥ 0"),
        Hostile("reserve", #""NaN""#, #"training state field 'time_budget.reserve' is "NaN", expected a number"#),
        Hostile("schedule_steps", "0", "training state field 'time_budget.schedule_steps' is 0, expected a whole number from 1 to 1000000000"),
        Hostile("time_budget", "[]", "training state field 'time_budget' is not a JSON object"),
        Hostile(removing: "optimizer", "training state field 'optimizer' is missing"),
        Hostile(removing: "interrupted_epoch",
                "training state field 'interrupted_epoch' is missing, and epoch_step says the state was written 2 steps into an epoch"),
        Hostile(removing: "loss_sum", "training state field 'interrupted_epoch.loss_sum' is missing"),
        Hostile(whole: "{", "metadata 'training_state' is not valid JSON"),
        Hostile(whole: "[1]", "metadata 'training_state' is not a JSON object"),
    ]

    /// Each hostile change to a checkpoint's state JSON makes `resume` throw
    /// one line naming the state file and the field.
    @Test(arguments: hostile)
    func testHostileStateJSONNamesTheField(_ hostile: Hostile) throws {
        let path = try temporaryDirectory().appendingPathComponent("ck.safetensors").path
        let trainer = try budgetTrainer()
        _ = try trainer.trainEpoch()
        var asked = 0
        _ = try trainer.trainEpoch(shouldStop: { asked += 1; return asked > 2 })
        try trainer.saveCheckpoint(to: path)
        try rewriteTrainingState(ofCheckpoint: path, hostile.change)
        let fresh = try budgetTrainer(seed: 5)
        let error = #expect(throws: LeNetError.self) { try fresh.resume(from: path) }
        #expect(error.map { "\($0)" } == "\(Checkpoint.statePath(for: path)): \(hostile.message)")
        #expect(error.map { !"\($0)".contains("\n") } ?? false)
    }

    // MARK: lenetkit-1 state files

    /// The kept lenetkit-1 Adam state's metadata with `key` set to `value`
    /// (nil: removed), and the message its conversion must give.
    struct Legacy: Sendable, CustomTestStringConvertible {
        var key: String, value: String?, message: String
        var testDescription: String { "\(key) = \(value ?? "nil")" }
    }

    static let legacy: [Legacy] = [
        Legacy(key: "shuffle_state", value: "0,0,0,0", message: "lenetkit-1 metadata 'shuffle_state' is all zeros, a state the generator never reaches"),
        Legacy(key: "shuffle_state", value: "1,2,x,4", message: #"lenetkit-1 metadata 'shuffle_state' is "1,2,x,4", expected four hexadecimal words, comma-separated"#),
        Legacy(key: "epoch_running", value: "405adefe00000000,30,31,0",
               message: "lenetkit-1 metadata 'epoch_running' (training state field 'interrupted_epoch.correct') is 49, more than interrupted_epoch.images (48)"),
        Legacy(key: "epoch_running", value: "7ff8000000000000,30,c,0",
               message: "lenetkit-1 metadata 'epoch_running' (training state field 'interrupted_epoch.loss_sum') is nan, expected a finite number ≥ 0"),
        Legacy(key: "epoch_running", value: "0,ffffffffffffffff,c,0",
               message: "lenetkit-1 metadata 'epoch_running' is \"0,ffffffffffffffff,c,0\", expected images and correct of at most 9223372036854775807"),
        Legacy(key: "batch_size", value: nil, message: "lenetkit-1 metadata 'batch_size' is missing, expected a whole number"),
        Legacy(key: "optimizer", value: "rmsprop", message: #"lenetkit-1 metadata 'optimizer' is "rmsprop", expected adam, adamw, sgd, sdlm"#),
        Legacy(key: "budget", value: "5,zz", message: #"lenetkit-1 metadata 'budget' is "5,zz", expected steps, seconds spent and seconds kept for the last evaluation (hexadecimal Double bits), comma-separated"#),
        Legacy(key: "budget", value: "5,bff0000000000000",
               message: "lenetkit-1 metadata 'budget' (training state field 'time_budget.seconds_used') is -1.0, expected a finite number ≥ 0"),
        Legacy(key: "epoch", value: "-2", message: "lenetkit-1 metadata 'epoch' is -2, expected a whole number from 0 to 1000000000"),
    ]

    /// A lenetkit-1 state is checked as before: each bad key gives one
    /// error naming the file and the key.
    @Test(arguments: legacy)
    func testBadLenetkit1StateNamesTheKey(_ legacy: Legacy) throws {
        let url = try #require(Bundle.module.url(forResource: "lenetkit1-adam-midepoch", withExtension: "safetensors.state",
                                                 subdirectory: "Fixtures/checkpoints"))
        var metadata = try SafetensorsFile.read(path: url.path).metadata
        metadata[legacy.key] = legacy.value
        let error = #expect(throws: LeNetError.self) { try TrainingState(lenetkit1: metadata, imagesSeen: 138, source: "old.state") }
        #expect(error.map { "\($0)" } == "old.state: \(legacy.message)")
    }

    /// A lenetkit-1 state with a time budget converts to its account: steps
    /// (0 before the schedule was fitted) and the seconds' bits.
    @Test func testLenetkit1BudgetConverts() throws {
        let url = try #require(Bundle.module.url(forResource: "lenetkit1-adam-midepoch", withExtension: "safetensors.state",
                                                 subdirectory: "Fixtures/checkpoints"))
        var metadata = try SafetensorsFile.read(path: url.path).metadata
        metadata["budget"] = "240,3fd5555555555555,1"
        #expect(try TrainingState(lenetkit1: metadata, imagesSeen: 138, source: "old.state").timeBudget
                == TrainingState.BudgetAccount(scheduleSteps: 240, secondsUsed: 1.0 / 3, reserve: .leastNonzeroMagnitude))
        metadata["budget"] = "0,0"
        #expect(try TrainingState(lenetkit1: metadata, imagesSeen: 138, source: "old.state").timeBudget
                == TrainingState.BudgetAccount(scheduleSteps: nil, secondsUsed: 0, reserve: nil))
    }
}

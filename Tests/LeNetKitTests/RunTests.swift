import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// The library's side of `lenet`: the option an error concerns, named by
/// whoever set it; the records `--log-json` and `--json` write; the memory
/// plan's culprit; the recipe's network and initialization.
struct RunTests {
    @Test func testErrorsNameTheirOptionAsTheCallerSpellsIt() throws {
        var options = TrainingOptions()
        options.batchSize = 0
        let error = try #require(throws: LeNetError.self) { try options.validate() }
        #expect(error.option == .batchSize)
        #expect(error.description == "TrainingOptions.batchSize: must be > 0, got 0")
        #expect(error.description(naming: { $0 == .batchSize ? "--batch-size" : "?" }) == "--batch-size: must be > 0, got 0")
        // Options the message mentions are named the same way; a longer name is never cut by a shorter one.
        let mention = LeNetError("lower TrainingOptions.learningRate or TrainingOptions.stepEpochs", subject: "training")
        #expect(mention.description(naming: { "<\($0)>" })
            == "training: lower <\(LeNetError.Option.learningRate)> or <\(LeNetError.Option.stepEpochs)>")
        // With a value: the subject is the option and the value.
        let memory = LeNetError("needs about 1 TB", option: .threads, value: "64")
        #expect(memory.subject == "TrainingOptions.threads 64" && memory.option == .threads)
    }

    @Test func testNormalizationFromText() throws {
        let n = try Normalization(mean: "0.49, 0.48,0.45", std: "0.25")
        #expect(n.mean == [0.49, 0.48, 0.45] && n.std == [0.25])
        let error = try #require(throws: LeNetError.self) { try Normalization(mean: "0.5,x", std: "0.5") }
        #expect(error.option == .normalizationMean)
        #expect(error.message == "expected numbers like 0.5 or 0.49,0.48,0.45, got '0.5,x'")
        #expect(throws: LeNetError.self) { try Normalization(mean: "0.5", std: "0") }  // std must be > 0
    }

    /// The JSON line of an epoch has exactly the figures of the epoch, under snake_case keys, and decodes back.
    @Test func testEpochRecordJSON() throws {
        let record = EpochRecord(epoch: 3, trainLoss: 1.25, trainAccuracy: 0.5, testAccuracy: 0.625, testLoss: 1.5,
                                 imagesPerSecond: 8000, seconds: 6.25, imagesSeen: 150_000, wallSeconds: 20.5,
                                 epochs: 10, stepsOfPartialEpoch: nil, timeBudget: nil, budgetSecondsSpent: nil)
        #expect(try record.json() == #"{"epoch":3,"images_per_second":8000,"images_seen":150000,"seconds":6.25,"#
            + #""test_accuracy":0.625,"test_loss":1.5,"train_accuracy":0.5,"train_loss":1.25,"wall_seconds":20.5}"#)
        var decoded = try JSONDecoder().decode(EpochRecord.self, from: Data(try record.json().utf8))
        decoded.epochs = 10
        #expect(decoded == record)
        #expect(record.line == "epoch 3/10  train loss 1.2500  train accuracy 50.00%  test accuracy 62.50%  8000 images/s  6.2 s")
        var budgeted = record
        (budgeted.epochs, budgeted.stepsOfPartialEpoch, budgeted.timeBudget, budgeted.budgetSecondsSpent) = (nil, 7, 60, 59.5)
        #expect(budgeted.line.hasPrefix("epoch 3 (7 steps)  ") && budgeted.line.hasSuffix("  59.5 of 60 s spent"))
        #expect(try budgeted.json() == record.json())
    }

    /// The plan blames the batch size unless fewer threads (chosen, and more
    /// than the cores) would save more.
    @Test func testMemoryPlanBlamesWhatSavesMost() {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        func needs(_ batch: Int, _ threads: Int) -> MemoryEstimate {
            var e = MemoryEstimate()
            e.add("activations", bytes: batch * threads * 1000)
            return e
        }
        let byBatch = MemoryPlan(batchSize: 1000, defaultBatchSize: 36, threads: cores + 1, threadsChosen: true, needs: needs)
        #expect(byBatch.culprit.option == .batchSize && byBatch.culprit.value == 1000)
        #expect(byBatch.remaining.bytes == 1000 * (cores + 1) * 1000)
        let byThreads = MemoryPlan(batchSize: 36, defaultBatchSize: 36, threads: cores * 64, threadsChosen: true, needs: needs)
        #expect(byThreads.culprit.option == .threads && byThreads.culprit.value == cores * 64)
        let notChosen = MemoryPlan(batchSize: 36, defaultBatchSize: 36, threads: cores * 64, threadsChosen: false, needs: needs)
        #expect(notChosen.culprit.option == .batchSize)
    }

    /// A recipe's network and initialization are the defaults, and what the
    /// configuration names instead wins.
    @Test func testRecipeDefaultsGiveWayToTheConfiguration() {
        var c = TrainingRun.Configuration(data: DatasetLocation(directory: "mnist"), options: TrainingRecipe.lenet5_1998.options)
        #expect(c.weightInitialization == .pytorch)
        c.recipe = .lenet5_1998
        #expect(c.weightInitialization == .lecun)
        c.initialization = .pytorch
        #expect(c.weightInitialization == .pytorch)
        #expect(TrainingRecipe.lenet5_1998.summary.hasPrefix("20 epochs of lenet5-rbf, batch 1, sdlm (μ 1.0) lr 0.0005 (lecun-1998)"))
    }
}

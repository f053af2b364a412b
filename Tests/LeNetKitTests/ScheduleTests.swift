import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

struct ScheduleTests {
    @Test func testCosineAndStepSchedules() {
        var o = TrainingOptions()
        o.learningRate = 0.1
        o.epochs = 4
        #expect(o.learningRate(atStep: 123, stepsPerEpoch: 10) == 0.1)  // constant
        o.schedule = .cosine
        #expect(o.learningRate(atStep: 0, stepsPerEpoch: 10) == 0.1)
        #expect(abs(o.learningRate(atStep: 20, stepsPerEpoch: 10) - 0.05) <= 1e-7)
        #expect(abs(o.learningRate(atStep: 10, stepsPerEpoch: 10) - Float(0.05 * (1 + cos(Double.pi / 4)))) <= 1e-7)
        #expect(abs(o.learningRate(atStep: 40, stepsPerEpoch: 10) - 0) <= 1e-9)
        o.schedule = .step
        o.stepEpochs = 2
        o.stepGamma = 0.5
        #expect(o.learningRate(atStep: 19, stepsPerEpoch: 10) == 0.1)
        #expect(o.learningRate(atStep: 20, stepsPerEpoch: 10) == 0.05)
        #expect(o.learningRate(atStep: 45, stepsPerEpoch: 10) == 0.025)
        o.stepGamma = 0
        #expect(throws: (any Error).self) { try o.validate() }
    }

    /// The trainer hands the schedule's rate to the optimizer before every step.
    @Test func testTrainerFollowsTheSchedule() throws {
        let data = try TrainingTests.squares(count: 40, seed: 1)
        var o = TrainingOptions()
        o.epochs = 2
        o.batchSize = 10
        o.schedule = .cosine
        let trainer = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: o)
        _ = try trainer.trainEpoch()
        #expect(trainer.optimizer.learningRate == o.learningRate(atStep: 3, stepsPerEpoch: 4))
        _ = try trainer.trainEpoch()
        #expect(trainer.optimizer.learningRate == o.learningRate(atStep: 7, stepsPerEpoch: 4))
        #expect(trainer.optimizer.learningRate < 1e-4)
    }
}

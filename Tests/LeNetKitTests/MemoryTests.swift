import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Memory known before it is spent: the estimates against what is really
/// allocated (counted by `AllocationProbe`, and as peak RSS of `lenet`),
/// memory that follows the work and not the thread count, and a thrown
/// error, never an abort, from every allocation that fails.
final class MemoryTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// What `Trainer.init` allocates, counted buffer by buffer, is exactly
    /// the estimate's items for it: the estimate is made from the sizes the
    /// buffers are made with (each layer's and fused step's one workspace
    /// spec), so any buffer it forgets fails this. BatchNorm (its running
    /// statistics and batch statistics) and Dropout (its mask) included.
    @Test func testTrainerAllocatesExactlyItsEstimate() throws {
        let data = try TrainingTests.squares(count: 120, seed: 4)
        var dropout = try NetworkDescription.builtIn("lenet5")
        dropout.layers.insert(Dropout.Configuration(name: "f6.dropout", p: 0.2), at: dropout.layers.count - 3)
        for (description, threads, batch, optimizer) in [
            (try NetworkDescription.builtIn("cifar-lenet"), 1, 36, TrainingOptions.OptimizerKind.adam),
            (try .builtIn("cifar-lenet"), 3, 36, .adam), (try .builtIn("cifar-lenet"), 8, 100, .sgd),
            (try .builtIn("lenet5"), 2, 50, .adamw), (try .builtIn("lenet5"), 5, 7, .sgd),
            (try .builtIn("cifar-lenet-bn"), 2, 36, .adam), (try .builtIn("cifar-lenet-bn"), 3, 40, .sgd),
            (dropout, 2, 36, .adam), (try .builtIn("lenet5-rbf"), 2, 1, .sdlm),
        ] {
            let model = description.name ?? "network"
            let images = description.inputShape.channels == 1 ? try TrainingTests.squares(count: 120, channels: 1, seed: 4) : data
            let network = try Network(description)
            var options = TrainingOptions()
            options.batchSize = batch
            options.optimizer = optimizer
            options.threads = threads
            let estimate = Trainer.memoryEstimate(network: network, images: images.count, options: options)
            let probe = AllocationProbe()
            _ = try AllocationProbe.$current.withValue(probe) {
                try Trainer(network: network, dataset: images, options: options)
            }
            // Made before (the network's own parameters) or after (the
            // first step's loss buffers; the shuffle is a Swift array).
            // SDLM's curvature pass, its sum and its copy of the weights are made by each epoch's estimate.
            let byEstimate = optimizer == .sdlm ? estimate["curvature pass"] + 2 * 4 * network.parameters.count : 0
            let allocatedByInit = estimate.bytes - estimate["parameters"] - estimate["buffers"] - estimate["loss buffers"]
                - estimate["shuffle order"] - byEstimate
            #expect(probe.bytes == allocatedByInit, "\(model) \(threads) threads, batch \(batch): \(estimate)")
            #expect(estimate["activations"] > 0)
            #expect(estimate["layer scratch"] > 0)
        }
    }

    /// A thread count beyond the batch costs nothing: a batch of 36 has at
    /// most 36 parts, so 36, 256 and 100,000 threads estimate the same
    /// bytes. Below it, memory grows with the parts, by one replica each,
    /// never by threads × threads.
    @Test func testMemoryFollowsTheWorkNotTheThreadCount() throws {
        let network = try Models.cifarLeNet()
        func bytes(_ threads: Int, batch: Int = 36) -> Int {
            network.memoryEstimate(batch: batch, threads: threads).bytes
        }
        #expect(bytes(256) == bytes(36))
        #expect(bytes(100_000) == bytes(36))
        // From 2 to 32 parts: 30 more replicas, each at most what one part
        // of 2 images holds on its own (activations, gradients, scratch).
        let replica = network.memoryEstimate(batch: 2, threads: 1).bytes
        #expect(bytes(32) - bytes(2) <= 30 * replica)
        // At a batch of 2000, more parts split the same activations: the
        // total grows only by each replica's parameter gradients and scratch.
        let perReplica = 4 * network.parameters.count + replica
        #expect(bytes(32, batch: 2000) - bytes(2, batch: 2000) <= 30 * perReplica)
    }

    /// Evaluation allocates what its estimate says beyond the parts the
    /// network has reserved.
    @Test func testEvaluationAllocatesItsEstimate() throws {
        let data = try TrainingTests.squares(count: 90, seed: 5)
        for (threads, tta) in [(1, TestTimeAugmentation.none), (4, .none), (1, .flip), (4, .flip)] {
            let network = try Models.cifarLeNet()
            let estimate = network.evaluationMemoryEstimate(images: data.count, batchSize: 64, keepsLogits: true, threads: threads,
                                                            testTimeAugmentation: tta)
            let probe = AllocationProbe()
            _ = try AllocationProbe.$current.withValue(probe) {
                try network.evaluate(on: data, normalization: .half, batchSize: 64, threads: threads, keepsLogits: true,
                                     testTimeAugmentation: tta)
            }
            // The loss buffers of parts on other threads are made there,
            // outside the probe's task; part 0's may be seen. So the probe
            // sees at least everything but the evaluation buffers, and at
            // most the whole estimate, less the parameters made before.
            let floor = estimate.bytes - estimate["parameters"] - estimate["evaluation buffers"]
            #expect(probe.bytes >= floor, "\(threads) threads, \(tta): \(estimate)")
            #expect(probe.bytes <= estimate.bytes - estimate["parameters"], "\(threads) threads, \(tta): \(estimate)")
        }
    }

    /// Evaluation reserves only what forward needs (no activation or
    /// parameter gradients, no backward scratch), and a network evaluated
    /// first then trains bitwise as one that never was: the backward
    /// buffers are made when training asks, and the same code runs.
    @Test func testEvaluationIsForwardOnlyAndTrainingAfterItIsUnchanged() throws {
        let data = try TrainingTests.squares(count: 60, seed: 7)
        var options = TrainingOptions()
        options.batchSize = 12
        options.threads = 3
        let evaluated = try Models.cifarLeNet(seed: 3), untouched = try Models.cifarLeNet(seed: 3)
        let before = try evaluated.evaluate(on: data, normalization: .half, batchSize: 12, threads: 3)
        #expect(evaluated.backwardCapacity == 0)
        #expect(evaluated.capacity == 4)  // parts of 4 images
        let forwardOnly = evaluated.memoryEstimate(batch: 12, threads: 3, backward: false).bytes
        let withBackward = evaluated.memoryEstimate(batch: 12, threads: 3).bytes
        #expect(Double(forwardOnly) < 0.6 * Double(withBackward))
        let a = try Trainer(network: evaluated, dataset: data, options: options)
        let b = try Trainer(network: untouched, dataset: data, options: options)
        for _ in 0..<2 {
            _ = try a.trainEpoch()
            _ = try b.trainEpoch()
        }
        #expect(Array(evaluated.parameters.values) == Array(untouched.parameters.values))
        // And evaluation after training reuses the training buffers, giving the same figures.
        let after = try evaluated.evaluate(on: data, normalization: .half, batchSize: 12, threads: 3)
        let again = try untouched.evaluate(on: data, normalization: .half, batchSize: 12, threads: 3)
        #expect(after.loss == again.loss)
        #expect(after.loss != before.loss)
    }

    /// The process's own figures as Linux gives them: resident ≤ peak, and
    /// a 64 MB buffer, written, raises both by about its size; what is
    /// available is at most MemAvailable (the least of the limits is taken).
    @Test func testSystemMemoryReadsThisProcess() throws {
        guard let before = SystemMemory.residentBytes(), let peakBefore = SystemMemory.peakResidentBytes(),
              let available = SystemMemory.available() else {
            try Test.cancel("no /proc here")
        }
        #expect(before <= peakBefore)
        let meminfo = try String(contentsOfFile: "/proc/meminfo", encoding: .utf8)
        let line = meminfo.split(separator: "\n").first { $0.hasPrefix("MemAvailable:") } ?? ""
        let memAvailable = (Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "") ?? 0) * 1024
        #expect(available.bytes <= memAvailable + (64 << 20))  // it moves between the two reads
        // 64 MB, zero-filled: every page touched; above glibc's largest mmap threshold (32 MB), so fresh pages.
        // The figure is the whole process's, and the suites running beside this one free memory
        // while it reads (under AddressSanitizer a run once saw 43 MB of growth), so it takes
        // five tries, each with its own buffer, and expects the growth in at least one.
        var growths: [Int] = []
        for _ in 0..<5 {
            guard let start = SystemMemory.residentBytes() else { Issue.record(); return }
            let buffer = try FloatBuffer(count: 16 << 20, name: "test")
            guard let after = SystemMemory.residentBytes(), let peakAfter = SystemMemory.peakResidentBytes() else { Issue.record(); return }
            withExtendedLifetime(buffer) {
                growths.append(after - start)
                #expect(peakAfter >= after)
            }
            if after - start >= 60 << 20 { break }
        }
        #expect(growths.contains { $0 >= 60 << 20 }, "resident growth per 64 MB buffer: \(growths)")
    }

    /// Every allocation `Trainer.init` makes, failed in turn, gives one
    /// LeNetError naming the buffer and its size, and no trap; the network
    /// is still usable afterwards.
    @Test func testEveryFailedAllocationThrowsAndNamesTheBuffer() throws {
        let data = try TrainingTests.squares(count: 40, seed: 6)
        var options = TrainingOptions()
        options.batchSize = 12
        options.threads = 3
        let fresh = try Models.cifarLeNet()
        let counting = AllocationProbe()
        _ = try AllocationProbe.$current.withValue(counting) { try Trainer(network: fresh, dataset: data, options: options) }
        #expect(counting.allocations > 20)
        var names = Set<String>()
        var network = fresh
        for k in 0..<counting.allocations {
            // Each from a fresh network: a failure keeps what was reserved before it.
            network = try Models.cifarLeNet()
            let probe = AllocationProbe(failing: k)
            let thrown = #expect(throws: (any Error).self, "allocation \(k)") {
                try AllocationProbe.$current.withValue(probe) {
                    try Trainer(network: network, dataset: data, options: options)
                }
            }
            // The loop's last statement: `continue` ends only this case.
            guard let thrown else { continue }
            guard let error = thrown as? LeNetError else { Issue.record("\(thrown)"); continue }
            #expect(error.subject == "memory")
            #expect(error.message.hasPrefix("cannot allocate "), "\(error.message)")
            #expect(error.message.contains(" B for ") || error.message.contains("B for "), "\(error.message)")
            names.insert(String(error.message.split(separator: " for ").last ?? ""))
        }
        // Parameter gradients, activations, their gradients, scratch, the optimizer, the labels: all named.
        for expected in ["input, 4 samples", "conv1 im2col scratch", "Adam first moments", "training labels"] {
            #expect(names.contains { $0.hasPrefix(expected) }, "\(expected) not among \(names.sorted())")
        }
        // After every failure the network trains as if nothing had happened.
        let trainer = try Trainer(network: network, dataset: data, options: options)
        #expect(try trainer.step(0..<12).isFinite)
    }

    /// A batch whose size overflows is refused by the size check; a failed
    /// reserve leaves the network at its old capacity, still working.
    @Test func testOverflowingReserveThrowsAndKeepsTheNetwork() throws {
        let network = try Models.cifarLeNet()
        network.threads = 1
        let x = try network.input(batch: 2)
        for i in x.indices { x[i] = 0.25 }
        let before = Array(UnsafeBufferPointer(start: network.forward(batch: 2), count: 20))
        let error = #expect(throws: (any Error).self) { try network.reserve(batch: Int.max / 64) }
        if let error { #expect("\(error)".contains("overflows"), "\(error)") }
        #expect(throws: (any Error).self) {
            try AllocationProbe.$current.withValue(AllocationProbe(failing: 0)) {
                try network.reserve(batch: 50)
            }
        }
        #expect(network.capacity == 2)
        let after = Array(UnsafeBufferPointer(start: network.forward(batch: 2), count: 20))
        #expect(after == before)
    }

    /// `lenet train` prints its estimate and, at the end, its peak RSS
    /// (VmHWM) beside the estimated peak; they agree within 15% in
    /// configurations where the network's buffers are most of the memory
    /// (batch 2000 of CIFAR-sized images holds about 620 MB of activations;
    /// 256 parts of a batch of 700, about 600 MB of replicas).
    @Test(.disabledUnderSanitizers) func testTrainPeakRSSIsWithinFifteenPercentOfTheEstimate() throws {
        let dir = try temporaryDirectory()
        try CLITests.makeCIFAR(dir, train: 400, test: 100)
        for (batch, threads) in [(2000, 1), (2000, 2), (1000, 8), (2000, 32), (700, 256)] {
            let run = try runLenet(["train", "--data", dir.path, "--epochs", "1", "--batch-size", "\(batch)",
                                    "--threads", "\(threads)"])
            #expect(run.status == 0, "\(run.stderr)")
            let line = run.stderr.split(separator: "\n").last.map(String.init) ?? ""
            guard let peak = megabytes(after: "peak memory ", in: line), let estimated = megabytes(after: "(estimated ", in: line),
                  let opening = run.stderr.split(separator: "\n").first.map(String.init),
                  let total = megabytes(after: "memory about ", in: opening), let images = megabytes(after: "(images ", in: opening) else {
                Issue.record("no memory figures in: \(run.stderr)")
                return
            }
            print("lenet train --batch-size \(batch) --threads \(threads): \(line)")
            #expect(abs(peak - estimated) <= 0.15 * peak, "batch \(batch), \(threads) threads: \(line)")
            // The network's buffers are most of the peak, so the estimate's own figures are what is tested.
            #expect(total - images > 0.5 * peak, "batch \(batch), \(threads) threads: \(opening)")
        }
    }

    private func megabytes(after prefix: String, in line: String) -> Double? {
        guard let range = line.range(of: prefix) else { return nil }
        let words = line[range.upperBound...].split(separator: " ")
        guard words.count >= 2, let value = Double(words[0]) else { return nil }
        switch words[1].prefix(2) {
        case "KB": return value / 1000
        case "MB": return value
        case "GB": return value * 1000
        default: return nil
        }
    }
}

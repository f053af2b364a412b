import Foundation
import Testing
@_spi(Benchmarks) @_spi(CLI) @testable import LeNetKit

/// The team of awake threads that splits one image at batch 1.
struct WorkerTeamTests {
    /// Every index is run exactly once, by the part that owns it, whatever
    /// the count and the worker limit, and so is every index of a loop inside a part.
    @Test func testPartsCoverTheWorkOnce() throws {
        for threads in [2, 3, 5] {
            try WorkerTeam.run(threads: threads) {
                #expect(WorkerTeam.current != nil)
                for (count, limit) in [(1, 8), (2, 8), (7, 2), (100, 8), (1000, 3)] {
                    var hits = [Int](repeating: 0, count: count)
                    hits.withUnsafeMutableBufferPointer { hits in
                        parallelForWorkers(count, maxWorkers: limit) { part, range in
                            #expect(part < limit)
                            for i in range { hits[i] += 1 }
                            // A loop inside a part: inline on a helper or while the
                            // team is busy, across the team otherwise; each index once.
                            var inner = [Int](repeating: 0, count: 4)
                            inner.withUnsafeMutableBufferPointer { inner in
                                parallelForWorkers(4, maxWorkers: 4) { _, r in for i in r { inner[i] += 1 } }
                            }
                            #expect(inner == [1, 1, 1, 1])
                        }
                    }
                    #expect(hits == [Int](repeating: 1, count: count), "threads \(threads), count \(count), limit \(limit)")
                }
            }
        }
        #expect(WorkerTeam.current == nil, "the team ends with run")
    }

    @Test func testAnErrorInsideTheTeamIsThrownAndTheTeamEnds() throws {
        struct Stop: Error {}
        let error = #expect(throws: (any Error).self) { try WorkerTeam.run(threads: 2) { throw Stop() } }
        if let error { #expect(error is Stop) }
        #expect(WorkerTeam.current == nil)
        // More threads than cores: the helpers Dispatch cannot start take no part.
        #expect(try WorkerTeam.run(threads: 40) { () -> Int in
            var total = 0
            for _ in 0..<50 {
                var parts = [Int](repeating: 0, count: 40)
                parts.withUnsafeMutableBufferPointer { parts in
                    parallelForWorkers(40, maxWorkers: 40) { part, range in parts[part] = range.count }
                }
                total += parts.reduce(0, +)
            }
            return total
        } == 50 * 40)
    }

    /// At batch 1 the team splits each image's rows and outputs; each value
    /// is computed by the same code on the same inputs whichever thread runs
    /// it, so the logits are those of one thread, bit for bit.
    @Test func testBatchOneOnATeamIsBitwiseOneThread() throws {
        let data = try TrainingTests.squares(count: 12, seed: 8)
        for model in [ModelKind.cifarLeNet, .lenet5] {
            let images = model == .cifarLeNet ? data : try TrainingTests.squares(count: 12, channels: 1, seed: 8)
            var results: [[Float]] = []
            for threads in [1, 2, 3] {
                let net = try model.make(seed: 3)
                let evaluation = try net.evaluate(on: images, normalization: try .uniform(mean: 0.5, std: 0.5, channels: images.channels),
                                                  batchSize: 1, threads: threads, keepsLogits: true)
                #expect(evaluation.count == 12)
                results.append(evaluation.logits)
            }
            #expect(results[1] == results[0], "\(model), 2 threads")
            #expect(results[2] == results[0], "\(model), 3 threads")
            #expect(results[0].count == 12 * 10)
        }
    }
}

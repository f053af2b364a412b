import ArgumentParser
import Foundation
import LeNetKit

struct Time: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time each layer's forward and backward pass (medians), like `caffe time`.")

    @OptionGroup var networkOptions: NetworkOptions

    @Option(name: .customLong("batch-size"), help: "Images per pass.")
    var batchSize = 36

    @Option(help: "Timed passes (after two warm-up passes).")
    var iterations = 50

    @Flag(help: "Time the forward-only path that eval and predict run, step by step, instead of training's layers.")
    var inference = false

    @Option(help: ArgumentHelp("Threads that run parts of each batch at once (default: all cores).",
                               discussion: threadsDiscussion))
    var threads: Int?

    func run() throws {
        let threads = try checkThreads(threads)
        guard batchSize > 0 else { throw LeNetError("must be > 0, got \(batchSize)", subject: "--batch-size") }
        guard iterations > 0 else { throw LeNetError("must be > 0, got \(iterations)", subject: "--iterations") }
        let network = try networkOptions.network()
        network.threads = threads
        // One network runs the whole batch; the loss keeps its probabilities and labels.
        var needs = network.memoryEstimate(batch: batchSize)
        needs.add("loss buffers", bytes: 4 * batchSize * (network.outputShape.count + 2))
        try MemoryPlan(remaining: needs, culprit: "--batch-size \(batchSize)").check()
        if inference { return try timeInference(network) }
        let (rows, step) = try network.timeLayers(batch: batchSize, iterations: iterations)
        print("\(displayName(network)), batch \(batchSize), \(blasDescription), \(network.threads) thread(s), median of \(iterations) passes (ms)")
        let width = max(5, rows.map(\.name.count).max() ?? 5)
        print("layer".padding(toLength: width, withPad: " ", startingAt: 0) + "  kind            forward  backward")
        for (i, r) in rows.enumerated() {
            print(r.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + r.kind.padding(toLength: 14, withPad: " ", startingAt: 0)
                + String(format: "  %7.3f  ", r.forwardMilliseconds)
                + (r.backwardInPrevious ? "   (in \(i > 0 ? rows[i - 1].name : "-"))" : String(format: "%8.3f", r.backwardMilliseconds)))
        }
        let fwd = rows.reduce(0) { $0 + $1.forwardMilliseconds }, bwd = rows.reduce(0) { $0 + $1.backwardMilliseconds }
        print(String(format: "layers: forward %.3f ms, backward %.3f ms; whole step %.3f ms = %.0f images/s (no optimizer)",
                     fwd, bwd, step, Double(batchSize) / step * 1000))
    }

    private func timeInference(_ network: Network) throws {
        let (rows, pass) = try network.timeInference(batch: batchSize, iterations: iterations)
        print("\(displayName(network)), batch \(batchSize), forward only, \(blasDescription), \(network.threads) thread(s), median of \(iterations) passes (ms)")
        let width = max(4, rows.map(\.name.count).max() ?? 4)
        print("step".padding(toLength: width, withPad: " ", startingAt: 0) + "  kind                   forward")
        for r in rows {
            print(r.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + r.kind.padding(toLength: 21, withPad: " ", startingAt: 0) + String(format: "  %7.3f", r.milliseconds))
        }
        print(String(format: "whole pass %.3f ms = %.0f images/s", pass, Double(batchSize) / pass * 1000))
    }
}

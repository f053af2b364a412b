// End to end: training images/s of the CIFAR LeNet at batch 36 and 256 and
// of LeNet-5 at batch 1 and 36, on 1 and 2 threads, over generated data, each
// also as a share of the machine's FMA peak (one core's, measured first,
// times the threads). A training image counts as 6 FLOP per connection, the
// work of a dense forward and backward (as PyTorch does it): LeNetKit skips
// the first layer's input gradient and, through a max pool, the gradients
// the pool drops, so a share can pass 1,000‰;
// evaluation images/s of the CIFAR LeNet; and the forward-only path
// (`Network.infer`) of every built-in network at batch 1, 16 and 256, whose
// mallocCountTotal is the allocations of `passes` calls after warm-up.
import Benchmark
import Dispatch
@_spi(Benchmarks) @_spi(CLI) import LeNetKit

let imagesPerSecond = BenchmarkMetric.custom("images/s", polarity: .prefersLarger, useScalingFactor: false)
let gflops = BenchmarkMetric.custom("GFLOP/s", polarity: .prefersLarger, useScalingFactor: false)
let permilleOfPeak = BenchmarkMetric.custom("‰ of FMA peak, dense-equivalent FLOP", polarity: .prefersLarger,
                                            useScalingFactor: false)

func randomDataset(count: Int, channels: Int) -> ImageDataset? {
    var rng = SeededGenerator(seed: 1)
    let images = (0..<(count * channels * 1024)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    let labels = (0..<count).map { _ in UInt8(rng.next() % 10) }
    return try? ImageDataset(name: "random", channels: channels, height: 32, width: 32, images: images, labels: labels,
                             classNames: CIFAR10.standardClassNames)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [imagesPerSecond, .mallocCountTotal], maxDuration: .seconds(4), maxIterations: 9)
    // One core's FMA peak, the ceiling the training shares are of.
    // The widest FMAs the CPU has: AVX-512's where there are AVX-512 kernels to use them.
    let peak = FMAPeak.measureAVX512() ?? FMAPeak.measure() ?? 0
    Benchmark("fma peak, one core", configuration: .init(metrics: [gflops])) { benchmark in
        benchmark.measurement(gflops, Int(FMAPeak.measure() ?? 0))
    }
    Benchmark("fma peak, one core, AVX-512", configuration: .init(metrics: [gflops])) { benchmark in
        benchmark.measurement(gflops, Int(FMAPeak.measureAVX512() ?? 0))
    }
    guard let data = randomDataset(count: 2560, channels: 3), let gray = randomDataset(count: 2560, channels: 1) else { return }
    for (model, batches) in [("cifar-lenet", [36, 256]), ("lenet5", [1, 36])] {
        for batch in batches {
            for threads in [1, 2] {
                trainingBenchmark(model: model, data: model == "lenet5" ? gray : data, batch: batch, threads: threads, peak: peak)
            }
        }
    }
    // The cost of a step around the layers: a network of one 1→2 linear
    // layer on 1×1×1 images, so that filling the batch, the loss, the
    // optimizer and the threads' hand-offs are all there is.
    if let dot = try? ImageDataset(name: "one pixel", channels: 1, height: 1, width: 1, images: (0..<256).map { UInt8($0) },
                                   labels: (0..<256).map { UInt8($0 % 2) }, classNames: ["0", "1"]) {
        for threads in [1, 2] {
            stepOverheadBenchmark(data: dot, threads: threads)
        }
    }
    for batch in [36, 256] {
        for threads in [1, 2] {
            Benchmark("eval cifar-lenet b\(batch) t\(threads)") { benchmark in
                let network = try Models.cifarLeNet()
                _ = try? network.evaluate(on: data, normalization: .half, batchSize: batch, threads: threads)
                benchmark.startMeasurement()
                guard let result = try? network.evaluate(on: data, normalization: .half, batchSize: batch, threads: threads)
                else { return }
                benchmark.stopMeasurement()
                benchmark.measurement(imagesPerSecond, Int(result.imagesPerSecond))
            }
        }
    }
    for model in NetworkDescription.builtInNames {
        for batch in [1, 16, 256] {
            for threads in [1, 2] {
                let passes = max(4, 2048 / batch)
                let box = NetworkBox()
                Benchmark("infer \(model) b\(batch) t\(threads)", closure: { benchmark in
                    guard let network = box.network else { return }
                    let start = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<passes { blackHole(network.infer(batch: batch)) }
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    benchmark.measurement(imagesPerSecond, Int(Double(passes * batch) / seconds))
                }, setup: {
                    guard let network = try? Network(.named(model)) else { return }
                    network.threads = threads
                    guard (try? network.reserve(batch: batch, backward: false)) != nil,
                          let x = try? network.input(batch: batch) else { return }
                    var rng = SeededGenerator(seed: 2)
                    for i in x.indices { x[i] = rng.uniform(-1, 1) }
                    _ = network.infer(batch: batch)  // warm-up: packs the weights once
                    box.network = network
                }, teardown: {
                    box.network = nil
                })
            }
        }
    }
}

/// Training steps of `model` on `data`: images/s, and that as a share of
/// `threads` cores' FMA peak (`peak` GFLOP/s each).
func trainingBenchmark(model: String, data: ImageDataset, batch: Int, threads: Int, peak: Double) {
    // The trainer is made, and its buffers allocated by a first step, in
    // setup: each measured iteration is `steps` training steps alone, so
    // mallocCountTotal counts allocations per `steps` steps.
    let steps = max(4, 2048 / batch)
    // Batches as slices of one index array, as `trainEpoch` passes them
    // (LeNetKit's `step` is specialized for those).
    let order = (0..<(steps + 1) * batch).map { $0 % data.count }
    func batchRange(_ s: Int) -> ArraySlice<Int> { order[s * batch..<(s + 1) * batch] }
    let box = TrainerBox()
    Benchmark("train \(model) b\(batch) t\(threads)",
              configuration: .init(metrics: [imagesPerSecond, permilleOfPeak, .mallocCountTotal]), closure: { benchmark in
        guard let trainer = box.trainer else { return }
        let start = DispatchTime.now().uptimeNanoseconds
        for s in 0..<steps { _ = try? trainer.step(batchRange(s)) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let rate = Double(steps * batch) / seconds
        benchmark.measurement(imagesPerSecond, Int(rate))
        let flops = rate * 6 * Double(trainer.network.connections)
        if peak > 0 { benchmark.measurement(permilleOfPeak, Int(1000 * flops / (peak * 1e9 * Double(threads)))) }
    }, setup: {
        var options = TrainingOptions()
        options.batchSize = batch
        options.threads = threads
        box.trainer = try? Trainer(network: try Network(.named(model)), dataset: data, options: options)
        _ = try? box.trainer?.step(batchRange(0))
    }, teardown: {
        box.trainer = nil
    })
}

/// One training step of batch 1 of a two-output linear network: ns per step.
func stepOverheadBenchmark(data: ImageDataset, threads: Int) {
    let nanoseconds = BenchmarkMetric.custom("ns per step", polarity: .prefersSmaller, useScalingFactor: false)
    let steps = 2048
    let order = Array(0..<data.count)
    let box = TrainerBox()
    Benchmark("step overhead, empty network b1 t\(threads)",
              configuration: .init(metrics: [nanoseconds, .mallocCountTotal]), closure: { benchmark in
        guard let trainer = box.trainer else { return }
        let start = DispatchTime.now().uptimeNanoseconds
        for s in 0..<steps { _ = try? trainer.step(order[s % order.count...s % order.count]) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        benchmark.measurement(nanoseconds, Int((seconds / Double(steps) * 1e9).rounded()))
    }, setup: {
        var options = TrainingOptions()
        options.batchSize = 1
        options.threads = threads
        let description = NetworkDescription(name: "empty", inputShape: FeatureShape(channels: 1, height: 1, width: 1),
                                             layers: [FlattenConfiguration(name: "flat"),
                                                      LinearConfiguration(name: "fc", inFeatures: 1, outFeatures: 2)])
        box.trainer = try? Trainer(network: try Network(description), dataset: data, options: options)
        _ = try? box.trainer?.step(order[0...0])
    }, teardown: {
        box.trainer = nil
    })
}

/// Holds a benchmark's network from its setup to its teardown.
final class NetworkBox: @unchecked Sendable {
    var network: Network?
}

/// Holds a benchmark's trainer from its setup to its teardown.
final class TrainerBox: @unchecked Sendable {
    var trainer: Trainer?
}

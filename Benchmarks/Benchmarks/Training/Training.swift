// End to end: training and evaluation images/s of the CIFAR LeNet at batch
// 36 and 256, on 1 and 2 threads, over generated CIFAR-shaped data.
import Benchmark
import Dispatch
import LeNetKit

let imagesPerSecond = BenchmarkMetric.custom("images/s", polarity: .prefersLarger, useScalingFactor: false)

func randomDataset(count: Int) -> ImageDataset? {
    var rng = SeededGenerator(seed: 1)
    let images = (0..<(count * 3072)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    let labels = (0..<count).map { _ in UInt8(rng.next() % 10) }
    return try? ImageDataset(name: "random", channels: 3, height: 32, width: 32, images: images, labels: labels,
                             classNames: CIFAR10.standardClassNames)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [imagesPerSecond, .peakMemoryResident, .mallocCountTotal], maxDuration: .seconds(4), maxIterations: 9)
    guard let data = randomDataset(count: 2560) else { return }
    for batch in [36, 256] {
        for threads in [1, 2] {
            Benchmark("train cifar-lenet b\(batch) t\(threads)") { benchmark in
                Parallelism.setThreads(threads)
                var options = TrainingOptions()
                options.batchSize = batch
                guard let trainer = try? Trainer(network: Models.cifarLeNet(), dataset: data, options: options) else { return }
                let steps = max(4, 2048 / batch)
                func batchRange(_ s: Int) -> Range<Int> { let first = s * batch % (data.count - batch); return first..<first + batch }
                _ = try? trainer.step(batchRange(0))  // buffers are allocated on the first step
                // Measured from here: the steps alone, so mallocCountTotal counts allocations per `steps` steps.
                benchmark.startMeasurement()
                let start = DispatchTime.now().uptimeNanoseconds
                for s in 0..<steps { _ = try? trainer.step(batchRange(s)) }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                benchmark.stopMeasurement()
                benchmark.measurement(imagesPerSecond, Int(Double(steps * batch) / seconds))
            }
            Benchmark("eval cifar-lenet b\(batch) t\(threads)") { benchmark in
                Parallelism.setThreads(threads)
                let network = Models.cifarLeNet()
                _ = try? network.evaluate(on: data, normalization: .half, batchSize: batch)
                benchmark.startMeasurement()
                guard let result = try? network.evaluate(on: data, normalization: .half, batchSize: batch) else { return }
                benchmark.stopMeasurement()
                benchmark.measurement(imagesPerSecond, Int(result.imagesPerSecond))
            }
        }
    }
}

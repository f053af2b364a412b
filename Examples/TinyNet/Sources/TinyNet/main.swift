// A model that is not one of LeNetKit's, described by its layers' configurations and
// trained with its optimizer and loss on images generated here: each image
// is 1×12×12 noise with a bright bar that is horizontal (class 0), vertical
// (class 1) or diagonal (class 2). The loss must fall, or the program
// exits with status 1.
import Foundation
import LeNetKit

let classes = ["horizontal", "vertical", "diagonal"]
let side = 12

/// A batch of n generated images, (N, 1, 12, 12) in about -1...1, and their labels (N).
func makeBatch(_ n: Int, using rng: inout SeededGenerator) -> (images: [Float], labels: [Int32]) {
    var images = [Float](repeating: 0, count: n * side * side)  // (N, 1, H, W)
    var labels = [Int32](repeating: 0, count: n)  // (N)
    for s in 0..<n {
        let label = Int(rng.next() % 3)
        let at = 2 + Int(rng.next() % UInt64(side - 4))  // where the bar goes
        labels[s] = Int32(label)
        for h in 0..<side {
            for w in 0..<side {
                let onBar = label == 0 ? h == at : label == 1 ? w == at : h == w
                images[(s * side + h) * side + w] = (onBar ? 0.8 : -0.6) + 0.4 * rng.uniform(-1, 1)
            }
        }
    }
    return (images, labels)
}

do {
    // 1×12×12 → conv 3×3 (8 maps) → 8×10×10 → ReLU → pool 2 → 8×5×5 → 200 → 3 logits.
    let description = NetworkDescription(name: "tiny", inputShape: FeatureShape(channels: 1, height: side, width: side), layers: [
        Conv2DConfiguration(name: "conv", inChannels: 1, outChannels: 8, kernelSize: 3), ReLUConfiguration(name: "relu"),
        MaxPool2DConfiguration(name: "pool"), LinearConfiguration(name: "fc", inFeatures: 8 * 5 * 5, outFeatures: classes.count),
    ])
    let network = try Network(description, seed: 42)  // PyTorch's initialization, from the seed
    var rng = SeededGenerator(seed: 42)
    print("TinyNet: \(network.parameters.count) parameters")
    print(network.summaryTable())

    let optimizer = try Adam(parameters: network.parameters, learningRate: 3e-3)
    let lossFunction = SoftmaxCrossEntropy(classes: classes.count)
    let n = 32, steps = 60
    var losses: [Float] = []
    for step in 1...steps {
        let batch = makeBatch(n, using: &rng)
        _ = try network.input(batch: n).update(fromContentsOf: batch.images)
        let logits = network.forward(batch: n)  // (N, 3)
        let loss = try batch.labels.withUnsafeBufferPointer { labels -> Float in
            guard let labels = labels.baseAddress else { return .nan }
            return try lossFunction.forward(logits, labels, batch: n)
        }
        network.parameters.zeroGradients()
        lossFunction.backward(try network.outputGradient(batch: n))
        network.backward(batch: n)
        optimizer.step()
        losses.append(loss)
        if step == 1 || step % 10 == 0 { print(String(format: "step %2d  loss %.4f", step, loss)) }
    }

    // Accuracy on images the network has not seen.
    let held = makeBatch(300, using: &rng)
    let logits = try network.predict(held.images)  // (300, 3)
    var correct = 0
    for s in 0..<300 {
        let row = logits[s * 3..<(s + 1) * 3]
        if row.firstIndex(of: row.max() ?? 0) == s * 3 + Int(held.labels[s]) { correct += 1 }
    }
    let first = losses.prefix(5).reduce(0, +) / 5, last = losses.suffix(5).reduce(0, +) / 5
    print(String(format: "mean loss of the first 5 steps %.4f, of the last 5 %.4f; held-out accuracy %.1f%%",
                 first, last, Double(correct) / 3))
    guard last < first * 0.5 else {
        print("the loss did not go down")
        exit(1)
    }
} catch {
    print("TinyNet: \(error)")
    exit(1)
}

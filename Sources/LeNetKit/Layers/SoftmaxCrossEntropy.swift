import Foundation  // libm (expf, logf, …) on every platform

/// Softmax followed by the negative log-likelihood, averaged over the batch:
/// PyTorch's `nn.CrossEntropyLoss()` on logits.
///
/// ```
/// loss = (1/N) Σ_n [ log Σ_k exp(z[n,k]) − z[n, y_n] ]     (log-sum-exp shifted by max_k z[n,k])
/// dz[n,k] = (softmax(z[n])_k − [k = y_n]) / N
/// ```
public final class SoftmaxCrossEntropy {
    /// The number of classes (K).
    public let classes: Int
    private var probabilities: BatchBuffer  // (N, K), cached by forward
    private var labels = IndexBuffer()  // (N)
    private var batch = 0

    /// - Parameter classes: K, the logits per sample.
    public init(classes: Int) {
        self.classes = classes
        probabilities = BatchBuffer(perSample: classes, name: "loss probabilities")
    }

    /// The mean loss over the batch; caches the softmax for `backward`.
    /// - Parameters:
    ///   - logits: (N, K)
    ///   - targets: (N), each in 0..<K
    /// - Throws: `LeNetError` when a label is out of range.
    public func forward(_ logits: UnsafePointer<Float>, _ targets: UnsafePointer<Int32>, batch n: Int) throws -> Float {
        let K = classes
        try probabilities.reserve(batch: n)
        if labels.count < n { labels = try IndexBuffer(count: n, name: "loss labels, \(n) samples") }
        batch = n
        var total = 0.0
        for s in 0..<n {
            let label = Int(targets[s])
            guard label >= 0 && label < K else {
                throw LeNetError("label \(label) of sample \(s) is outside 0..<\(K)", subject: "loss")
            }
            labels.pointer[s] = Int32(label)
            let z = logits + s * K
            let p = probabilities.pointer + s * K
            var zmax = z[0]
            for k in 1..<K { zmax = max(zmax, z[k]) }
            var sum: Float = 0
            for k in 0..<K {
                p[k] = expf(z[k] - zmax)
                sum += p[k]
            }
            let inv = 1 / sum
            for k in 0..<K { p[k] *= inv }
            total += Double(logf(sum) + zmax - z[label])
        }
        return Float(total / Double(max(n, 1)))
    }

    /// `forward(_:_:batch:)` with the labels as a Swift array: the batch is
    /// `labels.count`, and `logits` holds (N, K) for it.
    /// - Throws: `LeNetError` when a label is out of range.
    public func forward(_ logits: UnsafePointer<Float>, labels: [Int]) throws -> Float {
        let targets = try labels.enumerated().map { s, label in
            guard label >= 0 && label < classes else {
                throw LeNetError("label \(label) of sample \(s) is outside 0..<\(classes)", subject: "loss")
            }
            return Int32(label)
        }
        return try forward(logits, targets, batch: labels.count)
    }

    /// Writes the gradient of the mean loss with respect to the logits.
    /// - Parameters:
    ///   - dlogits: (N, K)
    ///   - total: the size of the whole batch the mean is over, when this
    ///     pass saw only part of it (data parallelism); default: this part.
    public func backward(_ dlogits: UnsafeMutableBufferPointer<Float>, meanOver total: Int? = nil) {
        let K = classes, n = min(batch, dlogits.count / max(K, 1))
        guard let dlogits = dlogits.baseAddress else { return }
        let scale = 1 / Float(max(total ?? n, 1))
        for s in 0..<n {
            let p = probabilities.pointer + s * K
            let d = dlogits + s * K
            for k in 0..<K { d[k] = p[k] * scale }
            d[Int(labels.pointer[s])] -= scale
        }
    }

    /// The softmax of the last forward pass, (N, K).
    public var lastProbabilities: UnsafePointer<Float> { UnsafePointer(probabilities.pointer) }
}

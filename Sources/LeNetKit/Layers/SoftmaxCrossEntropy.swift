import Foundation  // libm (expf, logf, …) on every platform

/// Softmax followed by the negative log-likelihood, averaged over the batch:
/// PyTorch's `nn.CrossEntropyLoss(label_smoothing: α)` on logits.
///
/// ```
/// q[n,k]  = (1 − α)·[k = y_n] + α/K                         (the smoothed target; α = 0: one-hot)
/// loss    = (1/N) Σ_n [ log Σ_k exp(z[n,k]) − Σ_k q[n,k]·z[n,k] ]   (log-sum-exp shifted by max_k z[n,k])
/// dz[n,k] = (softmax(z[n])_k − q[n,k]) / N
/// ```
///
/// With `mapConstant` j it is instead the MAP loss of LeCun et al. 1998
/// (eq. 9) on the negated RBF penalties z = −y: a softmax over the classes
/// and a "rubbish" class whose logit is fixed at −j,
///
/// ```
/// loss    = (1/N) Σ_n [ −z[n,y_n] + log(e^−j + Σ_k exp(z[n,k])) ]
/// dz[n,k] = (exp(z[n,k]) / (e^−j + Σ_i exp(z[n,i])) − [k = y_n]) / N
/// ```
/// so a wrong class whose penalty is already well above j is no longer
/// pushed up.
public final class SoftmaxCrossEntropy {
    /// The number of classes (K).
    let classes: Int
    /// α, the share of each target spread evenly over the classes, in [0, 1).
    let smoothing: Float
    /// The MAP loss's j, the rubbish class's penalty, or nil for the cross-entropy.
    let mapConstant: Float?
    private var probabilities: BatchBuffer  // (N, K), cached by forward
    private var labels = IndexBuffer()  // (N)
    private var batch = 0

    /// - Parameters:
    ///   - classes: K, the logits per sample.
    ///   - smoothing: α in [0, 1) (`TrainingOptions.labelSmoothing` checks
    ///     it); 0, the default, is the plain cross-entropy.
    ///   - mapConstant: j for the MAP loss (with `smoothing` 0), or nil.
    public init(classes: Int, smoothing: Float = 0, mapConstant: Float? = nil) {
        self.classes = classes
        self.smoothing = smoothing
        self.mapConstant = mapConstant
        probabilities = BatchBuffer(perSample: classes, name: "loss probabilities")
    }

    /// The mean loss over the batch; caches the softmax for `backward`.
    /// - Parameters:
    ///   - logits: (N, K)
    ///   - targets: (N), each in 0..<K
    ///   - n: the batch size N.
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
            if let j = mapConstant { zmax = max(zmax, -j) }
            var sum: Float = mapConstant.map { expf(-$0 - zmax) } ?? 0
            for k in 0..<K {
                p[k] = expf(z[k] - zmax)
                sum += p[k]
            }
            let inv = 1 / sum
            for k in 0..<K { p[k] *= inv }
            // Σ_k q_k z_k; with α = 0 exactly z_y, as the plain loss has it.
            var target = z[label]
            if smoothing != 0 {
                var all: Float = 0
                for k in 0..<K { all += z[k] }
                target = (1 - smoothing) * z[label] + smoothing / Float(K) * all
            }
            total += Double(logf(sum) + zmax - target)
        }
        return Float(total / Double(max(n, 1)))
    }

    /// `forward(_:_:batch:)` with the labels as a Swift array: the batch is
    /// `labels.count`, and `logits` holds (N, K) for it.
    /// - Throws: `LeNetError` when a label is out of range.
    func forward(_ logits: UnsafePointer<Float>, labels: [Int]) throws -> Float {
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
        // (p − q)·scale: every class loses α/K, the label (1 − α) more.
        // With α = 0 these are the plain loss's numbers exactly.
        let spread = smoothing / Float(K) * scale, onLabel = (1 - smoothing) * scale
        for s in 0..<n {
            let p = probabilities.pointer + s * K
            let d = dlogits + s * K
            if smoothing == 0 {
                for k in 0..<K { d[k] = p[k] * scale }
            } else {
                for k in 0..<K { d[k] = p[k] * scale - spread }
            }
            d[Int(labels.pointer[s])] -= onLabel
        }
    }

    /// The loss's second derivative with respect to each output of the
    /// last forward pass, per sample (not averaged): p_k·(1 − p_k), the
    /// diagonal of the softmax's Hessian (with the MAP loss, p counts the
    /// rubbish class in its denominator). What the SDLM curvature pass
    /// starts from.
    /// - Parameter h: room for (N, K).
    func curvature(into h: UnsafeMutablePointer<Float>) {
        let count = batch * classes
        for i in 0..<count {
            let p = probabilities.pointer[i]
            h[i] = p * (1 - p)
        }
    }

    /// The softmax of the last forward pass, (N, K).
    var lastProbabilities: UnsafePointer<Float> { UnsafePointer(probabilities.pointer) }
}

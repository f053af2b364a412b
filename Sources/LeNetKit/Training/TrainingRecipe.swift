/// Named training recipes for the seed's CIFAR LeNet (same architecture and
/// parameter count as the seed's recipe), each a plain set of
/// `TrainingOptions`: what `lenet train --recipe NAME` starts from. Their
/// measured time-to-accuracy is in docs/TRAINING.md.
public enum TrainingRecipe: String, Sendable, CaseIterable {
    /// 70% test accuracy in a minute of training on 2 cores: a one-cycle
    /// schedule over a 60-second budget, AdamW, label smoothing, batch 64.
    case fast
    /// 75% in under ten minutes: the same with crop-and-flip augmentation,
    /// a 9-minute budget, and flip test-time augmentation.
    case best

    /// The recipe's options (threads and seed left at their defaults).
    public var options: TrainingOptions {
        var o = TrainingOptions()
        o.optimizer = .adamw
        o.schedule = .onecycle
        o.batchSize = 64
        o.labelSmoothing = 0.1
        switch self {
        case .fast:
            o.learningRate = 3e-3
            o.weightDecay = 0.05
            o.timeBudget = 60
        case .best:
            o.learningRate = 4e-3
            o.weightDecay = 0.05
            o.augmentation = .cifar
            o.testTimeAugmentation = .flip
            o.timeBudget = 540
        }
        return o
    }
}

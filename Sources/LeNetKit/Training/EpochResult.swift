/// What one epoch of training did.
public struct EpochResult: Sendable {
    /// The epoch just finished, counting from 1.
    public var epoch: Int
    /// Mean training loss over the epoch's batches, weighted by batch size.
    public var loss: Double
    /// Training images seen in the epoch.
    public var images: Int
    /// Wall-clock seconds the epoch took.
    public var seconds: Double
    /// Training throughput.
    public var imagesPerSecond: Double { seconds > 0 ? Double(images) / seconds : 0 }
    /// Training images whose logits ranked their own class first, counted
    /// during the epoch (as the weights changed, and after augmentation).
    public var correct: Int = 0
    /// `correct / images`: the running training accuracy of the epoch.
    public var accuracy: Double { images > 0 ? Double(correct) / Double(images) : 0 }
    /// False when `Trainer.trainEpoch`'s `shouldStop` ended the epoch early;
    /// the figures then cover the steps done so far.
    public var isComplete = true
}

/// Where an epoch is, for a progress display.
public struct StepProgress: Sendable {
    /// The epoch running, counting from 1.
    public var epoch: Int
    /// Steps done in this epoch.
    public var step: Int
    /// Steps in the whole epoch.
    public var steps: Int
    /// Mean loss of the epoch so far.
    public var runningLoss: Double
    /// Throughput of the epoch so far.
    public var imagesPerSecond: Double
    /// Seconds since the epoch started.
    public var secondsElapsed: Double
    /// Estimated seconds left in the epoch, at the pace so far.
    public var secondsRemaining: Double { step > 0 ? secondsElapsed / Double(step) * Double(steps - step) : 0 }
}

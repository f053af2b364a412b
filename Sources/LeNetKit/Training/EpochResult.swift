/// An epoch of training: its figures so far, as `Trainer.trainEpoch` and
/// `Trainer.fit` report them after every step, and in full at its end, with
/// `fit`'s evaluation on the test set.
public struct EpochResult: Sendable {
    /// The epoch, counting from 1.
    public var epoch: Int
    /// Steps done in the epoch, and steps in the whole epoch.
    public var step: Int, steps: Int
    /// Mean training loss over the epoch's batches so far, weighted by batch size.
    public var loss: Double
    /// Training images seen in the epoch so far.
    public var images: Int
    /// Wall-clock seconds the epoch has taken (a resumed epoch's included).
    public var seconds: Double
    /// Training throughput.
    public var imagesPerSecond: Double { seconds > 0 ? Double(images) / seconds : 0 }
    /// Training images whose logits ranked their own class first, counted
    /// during the epoch (as the weights changed, and after augmentation).
    public var correct: Int = 0
    /// `correct / images`: the running training accuracy of the epoch.
    public var accuracy: Double { images > 0 ? Double(correct) / Double(images) : 0 }
    /// Whether every step is done: false while the epoch runs, and when
    /// `Trainer.trainEpoch`'s `shouldStop` ended it early (the figures then
    /// cover the steps done so far).
    public var isComplete: Bool { step == steps }
    /// Estimated seconds left in the epoch, at the pace so far.
    public var secondsRemaining: Double { step > 0 ? seconds / Double(step) * Double(steps - step) : 0 }
    /// `fit`'s evaluation on its test set after the epoch; nil while the
    /// epoch runs, from `trainEpoch`, and without a test set.
    public var evaluation: Evaluation? = nil
}

// The two reports `lenet` writes: one for a training run (with its recipe
// and per-epoch curves), one for an evaluation of a checkpoint.
import Foundation

extension TrainingReport {
    /// How many misclassified test images `lenet` shows (`Network.evaluate`'s
    /// `misclassifiedLimit`).
    static let defaultSampleCount = 60

    /// How many misclassified images the feature map rings.
    static let highlightedCount = 12

    /// The report of a training run so far.
    /// - Parameters:
    ///   - trainer: the run: its model, data and options go in the details.
    ///   - test: the test set `evaluation` was computed on.
    ///   - epochs: the epochs trained in this process (a resumed run's earlier
    ///     epochs are not known here).
    ///   - evaluation: the latest evaluation on `test`, with its misclassified images.
    ///   - featureMap: whether to map the test images' features (`FeatureMap`,
    ///     one more forward pass over `test`), its first misclassified ones ringed.
    /// - Throws: `LeNetError` when a misclassified index is outside `test`,
    ///   or from `FeatureMap`.
    init(trainer: Trainer, test: ImageDataset, epochs: [EpochRecord], evaluation: Evaluation,
                featureMap: Bool = true) throws {
        let o = trainer.options
        let model = trainer.network.networkDescription.name ?? "custom network"
        var recipe = "\(o.optimizer.rawValue), lr \(o.learningRate)"
        switch o.schedule {
        case .constant: break
        case .step: recipe += " ×\(o.stepGamma) every \(o.stepEpochs) epochs"
        case .cosine: recipe += ", cosine schedule"
        case .onecycle: recipe += ", one-cycle schedule"
        case .lecun1998: recipe += ", the 1998 paper's steps"
        }
        if o.optimizer == .sdlm { recipe += " (μ \(o.sdlmMu), curvature on \(o.curvatureSamples) images)" }
        if let j = o.mapConstant { recipe += ", MAP loss (j \(j))" }
        if let affine = o.augmentation?.affine, affine != AffineDistortion.unchanged { recipe += ", affine distortions" }
        if o.warmupEpochs > 0 { recipe += ", \(o.warmupEpochs) warm-up epoch\(o.warmupEpochs == 1 ? "" : "s")" }
        if o.labelSmoothing > 0 { recipe += ", label smoothing \(o.labelSmoothing)" }
        if o.testTimeAugmentation == .flip { recipe += ", flip test-time augmentation" }
        if o.weightDecay != 0 { recipe += ", weight decay \(o.weightDecay)" }
        if o.optimizer == .sgd { recipe += ", momentum \(o.momentum)" }
        recipe += ", batch \(o.batchSize), " + (o.timeBudget.map { String(format: "a time budget of %g s", $0) } ?? "\(o.epochs) epochs")
            + ", seed \(o.seed)"
        var details: [(label: String, value: String)] = [
            ("model", "\(model), \(grouped(trainer.network.trainableParameterCount)) parameters"),
            ("training data", "\(trainer.dataset.name), \(grouped(trainer.dataset.count)) images"),
            ("test data", "\(test.name), \(grouped(test.count)) images"),
            ("recipe", recipe),
            ("normalization", "mean \(Checkpoint.formatFloats(o.normalization.mean)), std \(Checkpoint.formatFloats(o.normalization.std))"),
            ("augmentation", o.augmentation.map { a in
                [a.padding > 0 ? "random crop with \(a.padding)-pixel black padding" : nil, a.horizontalFlip ? "horizontal flip" : nil,
                 a.affine.map { "affine distortions (shift ±\($0.translation) px, scale \($0.minimumScale)–\($0.maximumScale), squeeze ±\($0.squeeze), shear ±\($0.shear))" }]
                    .compactMap { $0 }.joined(separator: ", ")
            } ?? "none"),
        ]
        if let first = epochs.first, first.epoch > 1 {
            details.append(("note", "resumed after epoch \(first.epoch - 1); earlier epochs are not shown"))
        }
        let seconds = epochs.reduce(0) { $0 + $1.seconds }
        details.append(("training time", String(format: "%.0f s (%.1f min) for %d epoch%@", seconds, seconds / 60, epochs.count,
                                                epochs.count == 1 ? "" : "s")))
        let map = featureMap ? try FeatureMap(network: trainer.network, dataset: test, normalization: o.normalization,
                                              highlighting: Array(evaluation.misclassified.prefix(Self.highlightedCount)),
                                              batchSize: o.batchSize) : nil
        self.init(title: "\(model) on \(trainer.dataset.name.replacingOccurrences(of: " train", with: ""))",
                  details: details, epochs: epochs, evaluation: evaluation,
                  samples: try TrainingReport.samples(of: evaluation, in: test), featureMap: map)
        if featureMap, test.count > 0 {
            activationMaps = try ActivationMaps(network: trainer.network, dataset: test, normalization: o.normalization)
        }
    }

    /// The report of an evaluation of a checkpoint (no per-epoch curves).
    /// - Parameters:
    ///   - weights: the checkpoint's path, shown in the details.
    ///   - model: the model's name.
    ///   - metadata: the checkpoint's metadata; its epoch, seed and augmentation are shown.
    ///   - test: the dataset `evaluation` was computed on.
    ///   - evaluation: its result, with misclassified images.
    ///   - featureMap: the map of the test images' features (`FeatureMap`), if made.
    ///   - activationMaps: one test image's maps inside the network (`ActivationMaps`), if made.
    /// - Throws: `LeNetError` when a misclassified index is outside `test`.
    init(weights: String, model: String, metadata: [String: String], test: ImageDataset, evaluation: Evaluation,
                featureMap: FeatureMap? = nil, activationMaps: ActivationMaps? = nil) throws {
        var details: [(label: String, value: String)] = [
            ("checkpoint", weights),
            ("model", model),
            ("test data", "\(test.name), \(grouped(test.count)) images"),
        ]
        let keys: [(String, String)] = [
            (Checkpoint.Key.dataset, "trained on"), (Checkpoint.Key.epoch, "epochs trained"),
            (Checkpoint.Key.seed, "seed"), (Checkpoint.Key.augmentation, "augmentation"),
        ]
        for (key, label) in keys { if let v = metadata[key] { details.append((label, v)) } }
        details.append(("speed", String(format: "%.0f images/s", evaluation.imagesPerSecond)))
        self.init(title: "\(model) evaluated on \(test.name)", details: details, epochs: [], evaluation: evaluation,
                  samples: try TrainingReport.samples(of: evaluation, in: test), featureMap: featureMap)
        self.activationMaps = activationMaps
    }
}

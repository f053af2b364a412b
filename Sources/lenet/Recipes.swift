import ArgumentParser
import Foundation
import LeNetKit

extension TrainingRecipe: ExpressibleByArgument {}

extension TrainingOptions {
    /// The `lenet train` flags that set these options where they differ
    /// from the defaults (the baseline recipe): a recipe as a command line.
    var flags: [String] {
        let d = TrainingOptions()
        var words: [String] = []
        func add(_ flag: String, _ value: String) { words += [flag, value] }
        if let timeBudget { add("--time-budget", String(format: "%g", timeBudget)) }
        if epochs != d.epochs { add("--epochs", "\(epochs)") }
        if batchSize != d.batchSize { add("--batch-size", "\(batchSize)") }
        if optimizer != d.optimizer { add("--optimizer", optimizer.rawValue) }
        if sdlmMu != d.sdlmMu { add("--sdlm-mu", "\(sdlmMu)") }
        if curvatureGrouping != d.curvatureGrouping { add("--curvature", curvatureGrouping.rawValue) }
        if curvatureSamples != d.curvatureSamples { add("--curvature-samples", "\(curvatureSamples)") }
        if let mapConstant {
            add("--loss", "map")
            if mapConstant != TrainingOptions.paperMapConstant { add("--map-constant", "\(mapConstant)") }
        }
        if normalization != d.normalization {
            add("--mean", normalization.mean.map { "\($0)" }.joined(separator: ","))
            add("--std", normalization.std.map { "\($0)" }.joined(separator: ","))
        }
        if learningRate != d.learningRate { add("--lr", "\(learningRate)") }
        if weightDecay != d.weightDecay { add("--weight-decay", "\(weightDecay)") }
        if schedule != d.schedule { add("--schedule", schedule.rawValue) }
        if warmupEpochs != d.warmupEpochs { add("--warmup-epochs", "\(warmupEpochs)") }
        if labelSmoothing != d.labelSmoothing { add("--label-smoothing", "\(labelSmoothing)") }
        if let ema { add("--ema", "\(ema)") }
        if let augmentation {
            if augmentation.padding > 0 || augmentation.horizontalFlip {
                words.append("--augment")
                if augmentation.padding != Augmentation.cifar.padding { add("--crop-padding", "\(augmentation.padding)") }
            }
            if augmentation.affine != nil { add("--distort", "affine") }
        }
        if testTimeAugmentation != d.testTimeAugmentation { add("--tta", testTimeAugmentation.rawValue) }
        return words
    }
}

extension TrainingRecipe {
    /// The recipe as `lenet train` flags: its network, its initialization, its options.
    var flags: [String] {
        (model.map { ["--model", $0] } ?? []) + (initialization != .pytorch ? ["--init", initialization.rawValue] : []) + options.flags
    }
}

/// The command line with `lenet train --recipe NAME` expanded: the recipe's
/// flags right after `train`, so that flags given on the command line,
/// which come later, override them (a later value of an option wins).
func expandingRecipe(_ arguments: [String]) -> [String] {
    guard arguments.first == "train" else { return arguments }
    var recipe: TrainingRecipe?
    for (i, word) in arguments.enumerated() {
        if word == "--recipe", i + 1 < arguments.count { recipe = TrainingRecipe(rawValue: arguments[i + 1]) }
        if word.hasPrefix("--recipe=") { recipe = TrainingRecipe(rawValue: String(word.dropFirst("--recipe=".count))) }
    }
    guard let recipe else { return arguments }
    return ["train"] + recipe.flags + arguments.dropFirst()
}

/// The recipes for `lenet train --help`.
let recipesDiscussion = TrainingRecipe.allCases.map { "\($0.rawValue): " + $0.flags.joined(separator: " ") }
    .joined(separator: "; ")

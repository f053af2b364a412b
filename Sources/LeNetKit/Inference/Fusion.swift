// Fusion is declared: a rule is a pattern over consecutive layers of the
// network's description (their configurations and input shapes) and the
// step that replaces the layers it matches. The passes below walk the
// description once, trying the rules in order at each layer; a layer no
// rule takes runs on its own. A fused step reads its weights from the
// network's parameter store by name (`conv1.weight`), never from the layer
// objects, so any network whose description matches gets the fused kernels:
// a 24-channel CIFAR LeNet takes the same conv+pool+ReLU step as the
// 16-channel one, because 24 fits the kernel.

/// One element of a pattern: whether a layer, given its input shape, fits.
struct LayerPattern: Sendable {
    let matches: @Sendable (any LayerConfiguration, FeatureShape) -> Bool

    /// A convolution of which `condition` holds (its geometry for the input).
    static func conv(_ condition: @escaping @Sendable (Conv2D.Configuration, ConvGeometry) -> Bool) -> LayerPattern {
        LayerPattern { config, input in
            guard let c = config as? Conv2D.Configuration else { return false }
            return condition(c, c.geometry(for: input))
        }
    }

    /// A fully connected layer.
    static let linear = LayerPattern { config, _ in config is Linear.Configuration }

    /// A ReLU.
    static let relu = LayerPattern { config, _ in config is ReLU.Configuration }

    /// A batch normalization (folded into the convolution before it, in evaluation mode).
    static let batchNorm = LayerPattern { config, _ in config is BatchNorm2D.Configuration }

    /// A max pool of any size and stride.
    static let maxPool = LayerPattern { config, _ in config is MaxPool2D.Configuration }

    /// A 2×2, stride-2 max pool.
    static let maxPool2x2 = LayerPattern { config, _ in
        guard let p = config as? MaxPool2D.Configuration else { return false }
        return p.kernelSize == 2 && p.stride == 2
    }
}

/// What a rule matched: the layers' configurations and input shapes, from
/// `start`, and the network's parameter store.
struct FusionMatch {
    /// The index of the first matched layer.
    let start: Int
    /// The matched layers' configurations.
    let configurations: [any LayerConfiguration]
    /// Each matched layer's input shape.
    let inputs: [FeatureShape]
    /// The store the fused step reads its weights (and adds its gradients) from.
    let parameters: ParameterStore
    /// The store of running statistics.
    let buffers: ParameterStore

    /// The layers it covers, as indices into the network's layer list.
    var layers: Range<Int> { start..<start + configurations.count }

    /// The first layer's configuration as a convolution's (every rule that
    /// starts with `.conv` has one).
    var convolution: Conv2D.Configuration? { configurations.first as? Conv2D.Configuration }
    /// The first layer's configuration as a linear layer's.
    var linear: Linear.Configuration? { configurations.first as? Linear.Configuration }
}

/// A pattern and the step that replaces the layers it matches.
struct FusionRule<Step>: Sendable {
    /// What the rule does, for docs and tests.
    let name: String
    /// The layers it matches, first to last.
    let pattern: [LayerPattern]
    /// Whether it applies on this machine (the fused kernel's CPU features).
    let available: @Sendable () -> Bool
    /// The step that runs the matched layers (nil: the match's layers are
    /// not what the step needs after all, and the next rule is tried).
    let makeStep: @Sendable (FusionMatch) -> Step?

    init(_ name: String, _ pattern: [LayerPattern], available: @escaping @Sendable () -> Bool = { true },
         _ makeStep: @escaping @Sendable (FusionMatch) -> Step?) {
        self.name = name
        self.pattern = pattern
        self.available = available
        self.makeStep = makeStep
    }

    /// The match at layer `i`, if the pattern fits there.
    func match(at i: Int, in description: NetworkDescription, shapes: [FeatureShape], parameters: ParameterStore,
               buffers: ParameterStore) -> FusionMatch? {
        guard available(), i + pattern.count <= description.layers.count else { return nil }
        let inputs = (i..<i + pattern.count).map { $0 == 0 ? description.inputShape : shapes[$0 - 1] }
        let configurations = Array(description.layers[i..<i + pattern.count])
        for (k, element) in pattern.enumerated() where !element.matches(configurations[k], inputs[k]) { return nil }
        return FusionMatch(start: i, configurations: configurations, inputs: inputs, parameters: parameters, buffers: buffers)
    }
}

/// Walks the layers once: at each, the first rule that matches makes a
/// step of the layers it covers; otherwise `single` makes one of the layer.
func fuse<Step>(_ rules: [FusionRule<Step>], description: NetworkDescription, shapes: [FeatureShape],
                parameters: ParameterStore, buffers: ParameterStore, single: (Int) -> Step) -> [Step] {
    var steps: [Step] = []
    var i = 0
    while i < description.layers.count {
        if let (step, count) = rules.lazy.compactMap({ rule in
            rule.match(at: i, in: description, shapes: shapes, parameters: parameters, buffers: buffers).flatMap { m in
                rule.makeStep(m).map { ($0, m.configurations.count) }
            }
        }).first {
            steps.append(step)
            i += count
        } else {
            steps.append(single(i))
            i += 1
        }
    }
    return steps
}

extension Conv2D.Configuration {
    /// Its geometry over an input of `input`'s shape.
    func geometry(for input: FeatureShape) -> ConvGeometry {
        ConvGeometry(channels: input.channels, height: input.height, width: input.width,
                     kernelH: kernelSize, kernelW: kernelSize, stride: stride, padding: padding)
    }
}

/// A layer's weight (OC, …) and bias (OC) in a parameter store, found by
/// name once; the pointers are read at each pass (a replica's gradients
/// are made after its steps).
struct WeightAndBias {
    let weight: ParameterStore.Entry
    let bias: ParameterStore.Entry
    let store: ParameterStore

    /// nil when the store has no such tensors: the rule then declines.
    init?(_ layer: String, in store: ParameterStore) {
        guard let weight = store["\(layer).weight"], let bias = store["\(layer).bias"] else { return nil }
        self.weight = weight
        self.bias = bias
        self.store = store
    }

    var values: (weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>) {
        (store.valuePointer(weight), store.valuePointer(bias))
    }

    /// The gradients, when the store has them.
    var gradients: (weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>)? {
        guard store.hasGradients else { return nil }
        return (store.gradientPointer(weight), store.gradientPointer(bias))
    }
}

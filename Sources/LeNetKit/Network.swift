/// A chain of layers with one contiguous parameter store and the activation
/// buffers between them.
///
/// The path of one training step reads top to bottom:
/// ```swift
/// fill(network.input(batch: n))            // (N, C, H, W)
/// let logits = network.forward(batch: n)    // (N, K)
/// let loss = try lossFunction.forward(logits, labels, batch: n)
/// network.parameters.zeroGradients()
/// lossFunction.backward(network.outputGradient(batch: n))
/// network.backward(batch: n)
/// optimizer.step()
/// ```
public final class Network {
    /// The shape of one input sample.
    public let inputShape: FeatureShape
    public let layers: [any Layer]
    /// Each layer's output shape for one sample.
    public let shapes: [FeatureShape]
    public let parameters: ParameterStore
    public private(set) var capacity = 0

    // activations[0] is the input, activations[i + 1] the output of layer i.
    var activations: [BatchBuffer]  // each (N, shape)
    // gradients[i] is the gradient of the loss with respect to activations[i].
    var gradients: [BatchBuffer]  // each (N, shape)

    /// Checks every layer's shape, lays out the parameters and binds the
    /// layers to their views.
    /// - Throws: `LeNetError` naming the first layer whose input does not fit,
    ///   or a duplicated parameter name.
    public init(inputShape: FeatureShape, layers: [any Layer]) throws {
        self.inputShape = inputShape
        self.layers = layers
        var shapes: [FeatureShape] = []
        var shape = inputShape
        var entries: [ParameterStore.Entry] = []
        var offset = 0
        var seen = Set<String>()
        for layer in layers {
            shape = try layer.outputShape(for: shape)
            shapes.append(shape)
            for spec in layer.parameterSpecs {
                let name = "\(layer.name).\(spec.name)"
                guard seen.insert(name).inserted else {
                    throw LeNetError("two parameters are named '\(name)'; give each layer its own name")
                }
                entries.append(.init(name: name, shape: spec.shape, offset: offset,
                                     count: spec.count, initBound: spec.initBound))
                offset += spec.count
            }
        }
        self.shapes = shapes
        parameters = ParameterStore(entries: entries)
        var index = 0
        for layer in layers {
            let k = layer.parameterSpecs.count
            let mine = parameters.entries[index..<index + k]
            layer.bind(parameters: mine.map(parameters.valuePointer),
                       gradients: mine.map(parameters.gradientPointer))
            index += k
        }
        activations = ([inputShape] + shapes).map { BatchBuffer(perSample: $0.count) }
        gradients = ([inputShape] + shapes).map { BatchBuffer(perSample: $0.count) }
    }

    /// The shape of one output sample (the logits).
    public var outputShape: FeatureShape { shapes.last ?? inputShape }

    /// Allocates activations and caches for batches of up to `n` samples.
    /// Training calls it once per batch size; a step allocates nothing.
    public func reserve(batch n: Int) {
        guard n > capacity else { return }
        for i in activations.indices {
            activations[i].reserve(batch: n)
            gradients[i].reserve(batch: n)
        }
        var shape = inputShape
        for (layer, out) in zip(layers, shapes) {
            layer.reserve(batch: n, input: shape)
            shape = out
        }
        capacity = n
    }

    /// The input of the next forward pass, (N, C, H, W): fill it, then call
    /// `forward(batch: n)`. Reserves room for `n` samples first.
    public func input(batch n: Int) -> UnsafeMutableBufferPointer<Float> {
        reserve(batch: n)
        return UnsafeMutableBufferPointer(start: activations[0].pointer, count: n * inputShape.count)
    }

    /// The gradient of the loss with respect to the output, (N, K): the loss
    /// writes it, then call `backward(batch: n)`.
    public func outputGradient(batch n: Int) -> UnsafeMutableBufferPointer<Float> {
        reserve(batch: n)
        return UnsafeMutableBufferPointer(start: gradients[layers.count].pointer, count: n * outputShape.count)
    }

    /// The output of layer `i` from the last forward pass, (N, shapes[i]).
    public func activation(after i: Int) -> UnsafePointer<Float> { UnsafePointer(activations[i + 1].pointer) }

    /// The gradient with respect to the input from the last backward pass
    /// with `inputGradient: true`, (N, C, H, W).
    public var inputGradient: UnsafePointer<Float> { UnsafePointer(gradients[0].pointer) }

    /// Runs every layer forward on the first `n` samples of `input`.
    /// - Returns: the logits, (N, K).
    @discardableResult
    public func forward(batch n: Int) -> UnsafePointer<Float> {
        reserve(batch: n)
        for (i, layer) in layers.enumerated() {
            layer.forward(activations[i + 1].pointer, activations[i].pointer, batch: n)
        }
        return UnsafePointer(activations[layers.count].pointer)
    }

    /// Runs every layer backward from `outputGradient`, adding into the
    /// parameter gradients. The first layer's input gradient is computed only
    /// when `inputGradient` is true (a training step does not need it).
    public func backward(batch n: Int, inputGradient: Bool = false) {
        for i in layers.indices.reversed() {
            let dx: UnsafeMutablePointer<Float>? = (i > 0 || inputGradient) ? gradients[i].pointer : nil
            layers[i].backward(dx, gradients[i + 1].pointer, activations[i].pointer,
                               activations[i + 1].pointer, batch: n)
        }
    }

    /// Convenience: the logits for a batch given as an array.
    /// - Parameter images: (N, C, H, W) flattened.
    /// - Throws: `LeNetError` when the count is not a multiple of one sample.
    public func predict(_ images: [Float]) throws -> [Float] {
        let size = inputShape.count
        guard !images.isEmpty, images.count % size == 0 else {
            throw LeNetError("expected a multiple of \(size) values (\(inputShape) per image), got \(images.count)")
        }
        let n = images.count / size
        _ = input(batch: n).update(fromContentsOf: images)
        let logits = forward(batch: n)
        return Array(UnsafeBufferPointer(start: logits, count: n * outputShape.count))
    }
}

/// A layer is a forward/backward pair over buffers that the network owns.
///
/// The network calls, in order: `outputShape(for:)` once to check shapes,
/// `bind(parameters:gradients:)` once to hand the layer views into the
/// contiguous parameter store, then `forward` and `backward` every step.
///
/// `forward` caches what `backward` needs (im2col columns, pooling argmax).
/// `backward` adds the parameter gradients into the store (`+=`) and writes
/// the input gradient (`=`) when `dx` is not nil.
///
/// Everything else a layer can tell has a default: its parameters (none),
/// its own initialization, its ONNX nodes. Scratch a layer needs beyond
/// its output is its own (LeNetKit's layers share theirs through the
/// network). A layer written
/// outside LeNetKit implements this protocol and a `LayerConfiguration`, and
/// trains, saves, exports and estimates its memory like LeNetKit's own
/// (docs/LAYERS.md).
public protocol Layer: AnyObject {
    /// The prefix of its parameter names (`conv1` → `conv1.weight`).
    var name: String { get }
    /// The parameter tensors, in PyTorch's order and layout. Default: none.
    var parameterSpecs: [ParameterSpec] { get }
    /// A short description of the kind: `Conv2D 5×5`, `ReLU`.
    var kind: String { get }
    /// Its configuration: what a description (and a checkpoint) records.
    var configuration: any LayerConfiguration { get }

    /// Draws its own initial values after the network's store drew every
    /// tensor uniformly in ±`initBound`; the parameters are bound.
    /// Default: nothing.
    func initialize(using generator: inout SeededGenerator)

    /// Appends its ONNX nodes and initializers to `graph`.
    /// - Returns: the name of its output value.
    /// - Throws: `LeNetError` when it has no ONNX form (the default) or
    ///   cannot take its input.
    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String

    /// `forward` in training (`training: true`: batch statistics, dropout)
    /// or evaluation mode. Default: `forward`, for layers that behave the
    /// same in both.
    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int, training: Bool)

    /// The output shape for an input shape, or an error naming the layer.
    func outputShape(for input: FeatureShape) throws -> FeatureShape

    /// Views into the parameter store, one per `parameterSpecs` entry.
    /// Default: nothing to bind.
    func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>])

    /// y = f(x).
    /// - Parameters:
    ///   - y: the output, (N, outputShape).
    ///   - x: the input, (N, inputShape).
    ///   - n: the batch size.
    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int)

    /// A new layer with the same configuration and no parameters bound: one
    /// per thread for data-parallel passes (caches are per layer instance).
    func replica() -> any Layer

    /// Adds parameter gradients; writes dx when asked for.
    /// - Parameters:
    ///   - dx: the input gradient, (N, inputShape), or nil for the first layer.
    ///   - dy: the output gradient, (N, outputShape).
    ///   - x: the input of the last forward.
    ///   - y: the output of the last forward.
    ///   - n: the batch size.
    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                  _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int)
}

extension Layer {
    /// No parameters (activations, pooling).
    public var parameterSpecs: [ParameterSpec] { [] }
    /// The store's uniform draw is the layer's initialization.
    public func initialize(using generator: inout SeededGenerator) {}
    /// No ONNX form.
    public func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        throw LeNetError("has no ONNX form (\(kind))", subject: name)
    }
    /// The same in training and evaluation.
    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int, training: Bool) {
        forward(y, x, batch: n)
    }
    /// Nothing to bind for a layer without parameters.
    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {}
}

/// What LeNetKit's own layers tell the network beyond `Layer`: buffers that
/// are saved but not trained, the summary's figures, the initialization
/// schemes, random streams per pass and per thread, batch limits, and the
/// SDLM curvature pass. A layer from outside has none of these, and the
/// network asks through `Layer`'s accessors below, which give the defaults
/// for it; keeping them off the public protocol keeps a new layer to the
/// requirements it needs.
protocol BuiltInLayer: Layer {
    /// Non-trainable tensors saved with the parameters and exported, but not
    /// trained: PyTorch's buffers (`running_mean`, `running_var`).
    var bufferSpecs: [ParameterSpec] { get }
    /// Views into the network's buffer store, one per `bufferSpecs` entry.
    func bind(buffers: [UnsafeMutablePointer<Float>])

    /// The scratch buffers its passes need for batches of up to `n` samples
    /// of `input` shape: one spec that both the network's allocation and
    /// `Network.memoryEstimate` read, so the two cannot disagree. The
    /// network allocates them and hands them over (`bind(workspace:)`)
    /// whenever the spec changes. Default: none.
    /// - Parameters:
    ///   - n: the largest batch.
    ///   - input: one sample's shape (C, H, W).
    ///   - workers: how many threads may run this layer's loops at once: 1
    ///     for a data-parallel replica, whose passes run on one thread.
    ///   - backward: whether `backward` will run; without it, only what
    ///     `forward` needs (evaluation, prediction). Once true for a layer,
    ///     the network passes true ever after.
    func workspace(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) -> [WorkspaceBuffer]

    /// The buffers of its last `workspace` spec, in its order, allocated.
    func bind(workspace: [BoundWorkspaceBuffer])

    /// The trainable values among its parameters (fewer than their count
    /// when some entries are held at zero, as in a connection table).
    var trainableParameterCount: Int { get }
    /// ("5×5", number of kernels) for the summary, or nil (no kernel).
    var kernelSummary: (size: String, count: Int)? { get }
    /// Connections for one sample (multiply–adds, as counted by LeCun et al. 1998).
    func connections(for input: FeatureShape) -> Int

    /// `initialize(using:)` for networks drawn by `scheme` (its bounds
    /// from the same fan-ins).
    func initialize(using generator: inout SeededGenerator, scheme: WeightInitialization)

    /// The fewest samples a training-mode pass over `input` may have (2 for
    /// batch statistics over one value per channel, which have no variance).
    func minimumTrainingSamples(input: FeatureShape) -> Int

    /// Called before each training-mode forward with the network's
    /// `trainingPass`: a layer that draws random numbers (dropout) seeds
    /// them from it, so a run resumed at a step draws what an uninterrupted
    /// one drew there.
    func startTrainingPass(_ pass: Int)

    /// `replica()` for part `part` (1, 2, …) of a data-parallel step, which
    /// is what the network asks for: a layer that draws random numbers
    /// (dropout) gives each part its own stream.
    func replica(part: Int) -> any Layer

    /// How the curvature pass of `Network.accumulateCurvature` (the
    /// diagonal Hessian estimate of the SDLM optimizer) crosses the layer.
    var curvatureRule: CurvatureRule { get }

    /// For `.custom`: writes the curvature with respect to the input, dx2,
    /// from dy2, the curvature with respect to the output, and dy, the
    /// gradient there; adds its parameters' curvature to the gradient
    /// store (which the pass has bound to hold it).
    /// - Parameters:
    ///   - dx2: (N, inputShape), or nil for the first layer.
    ///   - dy2: (N, outputShape).
    ///   - dy: (N, outputShape), the first-order gradient of the same samples.
    ///   - x: the input of the last forward.
    ///   - y: the output of the last forward.
    ///   - n: the batch size.
    func backwardCurvature(_ dx2: UnsafeMutablePointer<Float>?, _ dy2: UnsafePointer<Float>, gradient dy: UnsafePointer<Float>,
                           _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int)
}

extension BuiltInLayer {
    var bufferSpecs: [ParameterSpec] { [] }
    func bind(buffers: [UnsafeMutablePointer<Float>]) {}
    func workspace(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) -> [WorkspaceBuffer] { [] }
    func bind(workspace: [BoundWorkspaceBuffer]) {}
    var trainableParameterCount: Int { parameterSpecs.reduce(0) { $0 + $1.count } }
    var kernelSummary: (size: String, count: Int)? { nil }
    /// No connections counted (activations).
    func connections(for input: FeatureShape) -> Int { 0 }
    /// The scheme changes nothing of the layer's own draw.
    func initialize(using generator: inout SeededGenerator, scheme: WeightInitialization) {
        initialize(using: &generator)
    }
    func minimumTrainingSamples(input: FeatureShape) -> Int { 1 }
    func startTrainingPass(_ pass: Int) {}
    func replica(part: Int) -> any Layer { replica() }
    var curvatureRule: CurvatureRule { .unsupported }
    /// Only `.custom` layers are asked.
    func backwardCurvature(_ dx2: UnsafeMutablePointer<Float>?, _ dy2: UnsafePointer<Float>, gradient dy: UnsafePointer<Float>,
                           _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {}
}

/// The network's view of any layer: a built-in layer's own answer, or the
/// default for a layer from outside (no buffers or scratch, every parameter trainable,
/// no kernel or connections counted, one initialization, no random streams,
/// any batch, no curvature pass).
extension Layer {
    private var builtIn: (any BuiltInLayer)? { self as? any BuiltInLayer }
    var bufferSpecs: [ParameterSpec] { builtIn?.bufferSpecs ?? [] }
    func bind(buffers: [UnsafeMutablePointer<Float>]) { builtIn?.bind(buffers: buffers) }
    func workspace(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) -> [WorkspaceBuffer] {
        builtIn?.workspace(batch: n, input: input, workers: workers, backward: backward) ?? []
    }
    func bind(workspace: [BoundWorkspaceBuffer]) { builtIn?.bind(workspace: workspace) }
    var trainableParameterCount: Int {
        builtIn?.trainableParameterCount ?? parameterSpecs.reduce(0) { $0 + $1.count }
    }
    var kernelSummary: (size: String, count: Int)? { builtIn?.kernelSummary }
    func connections(for input: FeatureShape) -> Int { builtIn?.connections(for: input) ?? 0 }
    func initialize(using generator: inout SeededGenerator, scheme: WeightInitialization) {
        if let builtIn { builtIn.initialize(using: &generator, scheme: scheme) } else { initialize(using: &generator) }
    }
    func minimumTrainingSamples(input: FeatureShape) -> Int { builtIn?.minimumTrainingSamples(input: input) ?? 1 }
    func startTrainingPass(_ pass: Int) { builtIn?.startTrainingPass(pass) }
    func replica(part: Int) -> any Layer { builtIn?.replica(part: part) ?? replica() }
    var curvatureRule: CurvatureRule { builtIn?.curvatureRule ?? .unsupported }
    func backwardCurvature(_ dx2: UnsafeMutablePointer<Float>?, _ dy2: UnsafePointer<Float>, gradient dy: UnsafePointer<Float>,
                           _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        builtIn?.backwardCurvature(dx2, dy2, gradient: dy, x, y, batch: n)
    }
}

/// How second derivatives go back through a layer in the Gauss–Newton
/// diagonal estimate of LeCun et al. 1998 (appendix C): the curvature of the
/// loss with respect to each value, off-diagonal terms dropped at every
/// level and the units' second derivatives f″ neglected.
enum CurvatureRule: Sendable {
    /// A weighted sum, a = Σ w·u + b (convolutions, fully connected layers,
    /// trainable subsampling): ∂²E/∂u² = Σ w²·∂²E/∂a² over the connections
    /// and ∂²E/∂w = Σ u²·∂²E/∂a² over the connections sharing w; the pass
    /// runs the layer's own `backward` with its weights and its input
    /// squared.
    case affine
    /// An elementwise unit x = f(a): ∂²E/∂a² = f′(a)²·∂²E/∂x², the
    /// layer's `backward` run twice.
    case pointwise
    /// An elementwise or routing layer whose derivatives are 0 or 1 (ReLU,
    /// max pooling, flattening): its `backward`, once.
    case piecewiseLinear
    /// The layer's own `backwardCurvature` (the RBF output).
    case custom
    /// No curvature pass: SDLM refuses the network, naming the layer.
    case unsupported
}

/// One scratch buffer a layer asks for (`BuiltInLayer.workspace`): what it is,
/// for errors and estimates, and how many Floats. A buffer of 32-bit
/// integers (a pooling argmax) asks for Floats and rebinds them.
struct WorkspaceBuffer: Sendable, Equatable {
    /// What it holds: `im2col scratch`, `argmax`.
    var name: String
    /// Its size in Floats (4 bytes each).
    var count: Int

    /// `count` Floats, called `name` in errors and estimates.
    init(_ name: String, count: Int) {
        self.name = name
        self.count = count
    }
}

/// A workspace buffer as the network allocated it: the spec and where it is.
struct BoundWorkspaceBuffer {
    /// What was asked for.
    var spec: WorkspaceBuffer
    /// `spec.count` Floats, zeroed when allocated; the layer's until the next bind.
    var pointer: UnsafeMutablePointer<Float>
}

/// A layer's pass called before the layer was bound to its parameters and
/// reserved: a programming error (a `Network` binds every layer when it is
/// made and reserves before every pass, and no file or flag reaches a layer
/// any other way), so it stops here instead of writing nothing and letting
/// the next layer read stale memory.
func unready(_ layer: String, _ pass: String = "forward or backward") -> Never {
    preconditionFailure("\(layer): \(pass) before the layer was bound to its parameters and reserved")
}

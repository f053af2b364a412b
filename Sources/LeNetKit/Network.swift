import Dispatch
import Foundation

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
///
/// The pointers and buffer views it hands out (`input(batch:)`,
/// `forward(batch:)`, `infer(batch:)`, `activation(after:)`,
/// `outputGradient(batch:)`, `inputGradient`) point into buffers the network
/// owns. Each stays valid, and keeps its contents until the next pass
/// writes them, until the network reallocates that buffer: a `reserve`,
/// `input(batch:)` or `outputGradient(batch:)` for a batch larger than
/// `capacity` (or, for the gradients, `backwardCapacity`), or the network's
/// release. Read the logits or copy them before asking for a larger batch.
public final class Network {
    /// The shape of one input sample.
    public let inputShape: FeatureShape
    /// The layers, first to last.
    let layers: [any Layer]
    /// Each layer's output shape for one sample.
    let shapes: [FeatureShape]
    /// Every layer's parameters and gradients, in one store, in layer order.
    public let parameters: ParameterStore
    /// Every layer's non-trainable buffers (running statistics), in one
    /// store without gradients, in layer order: saved and exported with
    /// the parameters, never trained.
    let buffers: ParameterStore
    /// The network as a value: its input shape and its layers'
    /// configurations. Checkpoints carry it (metadata key `network`).
    public let networkDescription: NetworkDescription
    /// `networkDescription.json()`, encoded once: every checkpoint writes it
    /// and every resume compares with it.
    let descriptionJSON: String
    /// The training-mode forwards run so far, which seeds what they draw
    /// (dropout's masks): a pass draws from its number, not from the passes
    /// before it. `Trainer` sets it to the optimizer's step count before
    /// each step, so a resumed run draws the masks an uninterrupted one would.
    var trainingPass = 0

    /// The largest batch the buffers hold now; `reserve(batch:)` grows it.
    private(set) var capacity = 0
    /// The largest batch the backward pass's buffers hold (0 until a
    /// reserve with `backward: true`; evaluation never makes them).
    private(set) var backwardCapacity = 0
    /// How many threads this network's own passes (`forward`, `infer`,
    /// `backward`, and the `reserve` that sizes their scratch) split each
    /// batch's loops across: the network's own setting, read by nothing
    /// else. Default: the active cores. A pass run as one part of a
    /// `DataParallel` region runs on its part's thread alone, whatever this
    /// says. A change takes effect at the next `reserve(batch:)`, which
    /// makes the layers' scratch for that many threads (the first
    /// `input(batch:)` reserves too): a pass never uses more threads than
    /// the last reserve made scratch for.
    public var threads: Int {
        didSet { threads = max(1, threads) }
    }
    /// Whether the forward-only path (`infer(batch:)`, and so evaluation and
    /// `Classifier`) may run a 5×5 convolution followed by a 2×2 max pool
    /// and a ReLU by Winograd's F(2×2, 5×5), where its kernel takes it and
    /// wins (channels enough, output channels a multiple of 8, a CPU with
    /// AVX2/FMA): the CIFAR LeNet's conv2. Its results differ from direct
    /// convolution's by rounding, within a bound docs/WINOGRAD.md derives.
    /// False runs every convolution directly. Training always does.
    /// `LENETKIT_KERNELS=portable` turns it off with every vector kernel.
    /// A change takes effect at the next `reserve(batch:)` (which
    /// `input(batch:)`, evaluation and `Classifier` make).
    public var allowsWinograd = true {
        didSet { if allowsWinograd != oldValue { inferenceStepsStale = true } }
    }
    /// `allowsWinograd` changed: the next reserve rebuilds the inference steps.
    private var inferenceStepsStale = false
    /// The workers the layers' scratch was reserved for.
    private var reservedWorkers = 0
    /// Each layer's and each fused step's scratch (`Layer.workspace`), as last allocated.
    private var layerWorkspaces: [WorkspaceSlot]
    private var inferenceWorkspaces: [WorkspaceSlot] = []
    private var backwardWorkspaces: [WorkspaceSlot] = []
    /// The threads a pass splits its loops across: `threads`, at most
    /// what the scratch was reserved for.
    var passThreads: Int { min(threads, reservedWorkers) }

    // activations[0] is the input, activations[i + 1] the output of layer i.
    var activations: [BatchBuffer]  // each (N, shape)
    // gradients[i] is the gradient of the loss with respect to activations[i].
    var gradients: [BatchBuffer]  // each (N, shape)
    /// The forward-only path `infer(batch:)` runs: the layers, some fused
    /// (`InferenceFusion`).
    private(set) var inferenceSteps: [any InferenceStep] = []
    /// The backward pass `backward(batch:)` runs: the layers, a convolution
    /// and the pool after it fused (`BackwardFusion`).
    private(set) var backwardSteps: [any BackwardStep] = []
    /// The same pass with every layer a step of its own: what `backward`
    /// runs with `fusesPooling` false.
    private var layerBackwardSteps: [any BackwardStep] = []

    /// Checks every layer's shape, lays out the parameters and binds the
    /// layers to their views. The parameters are left at 0: initialize
    /// them (`parameters.initialize(using:)`) or load them.
    /// - Throws: `LeNetError` naming the first layer whose input does not fit,
    ///   or a duplicated parameter name.
    convenience init(inputShape: FeatureShape, layers: [any Layer]) throws {
        try self.init(inputShape: inputShape, layers: layers, sharingValuesWith: nil,
                      threads: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Builds the network a description describes, initialized from `seed`
    /// as PyTorch initializes its layers (each tensor uniform in ±1/√fan_in,
    /// or its constant; then each layer's own draw, such as a connection
    /// table's per-map fan-in).
    /// - Parameters:
    ///   - description: the input shape and the layers' configurations.
    ///   - seed: fixes the initial parameters.
    ///   - initialization: how the weights are drawn (PyTorch's bounds, the
    ///     default, or LeCun et al. 1998's).
    /// - Throws: `LeNetError` naming the layer and the field: a bad size, a
    ///   shape that does not chain, parameters beyond the memory there is.
    public convenience init(_ description: NetworkDescription, seed: UInt64 = 0,
                            initialization: WeightInitialization = .pytorch) throws {
        try self.init(inputShape: description.inputShape, layers: description.makeLayers(),
                      sharingValuesWith: nil, threads: ProcessInfo.processInfo.activeProcessorCount, name: description.name)
        var rng = SeededGenerator(seed: seed)
        parameters.initialize(using: &rng, scheme: initialization)
        buffers.initialize(using: &rng)
        for layer in layers { layer.initialize(using: &rng, scheme: initialization) }
    }

    private init(inputShape: FeatureShape, layers: [any Layer], sharingValuesWith primary: Network?,
                 threads: Int, name: String? = nil) throws {
        _ = SingleThreadedBLAS.ensured
        self.inputShape = inputShape
        self.threads = max(1, threads)
        self.layers = layers
        var shapes: [FeatureShape] = []
        var shape = inputShape
        var entries: [ParameterStore.Entry] = [], bufferEntries: [ParameterStore.Entry] = []
        var offset = 0, bufferOffset = 0
        var seen = Set<String>()
        var perSample = try Self.checkedCount(inputShape, "the input")
        for layer in layers {
            shape = try layer.outputShape(for: shape)
            perSample = perSample &+ (try Self.checkedCount(shape, layer.name))
            shapes.append(shape)
            for (isBuffer, spec) in layer.parameterSpecs.map({ (false, $0) }) + layer.bufferSpecs.map({ (true, $0) }) {
                let name = "\(layer.name).\(spec.name)"
                guard seen.insert(name).inserted else {
                    throw LeNetError("two parameters are named '\(name)'; give each layer its own name")
                }
                let count = try Self.checkedProduct(spec.shape, name)
                let entry = ParameterStore.Entry(name: name, shape: spec.shape, offset: isBuffer ? bufferOffset : offset,
                                                 count: count, initBound: spec.initBound, initialValue: spec.initialValue)
                if isBuffer {
                    bufferEntries.append(entry)
                    bufferOffset = bufferOffset &+ count
                } else {
                    entries.append(entry)
                    offset = offset &+ count
                }
                // Values and gradients of every tensor so far, and one sample's
                // activations: refused before anything is allocated.
                try Self.checkMemory(floats: 2 &* offset &+ bufferOffset &+ 2 &* perSample, at: name)
            }
        }
        try Self.checkMemory(floats: 2 &* offset &+ bufferOffset &+ 2 &* perSample, at: layers.last?.name ?? "the input")
        self.shapes = shapes
        layerWorkspaces = Array(repeating: WorkspaceSlot(), count: layers.count)
        networkDescription = NetworkDescription(name: name ?? primary?.networkDescription.name, inputShape: inputShape,
                                                layers: layers.map(\.configuration))
        if let primary {
            descriptionJSON = primary.descriptionJSON
        } else {
            // Every checkpoint carries the description: it must be valid and encode.
            try networkDescription.validate()
            descriptionJSON = try networkDescription.encodedJSON()
        }
        // A replica's parameter gradients wait for its first backward reserve.
        parameters = try ParameterStore(entries: entries, sharingValuesWith: primary?.parameters, gradients: primary == nil)
        buffers = try ParameterStore(entries: bufferEntries, sharingValuesWith: primary?.buffers, gradients: false)
        let names = ["input"] + layers.map { "\($0.name) output" }
        activations = zip(names, [inputShape] + shapes).map { BatchBuffer(perSample: $1.count, name: $0) }
        gradients = zip(names, [inputShape] + shapes).map { BatchBuffer(perSample: $1.count, name: "gradient of \($0)") }
        bindLayers()
        inferenceSteps = InferenceFusion.steps(network: self)
        backwardSteps = BackwardFusion.steps(network: self)
        layerBackwardSteps = BackwardFusion.steps(network: self, fusing: false)
        inferenceWorkspaces = Array(repeating: WorkspaceSlot(), count: inferenceSteps.count)
        backwardWorkspaces = Array(repeating: WorkspaceSlot(), count: backwardSteps.count)
    }

    /// Hands each layer its views into the parameter store (again after a
    /// replica's gradients are made) and the buffer store.
    private func bindLayers() {
        var index = 0, bufferIndex = 0
        for layer in layers {
            let k = layer.parameterSpecs.count
            let mine = parameters.entries[index..<index + k]
            layer.bind(parameters: mine.map(parameters.valuePointer),
                       gradients: mine.map(parameters.gradientPointer))
            index += k
            let b = layer.bufferSpecs.count
            if b > 0 { layer.bind(buffers: buffers.entries[bufferIndex..<bufferIndex + b].map(buffers.valuePointer)) }
            bufferIndex += b
        }
    }

    /// The largest values a network may hold in one tensor or one sample's
    /// activation: 2³⁸ floats (1 TB), far beyond any machine's memory, and
    /// small enough that no count built from them overflows.
    static let maximumFloats = 1 << 38

    /// C·H·W without overflow, at most 2³¹ − 1: the kernels index a sample,
    /// and sgemm its dimensions, with 32-bit integers.
    private static func checkedCount(_ shape: FeatureShape, _ what: String) throws -> Int {
        let count = try checkedProduct([shape.channels, shape.height, shape.width], what, output: true)
        guard count <= Int(Int32.max) else {
            throw LeNetError("its output, \(shape), holds \(count) values a sample, more than the 2^31 − 1 the kernels index", subject: what)
        }
        return count
    }

    /// The product of `dims`, every one ≥ 1, without overflow, at most `maximumFloats`.
    private static func checkedProduct(_ dims: [Int], _ what: String, output: Bool = false) throws -> Int {
        var product = 1
        for d in dims {
            guard d >= 1 else { throw LeNetError("has a size of \(d) in \(dims)", subject: what) }
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maximumFloats else {
                throw LeNetError("\(output ? "its output" : "the tensor") \(dims) holds more values than any memory (over 2^38)", subject: what)
            }
            product = p
        }
        return product
    }

    /// Throws when `floats` values need more memory than the process can have now.
    private static func checkMemory(floats: Int, at what: String) throws {
        let bytes = floats.multipliedReportingOverflow(by: 4)
        guard let available = SystemMemory.available(), bytes.overflow || bytes.partialValue > available.bytes else { return }
        throw LeNetError("the parameters and one sample's activations up to here need \(ByteCount(bytes.overflow ? Int.max : bytes.partialValue)), "
                         + "more than the \(ByteCount(available.bytes)) available (\(available.source))", subject: what)
    }

    /// Whether `backward` runs a convolution and the 2×2, stride-2 max pool
    /// after it as one pass from the pool's output gradient
    /// (`ConvMaxPoolBackward`, docs/PERFORMANCE.md). The gradients agree
    /// with the layer-by-layer pass to rounding. When false, every layer
    /// runs its own `backward` (the reference path). Default true; a
    /// `DataParallel` replica follows its network's setting.
    var fusesPooling = true

    /// Whether the pool at `i` runs its backward pass inside the
    /// convolution's before it.
    func backwardFusesPool(at i: Int) -> Bool {
        backwardPath.contains { $0.layers.lowerBound < i && $0.layers.contains(i) }
    }

    /// The steps `backward` runs, first to last.
    var backwardPath: [any BackwardStep] { fusesPooling ? backwardSteps : layerBackwardSteps }

    /// The backward pass of one step: from the gradient of its last layer's
    /// output to its first layer's input gradient, skipped for the network's
    /// input unless `inputGradient` asks for it.
    func backward(_ step: any BackwardStep, batch n: Int, inputGradient: Bool) {
        let i = step.layers.lowerBound
        let dx: UnsafeMutablePointer<Float>? = (i > 0 || inputGradient) ? gradients[i].pointer : nil
        step.backward(dx, gradients[step.layers.upperBound].pointer, activations: activations, batch: n)
    }

    /// The shape of one output sample (the logits).
    public var outputShape: FeatureShape { shapes.last ?? inputShape }

    /// Throws unless the network's outputs can be the logits of 1 to 256
    /// classes (labels are bytes): what training, evaluation and
    /// classification need, and what their confusion matrices are sized by.
    func checkClassifies() throws {
        let K = outputShape.count
        guard (1...256).contains(K) else {
            throw LeNetError("gives \(K) outputs a sample; a classifier's last layer gives 1 to 256 (one per class)",
                             subject: layers.last?.name ?? "network")
        }
    }

    /// Allocates activations and caches for batches of up to `n` samples.
    /// Training calls it once per batch size; a step allocates nothing.
    /// `memoryEstimate(batch:)` says beforehand how much this takes.
    /// - Parameters:
    ///   - n: the batch size.
    ///   - backward: also the backward pass's buffers (activation and
    ///     parameter gradients, the layers' backward scratch). Evaluation
    ///     and prediction reserve without them; once made they are kept.
    /// - Throws: `LeNetError` naming the buffer and its size when memory
    ///   cannot be had; the network then keeps its previous capacities.
    public func reserve(batch n: Int, backward: Bool = true) throws {
        try reserve(batch: n, backward: backward, workers: threads)
    }

    /// The inference steps rebuilt after `allowsWinograd` changed, with
    /// scratch for what is reserved already (no more samples or workers).
    private func reserveInferenceSteps() throws {
        try reserve(batch: capacity, backward: false, workers: reservedWorkers)
    }

    /// `reserve(batch:backward:)` with the layers' scratch for `workers`
    /// threads (kept when more were reserved before): `DataParallel`
    /// reserves its parts this way.
    func reserve(batch n: Int, backward: Bool, workers: Int) throws {
        let workers = max(workers, reservedWorkers, 1)
        let backward = backward || backwardCapacity > 0
        guard n > capacity || workers > reservedWorkers || (backward && backwardCapacity < max(n, capacity))
                || inferenceStepsStale else { return }
        let n = max(n, capacity)
        for i in activations.indices { try activations[i].reserve(batch: n) }
        if backward {
            for i in gradients.indices { try gradients[i].reserve(batch: n) }
            if try parameters.reserveGradients() { bindLayers() }
        }
        var shape = inputShape
        for (i, (layer, out)) in zip(layers, shapes).enumerated() {
            let spec = layer.workspace(batch: n, input: shape, workers: workers, backward: backward)
            if let bound = try layerWorkspaces[i].fit(spec, owner: layer.name) { layer.bind(workspace: bound) }
            shape = out
        }
        if backward {
            for (k, step) in backwardSteps.enumerated() {
                if let bound = try backwardWorkspaces[k].fit(step.workspace, owner: layers[step.layers.lowerBound].name) { step.bind(workspace: bound) }
            }
        }
        if inferenceStepsStale {
            inferenceSteps = InferenceFusion.steps(network: self)
            inferenceWorkspaces = Array(repeating: WorkspaceSlot(), count: inferenceSteps.count)
            inferenceStepsStale = false
        }
        for (k, step) in inferenceSteps.enumerated() {
            if let bound = try inferenceWorkspaces[k].fit(step.workspace(batch: n, workers: workers), owner: layers[step.layers.lowerBound].name) {
                step.bind(workspace: bound)
            }
        }
        capacity = n
        if backward { backwardCapacity = n }
        reservedWorkers = workers
    }

    /// The input of the next forward pass, (N, C, H, W): fill it, then call
    /// `forward(batch: n)`. Reserves room for `n` samples first, backward
    /// buffers included, unless `n` fits what is reserved already.
    /// - Throws: as `reserve(batch:)`.
    public func input(batch n: Int) throws -> UnsafeMutableBufferPointer<Float> {
        if n > capacity { try reserve(batch: n) } else if inferenceStepsStale { try reserveInferenceSteps() }
        return UnsafeMutableBufferPointer(start: activations[0].pointer, count: n * inputShape.count)
    }

    /// The gradient of the loss with respect to the output, (N, K): the loss
    /// writes it, then call `backward(batch: n)`. Reserves the backward
    /// pass's buffers first when a forward-only reserve left them out.
    /// - Throws: as `reserve(batch:)`.
    public func outputGradient(batch n: Int) throws -> UnsafeMutableBufferPointer<Float> {
        if n > backwardCapacity { try reserve(batch: n, backward: true) }
        return UnsafeMutableBufferPointer(start: gradients[layers.count].pointer, count: n * outputShape.count)
    }

    /// The output of layer `i` from the last forward pass, (N, shapes[i]).
    func activation(after i: Int) -> UnsafePointer<Float> { UnsafePointer(activations[i + 1].pointer) }

    /// The gradient with respect to the input from the last backward pass
    /// with `inputGradient: true`, (N, C, H, W).
    var inputGradient: UnsafePointer<Float> { UnsafePointer(gradients[0].pointer) }

    /// Runs every layer forward on the first `n` samples of `input`; `n`
    /// is at most the batch of the last `input(batch:)` or `reserve(batch:)`
    /// (the input was filled there). Every layer's output is kept for the
    /// backward pass.
    /// - Parameters:
    ///   - n: the batch size.
    ///   - training: training mode (the default: batch statistics, dropout,
    ///     the running statistics updated) or evaluation mode (what `infer`
    ///     runs), as PyTorch's `train()` and `eval()`.
    /// - Returns: the logits, (N, K).
    @discardableResult
    public func forward(batch n: Int, training: Bool = true) -> UnsafePointer<Float> {
        precondition(n <= capacity, "forward(batch: \(n)) beyond the reserved \(capacity); call input(batch:) first")
        if training {
            for layer in layers { layer.startTrainingPass(trainingPass) }
            trainingPass &+= 1
        }
        ThreadBudget.with(passThreads) {
            for (i, layer) in layers.enumerated() {
                layer.forward(activations[i + 1].pointer, activations[i].pointer, batch: n, training: training)
            }
        }
        return UnsafePointer(activations[layers.count].pointer)
    }

    /// Samples per thread that `infer` runs through all its steps at a time.
    static let inferenceChunk = 8

    /// The forward-only path: the logits of `forward(batch: n)` for the first
    /// `n` samples of `input`, to float rounding, with layers fused where a
    /// faster kernel takes them (a convolution with its pool and ReLU:
    /// `InferenceFusion`). Evaluation and prediction run it. The outputs of
    /// layers inside a fused step are not written, so a backward pass must
    /// follow `forward`, not this. `n` is at most the reserved batch.
    /// - Returns: the logits, (N, K).
    @discardableResult
    public func infer(batch n: Int) -> UnsafePointer<Float> {
        precondition(n <= capacity, "infer(batch: \(n)) beyond the reserved \(capacity); call input(batch:) first")
        runInference(batch: n, inputInPlace: true, filling: { _, _ in }, timing: nil)
        return UnsafePointer(activations[layers.count].pointer)
    }

    /// `infer(batch:)` that asks for each chunk's input just before the
    /// chunk runs, so that a large batch's input is still in cache when it
    /// is read (evaluation fills the images this way). Every chunk's input
    /// is written to the same place, the start of the input buffer: after
    /// this, `input(batch:)` holds the last chunk's images only.
    /// - Parameters:
    ///   - n: the batch size; the buffers are reserved for it first.
    ///   - fill: (samples of the chunk, the chunk's input (M, C, H, W)): write the input.
    /// - Returns: the logits, (N, K).
    /// - Throws: as `reserve(batch:)`, and what `fill` throws (the chunks
    ///   after it are not run).
    @discardableResult
    func infer(batch n: Int, filling fill: (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void) throws
        -> UnsafePointer<Float> {
        if n > capacity { try reserve(batch: n, backward: false) } else if inferenceStepsStale { try reserveInferenceSteps() }
        try runInference(batch: n, inputInPlace: false, filling: fill, timing: nil)
        return UnsafePointer(activations[layers.count].pointer)
    }

    /// `infer`'s loop; `timing(k, nanoseconds)` is told each step's time in
    /// each chunk (`timeInference`).
    /// With `inputInPlace` the input is the whole batch's, already written,
    /// and `fill` is not called; else `fill` writes each chunk's.
    func runInference(batch n: Int, inputInPlace: Bool, filling fill: (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void,
                      timing: ((Int, UInt64) -> Void)?) rethrows {
        try ThreadBudget.with(passThreads) {
            try runInferenceChunks(batch: n, inputInPlace: inputInPlace, filling: fill, timing: timing)
        }
    }

    private func runInferenceChunks(batch n: Int, inputInPlace: Bool,
                                    filling fill: (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void,
                                    timing: ((Int, UInt64) -> Void)?) rethrows {
        // Depth first: a few samples at a time through every step, so each
        // step reads what the one before wrote while it is still in L2
        // (about 30 KB a sample for the CIFAR LeNet), instead of each step
        // streaming the whole batch's activations through memory. A chunk
        // has samples enough for every thread that may run a step. Every
        // chunk's activations between the steps (and its input unless it is
        // in place) go to the start of their buffers, the same memory for
        // every chunk: at a chunk's own offset in the batch, each chunk of a
        // large batch wrote lines not yet in cache (at batch 256 on 2
        // threads, 3 MB a part for conv1's output alone).
        let workers = WorkerTeam.current?.threads ?? ThreadBudget.current
        let chunk = Self.inferenceChunk * workers
        for step in inferenceSteps { step.prepare() }
        let last = layers.count
        var first = 0
        while first < n {
            let m = min(chunk, n - first)
            if !inputInPlace { try fill(first..<first + m, activations[0].pointer) }
            for (k, step) in inferenceSteps.enumerated() {
                let i = step.layers.lowerBound, o = step.layers.upperBound
                let inputOffset = i == 0 && inputInPlace ? first * activations[0].perSample : 0
                let outputOffset = o == last ? first * activations[last].perSample : 0
                let start = timing == nil ? 0 : DispatchTime.now().uptimeNanoseconds
                step.forward(activations[o].pointer + outputOffset, activations[i].pointer + inputOffset, batch: m)
                if let timing { timing(k, DispatchTime.now().uptimeNanoseconds - start) }
            }
            first += m
        }
    }

    /// Runs every layer backward from `outputGradient`, adding into the
    /// parameter gradients. The first layer's input gradient is computed only
    /// when `inputGradient` is true (a training step does not need it).
    public func backward(batch n: Int, inputGradient: Bool = false) {
        precondition(n <= backwardCapacity, "backward(batch: \(n)) beyond the reserved \(backwardCapacity); call outputGradient(batch:) first")
        ThreadBudget.with(passThreads) {
            for step in backwardPath.reversed() { backward(step, batch: n, inputGradient: inputGradient) }
        }
    }

    /// A network that shares this one's parameter values but owns its
    /// gradients, activations and caches, and runs its passes on one
    /// thread: one part of a `DataParallel` region. Its parameter gradients
    /// wait for its first backward reserve.
    func makeReplica(part: Int) throws -> Network {
        // The layers are this network's, so their shapes already fit.
        let copy = try Network(inputShape: inputShape, layers: layers.map { $0.replica(part: part) },
                               sharingValuesWith: self, threads: 1)
        copy.fusesPooling = fusesPooling
        copy.allowsWinograd = allowsWinograd
        return copy
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
        _ = try input(batch: n).update(fromContentsOf: images)
        let logits = infer(batch: n)
        return Array(UnsafeBufferPointer(start: logits, count: n * outputShape.count))
    }
}

/// The scratch the network allocated for one layer or fused step, and the
/// spec it was made for.
struct WorkspaceSlot {
    private(set) var spec: [WorkspaceBuffer] = []
    private var buffers: [FloatBuffer] = []

    /// Allocates `spec` when it differs from what is held (all of it, or
    /// nothing changes when an allocation fails).
    /// - Returns: the buffers to bind, or nil when the spec is unchanged.
    /// - Throws: `LeNetError` naming the owner and the buffer.
    mutating func fit(_ spec: [WorkspaceBuffer], owner: String) throws -> [BoundWorkspaceBuffer]? {
        guard spec != self.spec else { return nil }
        let made = try spec.map { try FloatBuffer(count: $0.count, name: "\(owner) \($0.name)") }
        buffers = made
        self.spec = spec
        return zip(spec, made).map { BoundWorkspaceBuffer(spec: $0, pointer: $1.pointer) }
    }
}

import Dispatch

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
    public let layers: [any Layer]
    /// Each layer's output shape for one sample.
    public let shapes: [FeatureShape]
    /// Every layer's parameters and gradients, in one store, in layer order.
    public let parameters: ParameterStore
    /// The largest batch the buffers hold now; `reserve(batch:)` grows it.
    public private(set) var capacity = 0
    /// The largest batch the backward pass's buffers hold (0 until a
    /// reserve with `backward: true`; evaluation never makes them).
    public private(set) var backwardCapacity = 0
    /// Whether this is a data-parallel replica: its passes run on one
    /// thread each, inside a parallel region, so its layers keep scratch
    /// for one worker.
    private let isReplica: Bool
    /// The workers the layers' scratch was reserved for.
    private var reservedWorkers = 0

    // activations[0] is the input, activations[i + 1] the output of layer i.
    var activations: [BatchBuffer]  // each (N, shape)
    // gradients[i] is the gradient of the loss with respect to activations[i].
    var gradients: [BatchBuffer]  // each (N, shape)
    /// The forward-only path `infer(batch:)` runs: the layers, some fused
    /// (`InferenceFusion`).
    let inferenceSteps: [any InferenceStep]
    /// The backward pass `backward(batch:)` runs: the layers, a convolution
    /// and the pool after it fused (`BackwardFusion`).
    let backwardSteps: [any BackwardStep]
    /// The same pass with every layer a step of its own: what `backward`
    /// runs with `fusesPooling` false.
    private let layerBackwardSteps: [any BackwardStep]

    /// Checks every layer's shape, lays out the parameters and binds the
    /// layers to their views.
    /// - Throws: `LeNetError` naming the first layer whose input does not fit,
    ///   or a duplicated parameter name.
    public convenience init(inputShape: FeatureShape, layers: [any Layer]) throws {
        try self.init(inputShape: inputShape, layers: layers, sharingValuesWith: nil)
    }

    private init(inputShape: FeatureShape, layers: [any Layer], sharingValuesWith primary: ParameterStore?) throws {
        self.inputShape = inputShape
        isReplica = primary != nil
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
        // A replica's parameter gradients wait for its first backward reserve.
        parameters = try ParameterStore(entries: entries, sharingValuesWith: primary, gradients: primary == nil)
        let names = ["input"] + layers.map { "\($0.name) output" }
        activations = zip(names, [inputShape] + shapes).map { BatchBuffer(perSample: $1.count, name: $0) }
        gradients = zip(names, [inputShape] + shapes).map { BatchBuffer(perSample: $1.count, name: "gradient of \($0)") }
        inferenceSteps = InferenceFusion.steps(layers: layers, inputShape: inputShape, shapes: shapes)
        backwardSteps = BackwardFusion.steps(layers: layers, inputShape: inputShape, shapes: shapes)
        layerBackwardSteps = BackwardFusion.steps(layers: layers, inputShape: inputShape, shapes: shapes, fusing: false)
        bindLayers()
    }

    /// Hands each layer its views into the parameter store (again after a
    /// replica's gradients are made).
    private func bindLayers() {
        var index = 0
        for layer in layers {
            let k = layer.parameterSpecs.count
            let mine = parameters.entries[index..<index + k]
            layer.bind(parameters: mine.map(parameters.valuePointer),
                       gradients: mine.map(parameters.gradientPointer))
            index += k
        }
    }

    /// Whether `backward` runs a convolution and the 2×2, stride-2 max pool
    /// after it as one pass from the pool's output gradient
    /// (`ConvMaxPoolBackward`, docs/PERFORMANCE.md). The gradients agree
    /// with the layer-by-layer pass to rounding. When false, every layer
    /// runs its own `backward` (the reference path). Default true; a
    /// data-parallel replica follows its network's setting.
    public var fusesPooling = true {
        didSet { for replica in replicaCache { replica.fusesPooling = fusesPooling } }
    }

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
        let workers = isReplica ? 1 : Parallelism.threads
        let backward = backward || backwardCapacity > 0
        guard n > capacity || workers > reservedWorkers || (backward && backwardCapacity < max(n, capacity)) else { return }
        let n = max(n, capacity)
        for i in activations.indices { try activations[i].reserve(batch: n) }
        if backward {
            for i in gradients.indices { try gradients[i].reserve(batch: n) }
            if try parameters.reserveGradients() { bindLayers() }
        }
        var shape = inputShape
        for (layer, out) in zip(layers, shapes) {
            try layer.reserve(batch: n, input: shape, workers: workers, backward: backward)
            shape = out
        }
        if backward {
            for step in backwardSteps { try step.reserve() }
        }
        for step in inferenceSteps { try step.reserve(batch: n, workers: workers) }
        capacity = n
        if backward { backwardCapacity = n }
        reservedWorkers = workers
    }

    /// The input of the next forward pass, (N, C, H, W): fill it, then call
    /// `forward(batch: n)`. Reserves room for `n` samples first, backward
    /// buffers included, unless `n` fits what is reserved already.
    /// - Throws: as `reserve(batch:)`.
    public func input(batch n: Int) throws -> UnsafeMutableBufferPointer<Float> {
        if n > capacity { try reserve(batch: n) }
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
    public func activation(after i: Int) -> UnsafePointer<Float> { UnsafePointer(activations[i + 1].pointer) }

    /// The gradient with respect to the input from the last backward pass
    /// with `inputGradient: true`, (N, C, H, W).
    public var inputGradient: UnsafePointer<Float> { UnsafePointer(gradients[0].pointer) }

    /// Runs every layer forward on the first `n` samples of `input`; `n`
    /// is at most the batch of the last `input(batch:)` or `reserve(batch:)`
    /// (the input was filled there).
    /// - Returns: the logits, (N, K).
    @discardableResult
    public func forward(batch n: Int) -> UnsafePointer<Float> {
        precondition(n <= capacity, "forward(batch: \(n)) beyond the reserved \(capacity); call input(batch:) first")
        for (i, layer) in layers.enumerated() {
            layer.forward(activations[i + 1].pointer, activations[i].pointer, batch: n)
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
    public func infer(batch n: Int, filling fill: (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void) throws
        -> UnsafePointer<Float> {
        if n > capacity { try reserve(batch: n, backward: false) }
        try runInference(batch: n, inputInPlace: false, filling: fill, timing: nil)
        return UnsafePointer(activations[layers.count].pointer)
    }

    /// `infer`'s loop; `timing(k, nanoseconds)` is told each step's time in
    /// each chunk (`timeInference`).
    /// With `inputInPlace` the input is the whole batch's, already written,
    /// and `fill` is not called; else `fill` writes each chunk's.
    func runInference(batch n: Int, inputInPlace: Bool, filling fill: (Range<Int>, UnsafeMutablePointer<Float>) throws -> Void,
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
        let workers = ParallelRegion.isInside ? 1 : Parallelism.threads
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
        for step in backwardPath.reversed() { backward(step, batch: n, inputGradient: inputGradient) }
    }

    // MARK: - Data parallelism

    /// Networks that share this one's parameter values but own their
    /// gradients, activations and caches: one per extra thread.
    private var replicaCache: [Network] = []

    /// Makes replicas until there are `count` networks in all, this one
    /// included (made once, kept), each with room for `batch` samples
    /// when one is given (else a part reserves its own on first use).
    /// - Throws: as `reserve(batch:)`, when a replica cannot be had.
    func makeReplicas(_ count: Int, batch: Int? = nil, backward: Bool = true) throws {
        while replicaCache.count < count - 1 {
            // The layers are this network's, so their shapes already fit.
            let copy = try Network(inputShape: inputShape, layers: layers.map { $0.replica() },
                                   sharingValuesWith: parameters)
            copy.fusesPooling = fusesPooling
            replicaCache.append(copy)
        }
        guard let batch else { return }
        for replica in replicaCache.prefix(count - 1) { try replica.reserve(batch: batch, backward: backward) }
    }

    /// Reserves this network and the replicas a data-parallel pass over a
    /// batch of `n` uses, each for its part: all of a pass's memory is
    /// had here, before the pass starts (and fails here, if it cannot be).
    /// - Parameters:
    ///   - n: the batch size.
    ///   - threads: at most this many parts.
    ///   - backward: as in `reserve(batch:backward:)`: false for a pass
    ///     that only runs forward (evaluation).
    /// - Throws: as `reserve(batch:)`.
    public func reserveDataParallel(batch n: Int, threads: Int = Parallelism.threads, backward: Bool = true) throws {
        let parts = parts(batch: n, threads: threads), largest = longestPart(batch: n, threads: threads)
        try reserve(batch: largest, backward: backward)
        if parts > 1 { try makeReplicas(parts, batch: largest, backward: backward) }
    }

    /// The number of parts `dataParallel` splits a batch of `n` into.
    public func parts(batch n: Int, threads: Int = Parallelism.threads) -> Int {
        max(1, min(threads, n))
    }

    /// The most samples a part of a batch of `n` gets (`partRange`'s longest):
    /// what each part's network and buffers are reserved for.
    public func longestPart(batch n: Int, threads: Int = Parallelism.threads) -> Int {
        let parts = parts(batch: n, threads: threads)
        return (n + parts - 1) / parts
    }

    /// The samples of part `part` when a batch of `n` is cut into `parts`.
    public func partRange(_ part: Int, of parts: Int, batch n: Int) -> Range<Int> {
        n * part / parts..<n * (part + 1) / parts
    }

    /// Splits a batch of `n` samples into `parts(batch: n)` contiguous parts
    /// and runs `body` on each concurrently, each part with its own network
    /// (this one, then `replicas`), so that every gemm, im2col and pooling
    /// loop runs single-threaded on one core with no hand-off between
    /// threads. The split depends only on `n` and the thread count, so
    /// results are the same for the same thread count.
    /// - Parameters:
    ///   - n: the batch size.
    ///   - threads: at most this many parts.
    ///   - body: (part index, its network, its range of the batch).
    /// - Throws: the first part's error, after every part has finished.
    public func dataParallel(batch n: Int, threads: Int = Parallelism.threads,
                             _ body: (Int, Network, Range<Int>) throws -> Void) throws {
        try dataParallel(batch: n, threads: threads, collective: false, body, thenEachPart: { _, _ in })
    }

    /// `dataParallel(batch:threads:_:)` followed, once every part's `body`
    /// has finished, by `thenEachPart(part, parts)` on every part in the same
    /// region: for work that needs all the parts' results and is itself
    /// split across the parts, like a training step's parameter update
    /// (`PartitionedOptimizer`). The parts wait for each other at a
    /// `PartBarrier`, with no second round of thread hand-offs.
    ///
    /// When Dispatch cannot run all the parts at once (more parts than free
    /// threads) or a part's `body` throws, no part runs `thenEachPart` and
    /// this returns false: the caller then does that work itself.
    /// - Parameters:
    ///   - n: the batch size.
    ///   - threads: at most this many parts.
    ///   - body: (part index, its network, its range of the batch).
    ///   - thenEachPart: (part index, number of parts).
    /// - Returns: whether every part ran `thenEachPart`.
    /// - Throws: the first part's error, after every part has finished.
    @discardableResult
    public func dataParallel(batch n: Int, threads: Int = Parallelism.threads,
                             _ body: (Int, Network, Range<Int>) throws -> Void,
                             thenEachPart: (Int, Int) -> Void) throws -> Bool {
        try dataParallel(batch: n, threads: threads, collective: true, body, thenEachPart: thenEachPart)
    }

    @discardableResult
    private func dataParallel(batch n: Int, threads: Int, collective: Bool,
                              _ body: (Int, Network, Range<Int>) throws -> Void,
                              thenEachPart: (Int, Int) -> Void) throws -> Bool {
        let parts = parts(batch: n, threads: threads)
        if parts == 1 {
            try body(0, self, 0..<n)
            if collective { thenEachPart(0, 1) }
            return collective
        }
        try makeReplicas(parts)
        if partErrors.count < parts { partErrors = [LeNetError?](repeating: nil, count: parts) }
        let barrier = barrier
        barrier.reset()
        partErrors.withUnsafeMutableBufferPointer { errors in
            parallelRegion(parts) { part in
                barrier.started()
                let range = partRange(part, of: parts, batch: n)
                do {
                    try body(part, part == 0 ? self : replicaCache[part - 1], range)
                    errors[part] = nil
                } catch let error as LeNetError {
                    errors[part] = error
                } catch {
                    errors[part] = LeNetError("\(error)")
                }
                guard collective, barrier.arrive(parties: parts) else { return }
                // Every part sees every part's error here, so all skip together.
                guard !errors[0..<parts].contains(where: { $0 != nil }) else { return }
                thenEachPart(part, parts)
            }
        }
        if let error = partErrors.prefix(parts).compactMap({ $0 }).first { throw error }
        return !collective || barrier.passed
    }

    private var partErrors: [LeNetError?] = []
    private let barrier = PartBarrier()

    /// Adds the gradients of the first `parts - 1` replicas into this
    /// network's, in part order (after a `dataParallel` backward pass).
    public func gatherGradients(parts: Int) {
        guard parts > 1 else { return }
        let count = parameters.gradients.count, block = 16_384
        parallelFor((count + block - 1) / block) { blocks in
            gatherGradients(parts: parts, range: blocks.lowerBound * block..<min(blocks.upperBound * block, count))
        }
    }

    /// `gatherGradients(parts:)` for the parameters in `range` only, on the
    /// calling thread: an optimizer's update calls it block by block, so
    /// the sum is made while the block is in cache.
    /// - Parameters:
    ///   - parts: the parts of the last `dataParallel` pass.
    ///   - range: indices into the parameter store.
    public func gatherGradients(parts: Int, range: Range<Int>) {
        guard parts > 1 else { return }
        let g = parameters.gradients
        for other in replicaCache.prefix(parts - 1) {
            let o = other.parameters.gradients
            for i in range { g[i] += o[i] }
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
        _ = try input(batch: n).update(fromContentsOf: images)
        let logits = infer(batch: n)
        return Array(UnsafeBufferPointer(start: logits, count: n * outputShape.count))
    }
}

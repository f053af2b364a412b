/// What a layer declares about one of its parameter tensors.
public struct ParameterSpec: Sendable {
    /// The name inside the layer: `weight`, `bias`, `coefficient`.
    var name: String
    /// PyTorch's layout, e.g. (OC, C, KH, KW) or (OUT, IN).
    var shape: [Int]
    /// PyTorch's default initialization: uniform in ±`initBound`.
    var initBound: Float
    /// A constant initialization instead (BatchNorm's weight 1, bias 0, its
    /// running variance 1); it draws nothing from the generator.
    var initialValue: Float?

    /// - Parameters:
    ///   - name: the name inside the layer, e.g. `weight`.
    ///   - shape: PyTorch's layout of the tensor.
    ///   - initBound: the bound of its default uniform initialization.
    public init(name: String, shape: [Int], initBound: Float) {
        self.name = name
        self.shape = shape
        self.initBound = initBound
    }

    /// A tensor that starts at `value` everywhere.
    public init(name: String, shape: [Int], initialValue value: Float) {
        self.name = name
        self.shape = shape
        initBound = 0
        initialValue = value
    }

    /// The number of values: the product of `shape`.
    var count: Int { shape.reduce(1, *) }
}

/// All parameters of a network, their gradients, in two contiguous buffers
/// with named views into them.
///
/// The optimizer is one loop over `values` and `gradients`, a checkpoint is
/// one pass over `entries`, and zeroing gradients is one fill.
public final class ParameterStore: @unchecked Sendable {
    /// One named tensor inside the store.
    struct Entry: Sendable {
        /// The full name, PyTorch's state_dict name: `conv1.weight`.
        var name: String
        /// PyTorch's layout, e.g. [16, 3, 5, 5].
        var shape: [Int]
        /// Where the tensor starts in `values` and `gradients`.
        var offset: Int
        /// The number of values.
        var count: Int
        /// The bound of its default uniform initialization.
        var initBound: Float
        /// Its constant initial value instead, if any.
        var initialValue: Float?

        init(name: String, shape: [Int], offset: Int, count: Int, initBound: Float, initialValue: Float? = nil) {
            self.name = name
            self.shape = shape
            self.offset = offset
            self.count = count
            self.initBound = initBound
            self.initialValue = initialValue
        }
    }

    /// Every tensor, in the order the layers declared them (state_dict order).
    let entries: [Entry]
    /// The total number of parameters.
    public let count: Int
    private let valueStorage: FloatBuffer  // (count)
    private var gradientStorage: FloatBuffer  // (count), or empty until `reserveGradients` (replicas)
    private let indexByName: [String: Int]

    /// - Parameters:
    ///   - entries: the tensors, in order.
    ///   - other: a store whose values this one shares (a replica's).
    ///   - gradients: whether to allocate the gradients now; a replica that
    ///     only runs forward never does (`reserveGradients()` later).
    init(entries: [Entry], sharingValuesWith other: ParameterStore? = nil, gradients: Bool = true) throws {
        self.entries = entries
        let count = entries.reduce(0) { $0 + $1.count }
        self.count = count
        valueStorage = try other?.valueStorage ?? FloatBuffer(count: count, name: "parameters (\(count))")
        gradientStorage = gradients ? try FloatBuffer(count: count, name: "parameter gradients (\(count))") : FloatBuffer()
        var index: [String: Int] = [:]
        for (i, e) in entries.enumerated() { index[e.name] = i }
        indexByName = index
    }

    /// Every parameter, in `entries` order.
    var values: UnsafeMutableBufferPointer<Float> { valueStorage.buffer }
    /// The gradient of the loss with respect to each parameter; backward adds into it.
    var gradients: UnsafeMutableBufferPointer<Float> { gradientStorage.buffer }

    /// The entry named `name`, if any.
    subscript(name: String) -> Entry? {
        indexByName[name].map { entries[$0] }
    }

    /// Sets every gradient to zero (before each backward pass).
    public func zeroGradients() { gradientStorage.fill(0) }

    /// The tensors' names, in PyTorch's `state_dict()` order (`conv1.weight`, `conv1.bias`, …).
    public var names: [String] { entries.map(\.name) }

    /// A copy of one tensor's values.
    public func values(of name: String) -> [Float]? {
        guard let e = self[name] else { return nil }
        return Array(values[e.offset..<e.offset + e.count])
    }

    /// A copy of one tensor's gradient.
    func gradient(of name: String) -> [Float]? {
        guard let e = self[name] else { return nil }
        return Array(gradients[e.offset..<e.offset + e.count])
    }

    /// Overwrites one tensor's values.
    /// - Parameters:
    ///   - newValues: `count` values in the tensor's layout.
    ///   - name: the tensor's full name, e.g. `conv1.weight`.
    /// - Throws: `LeNetError` when the name is unknown or the count is wrong.
    public func setValues(_ newValues: [Float], of name: String) throws {
        guard let e = self[name] else {
            throw LeNetError("no parameter named '\(name)'")
        }
        guard newValues.count == e.count else {
            throw LeNetError("expected \(e.count) values \(e.shape), got \(newValues.count)", subject: name)
        }
        for i in 0..<e.count { valueStorage.pointer[e.offset + i] = newValues[i] }
    }

    /// Fills every tensor uniformly in ±initBound, PyTorch's default for
    /// convolution and linear layers (bound 1/√fan_in for weight and bias).
    /// A tensor with an `initialValue` is filled with it and draws nothing.
    func initialize(using generator: inout SeededGenerator) {
        initialize(using: &generator, scheme: .pytorch)
    }

    /// `initialize(using:)` with each tensor's bound as `scheme` gives it
    /// (`WeightInitialization.bound(_:)`); the same draws either way.
    func initialize(using generator: inout SeededGenerator, scheme: WeightInitialization) {
        for e in entries {
            if let value = e.initialValue {
                (valueStorage.pointer + e.offset).update(repeating: value, count: e.count)
                continue
            }
            let bound = scheme.bound(e.initBound)
            for i in 0..<e.count {
                valueStorage.pointer[e.offset + i] = generator.uniform(-bound, bound)
            }
        }
    }

    /// Whether the gradients are allocated (always, but in a forward-only replica).
    var hasGradients: Bool { gradientStorage.count == count }

    /// Allocates the gradients of a store made without them.
    /// - Returns: whether they were new (the layers must be bound again).
    func reserveGradients() throws -> Bool {
        guard !hasGradients else { return false }
        gradientStorage = try FloatBuffer(count: count, name: "parameter gradients (\(count))")
        return true
    }

    func valuePointer(_ e: Entry) -> UnsafeMutablePointer<Float> { valueStorage.pointer + e.offset }
    func gradientPointer(_ e: Entry) -> UnsafeMutablePointer<Float> { gradientStorage.pointer + e.offset }
}

/// How a new network's weights are drawn: uniformly in ±B about 0, B from
/// F, the fan-in of the unit the weight (or bias) feeds.
public enum WeightInitialization: String, Sendable, CaseIterable {
    /// PyTorch's default for convolutions and linear layers: B = 1/√F.
    case pytorch
    /// LeCun et al. 1998 (appendix A): B = 2.4/F, which with the scaled
    /// tanh puts the units' sums mostly in its linear range.
    case lecun

    /// The bound for a tensor whose PyTorch bound is `pytorchBound` = 1/√F.
    func bound(_ pytorchBound: Float) -> Float {
        switch self {
        case .pytorch: return pytorchBound
        case .lecun: return 2.4 * pytorchBound * pytorchBound
        }
    }
}

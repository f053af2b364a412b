/// The shape of one sample as it flows between layers: (C, H, W).
/// A fully connected layer sees a sample as a flat vector of `count` values
/// in C·H·W order, PyTorch's flatten order, so flattening costs nothing.
public struct FeatureShape: Hashable, Sendable, CustomStringConvertible {
    /// Channels (C).
    public var channels: Int
    /// Rows (H).
    public var height: Int
    /// Columns (W).
    public var width: Int

    /// A (C, H, W) shape.
    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// A flat vector of `features` values, shaped (features, 1, 1).
    public init(features: Int) {
        self.init(channels: features, height: 1, width: 1)
    }

    /// C·H·W.
    public var count: Int { channels * height * width }

    /// "16×28×28", or "120" for a flat vector.
    public var description: String {
        height == 1 && width == 1 ? "\(channels)" : "\(channels)×\(height)×\(width)"
    }
}

/// A zero-filled, fixed-size Float buffer owned by a layer or a network:
/// activations, caches and gradients are allocated once and reused every step.
public final class FloatBuffer: @unchecked Sendable {
    /// The start of the storage; valid while the buffer lives.
    public let pointer: UnsafeMutablePointer<Float>
    /// The number of Floats.
    public let count: Int

    /// `count` Floats, all 0.
    /// - Parameter count: the number of Floats (0 allocates one, unused).
    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    /// The storage as a buffer pointer.
    public var buffer: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// A copy of the contents.
    public var array: [Float] { Array(buffer) }

    /// Sets every element to `value`.
    public func fill(_ value: Float) {
        pointer.update(repeating: value, count: count)
    }
}

/// A zero-filled, fixed-size buffer of indices (pooling argmax).
final class IndexBuffer {
    let pointer: UnsafeMutablePointer<Int32>
    let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }
}

/// A buffer that holds `perSample` values for each sample of a batch and
/// grows (reallocates) only when a larger batch is asked for.
struct BatchBuffer {
    private(set) var storage: FloatBuffer
    let perSample: Int

    init(perSample: Int) {
        self.perSample = perSample
        storage = FloatBuffer(count: 0)
    }

    mutating func reserve(batch n: Int) {
        if storage.count < n * perSample { storage = FloatBuffer(count: n * perSample) }
    }

    var pointer: UnsafeMutablePointer<Float> { storage.pointer }
}

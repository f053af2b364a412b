import Foundation
import Synchronization

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

/// Where every LeNetKit buffer (activations, gradients, scratch, parameter
/// and optimizer storage) is allocated: a failed allocation becomes a thrown
/// `LeNetError` naming the buffer and its size, never an abort, so a caller
/// that asked for too much keeps its process and its work.
///
/// Swift's own `allocate(capacity:)` traps when malloc fails; this asks
/// malloc directly (aligned to 64 bytes, a cache line and an AVX-512 vector)
/// and checks the size's arithmetic first.
enum Memory {
    /// Bytes for `count` values of `T`, or nil when that overflows.
    static func bytes<T>(_: T.Type, count: Int) -> Int? {
        let (bytes, overflow) = max(count, 0).multipliedReportingOverflow(by: MemoryLayout<T>.stride)
        return overflow ? nil : bytes
    }

    /// `count` zero-filled values of `T` (at least one slot, so the pointer
    /// is always valid).
    /// - Parameter name: what the buffer is, for the error (`conv1 output, 36 samples`).
    /// - Throws: `LeNetError` when the size overflows or malloc fails, or
    ///   when a test's `AllocationProbe` says this allocation fails.
    static func allocate<T>(_: T.Type, count: Int, for name: @autoclosure () -> String) throws -> UnsafeMutablePointer<T> {
        guard let bytes = bytes(T.self, count: max(count, 1)) else {
            throw LeNetError("cannot allocate \(count) values for \(name()): the size overflows", subject: "memory")
        }
        if let probe = AllocationProbe.current, probe.record(bytes: bytes) {
            throw LeNetError("cannot allocate \(ByteCount(bytes)) for \(name()) (fault injected)", subject: "memory")
        }
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            throw LeNetError("cannot allocate \(ByteCount(bytes)) for \(name())", subject: "memory")
        }
        memset(raw, 0, bytes)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    static func free<T>(_ pointer: UnsafeMutablePointer<T>) {
        Foundation.free(pointer)
    }
}

/// Counts the allocations made through `Memory` and their bytes, and can
/// make the k-th one fail: for tests of the memory estimates and of what
/// every allocation site does when memory runs out. Bound per task with
/// `AllocationProbe.$current.withValue(…)`: allocations on other threads
/// (Dispatch workers) do not see it, and nothing is process-wide.
final class AllocationProbe: Sendable {
    @TaskLocal static var current: AllocationProbe?

    /// The index (from 0) of the allocation that fails, if any.
    let failing: Int?
    private let counts = Mutex((allocations: 0, bytes: 0))

    init(failing: Int? = nil) { self.failing = failing }

    /// Allocations asked for so far (the failed one included).
    var allocations: Int { counts.withLock { $0.allocations } }
    /// Bytes of the allocations that were made.
    var bytes: Int { counts.withLock { $0.bytes } }

    /// Counts one allocation of `bytes`; true when it is the one that fails.
    func record(bytes: Int) -> Bool {
        counts.withLock { c in
            let fails = c.allocations == failing
            c.allocations += 1
            if !fails { c.bytes += bytes }
            return fails
        }
    }
}

/// A byte count as people read it: "512 B", "12.3 KB", "2.51 GB" (powers of 1000).
struct ByteCount: CustomStringConvertible, Sendable, Hashable {
    /// The number of bytes.
    var bytes: Int
    /// - Parameter bytes: the number of bytes.
    init(_ bytes: Int) { self.bytes = bytes }

    var description: String {
        let b = Double(bytes)
        if bytes < 1000 { return "\(bytes) B" }
        if b < 1e6 { return String(format: "%.1f KB", b / 1e3) }
        if b < 1e9 { return String(format: "%.1f MB", b / 1e6) }
        if b < 1e12 { return String(format: "%.2f GB", b / 1e9) }
        return String(format: "%.2f TB", b / 1e12)
    }
}

/// A zero-filled, fixed-size buffer owned by a layer or a network:
/// activations, caches, gradients, labels are allocated once and reused
/// every step.
final class ZeroFilledBuffer<Element: BitwiseCopyable>: @unchecked Sendable {
    /// The start of the storage; valid while the buffer lives.
    let pointer: UnsafeMutablePointer<Element>
    /// The number of elements.
    let count: Int
    /// Whether `pointer` came from Swift's allocator (`init()`), not `Memory`.
    private let isPlaceholder: Bool

    /// `count` elements, all bits 0.
    /// - Parameters:
    ///   - count: the number of elements (0 allocates one, unused).
    ///   - name: what the buffer holds, for the error when it cannot be had.
    /// - Throws: `LeNetError` naming the buffer and its size when the
    ///   memory cannot be allocated.
    init(count: Int, name: @autoclosure () -> String) throws {
        pointer = try Memory.allocate(Element.self, count: count, for: name())
        self.count = max(count, 0)
        isPlaceholder = false
    }

    /// No elements: a placeholder until a layer knows its shapes. It holds
    /// one unused element from Swift's allocator, the only storage not made
    /// through `Memory` (a few bytes, made when a layer is constructed).
    init() {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<Element>.stride,
                                                   alignment: MemoryLayout<Element>.alignment)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<Element>.stride)
        pointer = raw.bindMemory(to: Element.self, capacity: 1)
        count = 0
        isPlaceholder = true
    }

    deinit {
        if isPlaceholder { UnsafeMutableRawPointer(pointer).deallocate() } else { Memory.free(pointer) }
    }

    /// The storage as a buffer pointer.
    var buffer: UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// A copy of the contents.
    var array: [Element] { Array(buffer) }

    /// Sets every element to `value`.
    func fill(_ value: Element) {
        pointer.update(repeating: value, count: count)
    }
}

/// Floats: activations, gradients, scratch, parameters.
typealias FloatBuffer = ZeroFilledBuffer<Float>

/// Indices: labels, predictions, pooling argmax.
typealias IndexBuffer = ZeroFilledBuffer<Int32>

/// A buffer that holds `perSample` values for each sample of a batch and
/// grows (reallocates) only when a larger batch is asked for.
struct BatchBuffer {
    private(set) var storage = FloatBuffer()
    let perSample: Int
    /// What it holds, for errors: `conv1 output`.
    let name: String

    init(perSample: Int, name: String) {
        self.perSample = perSample
        self.name = name
    }

    /// Bytes `reserve(batch: n)` holds.
    static func bytes(perSample: Int, batch n: Int) -> Int { 4 * max(perSample * n, 1) }

    mutating func reserve(batch n: Int) throws {
        let (count, overflow) = n.multipliedReportingOverflow(by: perSample)
        guard !overflow else { throw LeNetError("cannot hold \(n) samples of \(name): the size overflows", subject: "memory") }
        if storage.count < count { storage = try FloatBuffer(count: count, name: "\(name), \(n) samples") }
    }

    var pointer: UnsafeMutablePointer<Float> { storage.pointer }
}

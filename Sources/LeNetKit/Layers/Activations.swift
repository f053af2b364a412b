import Foundation  // libm (expf, logf, …) on every platform
/// max(0, x), PyTorch's `nn.ReLU`. The gradient at 0 is 0, as in PyTorch.
public final class ReLU: Layer {
    public let name: String
    /// - Parameter name: the layer's name in summaries (ReLU has no parameters).
    public init(_ name: String = "relu") { self.name = name }
    public var kind: String { "ReLU" }
    private var count = 0

    public func replica() -> any Layer { ReLU(name) }

    public func outputShape(for input: FeatureShape) throws -> FeatureShape {
        count = input.count
        return input
    }

    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        let size = count
        parallelFor(n, minimum: 8) { samples in
            for i in samples.lowerBound * size..<samples.upperBound * size { y[i] = max(x[i], 0) }
        }
    }

    public func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let dx else { return }
        let size = count
        parallelFor(n, minimum: 8) { samples in
            reluBackward(dx + samples.lowerBound * size, dy + samples.lowerBound * size,
                         y + samples.lowerBound * size, count: samples.count * size)
        }
    }
}

/// dx = dy where y > 0, else 0; written with SIMD selects, since a branch
/// on the sign of y mispredicts half the time (it was 15× slower).
@inline(__always)
func reluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
    var i = 0
    let zero = SIMD8<Float>(repeating: 0)
    while i + 8 <= count {
        let yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
        let gv = UnsafeRawPointer(dy + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(dx + i).storeBytes(of: zero.replacing(with: gv, where: yv .> zero), as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        dx[i] = y[i] > 0 ? dy[i] : 0
        i += 1
    }
}

/// A·tanh(S·x): `nn.Tanh` with A = S = 1, or the scaled tanh of LeCun et al.
/// 1998 with A = 1.7159, S = 2/3 (`Tanh.lecun`).
///
/// ```
/// dy/dx = A·S·(1 − (y/A)²)
/// ```
public final class Tanh: Layer {
    public let name: String
    /// A and S in A·tanh(S·x).
    public let amplitude: Float, slope: Float
    private var count = 0

    /// - Parameters:
    ///   - name: the layer's name in summaries (Tanh has no parameters).
    ///   - amplitude: A in A·tanh(S·x).
    ///   - slope: S in A·tanh(S·x).
    public init(_ name: String = "tanh", amplitude: Float = 1, slope: Float = 1) {
        self.name = name
        self.amplitude = amplitude
        self.slope = slope
    }

    /// The paper's 1.7159·tanh(2x/3).
    public static func lecun(_ name: String = "tanh") -> Tanh {
        Tanh(name, amplitude: 1.7159, slope: 2.0 / 3.0)
    }

    public var kind: String { amplitude == 1 && slope == 1 ? "Tanh" : "Tanh \(amplitude)·tanh(\(slope)x)" }

    public func replica() -> any Layer { Tanh(name, amplitude: amplitude, slope: slope) }

    public func outputShape(for input: FeatureShape) throws -> FeatureShape {
        count = input.count
        return input
    }

    /// A·tanh(S·x) by `scaledTanh` (Kernels/Tanh.swift: within 2.3 ulp of
    /// tanh in double, the same bits with any libm), split across threads by sample.
    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        let size = count, amplitude = amplitude, slope = slope
        parallelFor(n, minimum: 8) { samples in
            let start = samples.lowerBound * size
            scaledTanh(y + start, x + start, count: samples.count * size, amplitude: amplitude, slope: slope)
        }
    }

    public func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let dx else { return }
        let size = count, scale = amplitude * slope, inv = 1 / amplitude
        parallelFor(n, minimum: 8) { samples in
            let start = samples.lowerBound * size
            tanhBackward(dx + start, dy + start, y + start, count: samples.count * size, scale: scale, inverseAmplitude: inv)
        }
    }
}

/// dx = dy·(A·S)·(1 − (y/A)²), eight at a time; the tail runs the same
/// operations one by one (no FMA on either path, so the bits agree).
@inline(__always)
func tanhBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ y: UnsafePointer<Float>,
                  count: Int, scale: Float, inverseAmplitude inv: Float) {
    var i = 0
    while i + 8 <= count {
        let t = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self) * inv
        let g = UnsafeRawPointer(dy + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(dx + i).storeBytes(of: g * scale * (1 - t * t), as: SIMD8<Float>.self)
        i += 8
    }
    while i < count {
        let t = y[i] * inv
        dx[i] = dy[i] * scale * (1 - t * t)
        i += 1
    }
}


import Foundation  // libm (expf, logf, …) on every platform

/// PyTorch's `ReLU`: a name and nothing else.
public struct ReLUConfiguration: LayerConfiguration, KeyedLayerConfiguration, Equatable {
    public var name: String
    /// A ReLU named `name`.
    public init(name: String) { self.name = name }
    enum CodingKeys: String, CodingKey, CaseIterable { case name }
    init(decoding decoder: any Decoder) throws {
        self.init(name: try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .name))
    }
    public var type: String { "ReLU" }
    func validate() throws {}
    public func makeLayer() throws -> any Layer {
        try validate()
        return ReLU(name)
    }
}

/// max(0, x), PyTorch's `nn.ReLU`. The gradient at 0 is 0, as in PyTorch.
final class ReLU: BuiltInLayer {
    let name: String
    /// - Parameter name: the layer's name in summaries (ReLU has no parameters).
    init(_ name: String = "relu") { self.name = name }
    var kind: String { "ReLU" }

    /// `piecewiseLinear` in the curvature pass (SDLM).
    var curvatureRule: CurvatureRule { .piecewiseLinear }

    typealias Configuration = ReLUConfiguration

    var configuration: any LayerConfiguration { Configuration(name: name) }

    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        graph.node("Relu", [input], output: name)
    }
    private var count = 0

    func replica() -> any Layer { ReLU(name) }

    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        count = input.count
        return input
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        let size = count
        parallelFor(n, minimum: 8) { samples in
            for i in samples.lowerBound * size..<samples.upperBound * size { y[i] = max(x[i], 0) }
        }
    }

    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
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

/// PyTorch's `Tanh` (amplitude and slope 1), or LeNetKit's `ScaledTanh`
/// A·tanh(S·x), whose `amplitude` and `slope` default to the paper's
/// 1.7159 and 2/3.
public struct TanhConfiguration: LayerConfiguration, KeyedLayerConfiguration, Equatable {
    public var name: String
    /// A and S in A·tanh(S·x): both 1 for PyTorch's `Tanh`.
    public var amplitude: Float, slope: Float

    /// A·tanh(S·x) named `name`; the defaults make PyTorch's `Tanh`.
    public init(name: String, amplitude: Float = 1, slope: Float = 1) {
        self.name = name
        self.amplitude = amplitude
        self.slope = slope
    }

    /// The paper's 1.7159·tanh(2x/3).
    static func lecun(_ name: String) -> TanhConfiguration { TanhConfiguration(name: name, amplitude: 1.7159, slope: 2.0 / 3.0) }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, amplitude, slope }

    init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let lecun = Self.lecun("")
        let scaled = decoder.layerType == "ScaledTanh"
        if !scaled, let key = [CodingKeys.amplitude, .slope].first(where: c.contains) {
            throw LayerFieldError(key.stringValue, "a Tanh has none; use ScaledTanh for A·tanh(S·x)")
        }
        self.init(name: try c.decode(String.self, forKey: .name),
                  amplitude: try c.floatIfPresent(.amplitude) ?? (scaled ? lecun.amplitude : 1),
                  slope: try c.floatIfPresent(.slope) ?? (scaled ? lecun.slope : 1))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        if type == "ScaledTanh" {
            try c.encode(amplitude, forKey: .amplitude)
            try c.encode(slope, forKey: .slope)
        }
    }

    public var type: String { amplitude == 1 && slope == 1 ? "Tanh" : "ScaledTanh" }

    func validate() throws {
        guard amplitude.isFinite, amplitude != 0 else { throw LayerFieldError("amplitude", "must be a finite number other than 0, got \(amplitude)") }
        guard slope.isFinite, slope != 0 else { throw LayerFieldError("slope", "must be a finite number other than 0, got \(slope)") }
    }

    public func makeLayer() throws -> any Layer {
        try validate()
        return Tanh(name, amplitude: amplitude, slope: slope)
    }
}

/// A·tanh(S·x): `nn.Tanh` with A = S = 1, or the scaled tanh of LeCun et al.
/// 1998 with A = 1.7159, S = 2/3 (`Tanh.lecun`).
///
/// ```
/// dy/dx = A·S·(1 − (y/A)²)
/// ```
final class Tanh: BuiltInLayer {
    let name: String
    /// A and S in A·tanh(S·x).
    let amplitude: Float, slope: Float
    private var count = 0

    /// - Parameters:
    ///   - name: the layer's name in summaries (Tanh has no parameters).
    ///   - amplitude: A in A·tanh(S·x).
    ///   - slope: S in A·tanh(S·x).
    init(_ name: String = "tanh", amplitude: Float = 1, slope: Float = 1) {
        self.name = name
        self.amplitude = amplitude
        self.slope = slope
    }

    /// The paper's 1.7159·tanh(2x/3).
    static func lecun(_ name: String = "tanh") -> Tanh {
        Tanh(name, amplitude: 1.7159, slope: 2.0 / 3.0)
    }

    var kind: String { amplitude == 1 && slope == 1 ? "Tanh" : "Tanh \(amplitude)·tanh(\(slope)x)" }

    /// `pointwise` in the curvature pass (SDLM).
    var curvatureRule: CurvatureRule { .pointwise }

    typealias Configuration = TanhConfiguration

    var configuration: any LayerConfiguration { Configuration(name: name, amplitude: amplitude, slope: slope) }

    /// amplitude·tanh(slope·x) as Mul, Tanh, Mul (each Mul left out when its factor is 1).
    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        var x = input
        let final = graph.finalOutput
        graph.finalOutput = nil
        if slope != 1 {
            let s = graph.constant(name + ".slope", dims: [], values: [slope])
            x = graph.node("Mul", [x, s], output: name + ".scaled")
        }
        if amplitude == 1 { graph.finalOutput = final }
        x = graph.node("Tanh", [x], output: amplitude == 1 ? name : name + ".tanh")
        if amplitude != 1 {
            graph.finalOutput = final
            let a = graph.constant(name + ".amplitude", dims: [], values: [amplitude])
            x = graph.node("Mul", [x, a], output: name)
        }
        return x
    }

    func replica() -> any Layer { Tanh(name, amplitude: amplitude, slope: slope) }

    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        count = input.count
        return input
    }

    /// A·tanh(S·x) by `scaledTanh` (Kernels/Tanh.swift: within 2.3 ulp of
    /// tanh in double, the same bits with any libm), split across threads by sample.
    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        let size = count, amplitude = amplitude, slope = slope
        parallelFor(n, minimum: 8) { samples in
            let start = samples.lowerBound * size
            scaledTanh(y + start, x + start, count: samples.count * size, amplitude: amplitude, slope: slope)
        }
    }

    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let dx else { return }
        let size = count, scale = amplitude * slope, inv = 1 / amplitude
        parallelFor(n, minimum: 8) { samples in
            let start = samples.lowerBound * size
            tanhBackward(dx + start, dy + start, y + start, count: samples.count * size, scale: scale, inverseAmplitude: inv)
        }
    }
}

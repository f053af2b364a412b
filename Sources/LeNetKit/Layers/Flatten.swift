/// PyTorch's `Flatten` (from dimension 1): a name and nothing else.
public struct FlattenConfiguration: LayerConfiguration, KeyedLayerConfiguration, Equatable {
    public var name: String
    /// A Flatten named `name`.
    public init(name: String) { self.name = name }
    enum CodingKeys: String, CodingKey, CaseIterable { case name }
    init(decoding decoder: any Decoder) throws {
        self.init(name: try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .name))
    }
    public var type: String { "Flatten" }
    func validate() throws {}
    public func makeLayer() throws -> any Layer {
        try validate()
        return Flatten(name)
    }
}

/// PyTorch's `nn.Flatten()`: (C, H, W) → (C·H·W). A fully connected layer
/// already reads a sample flat, in the same order, so a description may
/// leave it out; written in, it copies (forward) and copies back (backward).
final class Flatten: BuiltInLayer {
    let name: String
    private var count = 0

    /// - Parameter name: the layer's name in summaries (it has no parameters).
    init(_ name: String = "flatten") { self.name = name }

    var kind: String { "Flatten" }

    /// `piecewiseLinear` in the curvature pass (SDLM).
    var curvatureRule: CurvatureRule { .piecewiseLinear }

    typealias Configuration = FlattenConfiguration

    var configuration: any LayerConfiguration { Configuration(name: name) }

    func replica() -> any Layer { Flatten(name) }

    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        count = input.count
        return FeatureShape(features: input.count)
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        y.update(from: x, count: n * count)
    }

    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        dx?.update(from: dy, count: n * count)
    }

    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        graph.flattened(input, for: name)
    }
}

/// PyTorch's `nn.Flatten()`: (C, H, W) → (C·H·W). A fully connected layer
/// already reads a sample flat, in the same order, so a description may
/// leave it out; written in, it copies (forward) and copies back (backward).
public final class Flatten: Layer {
    public let name: String
    private var count = 0

    /// - Parameter name: the layer's name in summaries (it has no parameters).
    public init(_ name: String = "flatten") { self.name = name }

    public var kind: String { "Flatten" }

    /// `piecewiseLinear` in the curvature pass (SDLM).
    public var curvatureRule: CurvatureRule { .piecewiseLinear }

    /// PyTorch's `Flatten` (from dimension 1): a name and nothing else.
    public struct Configuration: LayerConfiguration, Equatable {
        public var name: String
        public init(name: String) { self.name = name }
        public enum CodingKeys: String, CodingKey, CaseIterable { case name }
        public var type: String { "Flatten" }
        public func validate() throws {}
        public func makeLayer() -> any Layer { Flatten(name) }
    }

    public var configuration: any LayerConfiguration { Configuration(name: name) }

    public func replica() -> any Layer { Flatten(name) }

    public func outputShape(for input: FeatureShape) throws -> FeatureShape {
        count = input.count
        return FeatureShape(features: input.count)
    }

    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        y.update(from: x, count: n * count)
    }

    public func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        dx?.update(from: dy, count: n * count)
    }

    public func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        graph.flattened(input, for: name)
    }
}

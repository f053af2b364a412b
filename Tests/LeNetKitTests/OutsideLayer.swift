// A layer written as a user of LeNetKit writes one (docs/LAYERS.md). This
// file imports LeNetKit without @testable, so it compiles against the public
// API alone; NetworkDescriptionTests.testALayerFromOutsideTakesPart trains,
// saves, loads, exports and estimates it.
import LeNetKit

/// y = x + b[c] per channel: its own configuration, registered in a registry.
final class ChannelShift: Layer {
    let name: String
    let channels: Int
    private var bias: UnsafeMutablePointer<Float>?, biasGrad: UnsafeMutablePointer<Float>?  // (C)
    private var plane = 0  // H·W

    init(_ name: String, channels: Int) {
        self.name = name
        self.channels = channels
    }

    struct Configuration: LayerConfiguration, Decodable {
        var name: String
        var channels: Int
        enum CodingKeys: String, CodingKey, CaseIterable { case name, channels }
        var type: String { "ChannelShift" }
        func makeLayer() throws -> any Layer {
            guard channels >= 1 else { throw LayerFieldError("channels", "must be at least 1, got \(channels)") }
            return ChannelShift(name, channels: channels)
        }
    }

    var configuration: any LayerConfiguration { Configuration(name: name, channels: channels) }
    var kind: String { "ChannelShift" }
    var parameterSpecs: [ParameterSpec] { [ParameterSpec(name: "bias", shape: [channels], initBound: 0.5)] }
    func replica() -> any Layer { ChannelShift(name, channels: channels) }
    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        plane = input.height * input.width
        return input
    }
    func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        bias = parameters[0]
        biasGrad = gradients[0]
    }
    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let bias else { return }
        for s in 0..<n { for c in 0..<channels { for i in 0..<plane { y[(s * channels + c) * plane + i] = x[(s * channels + c) * plane + i] + bias[c] } } }
    }
    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                  _ y: UnsafePointer<Float>, batch n: Int) {
        guard let biasGrad else { return }
        for s in 0..<n { for c in 0..<channels { for i in 0..<plane { biasGrad[c] += dy[(s * channels + c) * plane + i] } } }
        dx?.update(from: dy, count: n * channels * plane)
    }
    /// Add, with the bias as a (1, C, 1, 1) initializer that broadcasts over the batch and the map.
    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        let b = try graph.parameter(name + ".bias", dims: [1, channels, 1, 1])
        return graph.node("Add", [input, b], output: name)
    }
}

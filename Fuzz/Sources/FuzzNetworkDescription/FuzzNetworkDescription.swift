// libFuzzer target: NetworkDescription(json:) must throw a LeNetError or
// return a description that round-trips through JSON, for any bytes; a
// small description must then build (or be refused with a LeNetError) and
// run forward, backward and through the inference path without trapping.
// Network(_:seed:) checks that the shapes chain and that the sizes fit in
// memory; the fuzzer feeds it the descriptions that pass the reader.
import Foundation
import LeNetKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNetworkDescription(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let json = data.map { Data(bytes: $0, count: size) } ?? Data()
    let description: NetworkDescription
    do {
        description = try NetworkDescription(json: json)
    } catch is LeNetError {
        return 0
    } catch {
        fuzzFailure("NetworkDescription(json:) threw \(type(of: error)), not a LeNetError: \(error)")
    }

    // Whatever reads is written back whole: encoding and reading again gives
    // the same text (json() sorts its keys, so equal descriptions are equal
    // bytes).
    let text = description.json()
    let again: NetworkDescription
    do {
        again = try NetworkDescription(json: Data(text.utf8))
    } catch {
        fuzzFailure("json() of a description that read does not read again (\(error)): \(text)")
    }
    guard again.json() == text, again.inputShape == description.inputShape, again.layers.count == description.layers.count else {
        fuzzFailure("a description changed through json(): \(text) became \(again.json())")
    }
    // The pretty form is the same description.
    guard let pretty = try? NetworkDescription(json: Data(description.json(pretty: true).utf8)), pretty.json() == text else {
        fuzzFailure("json(pretty: true) does not read back as the same description: \(text)")
    }

    // Building allocates the parameters (twice: values and gradients) and
    // draws them, so only descriptions that are cheap to build are built:
    // short inputs, a small input sample, few parameters by the layers' own
    // fields. (Everything larger is refused or built by the same code; the
    // memory checks are the unit tests'.) FeatureShape.count multiplies
    // unchecked, and a description that read may still hold sides of 2^24.
    guard size <= 4096, let inputCount = checkedCount(description.inputShape), inputCount <= 4096,
          description.layers.reduce(0.0, { $0 + parameterEstimate($1) }) <= 200_000 else { return 0 }

    let network: Network
    do {
        network = try Network(description, seed: 0)
    } catch is LeNetError {
        return 0
    } catch {
        fuzzFailure("Network(_:seed:) threw \(type(of: error)), not a LeNetError: \(error)")
    }
    guard network.outputShape.count >= 1, network.shapes.count == description.layers.count else {
        fuzzFailure("a network built with output shape \(network.outputShape) and \(network.shapes.count) shapes for \(description.layers.count) layers")
    }
    // The network's own description (what a checkpoint saves) is the one
    // it was built from.
    guard network.networkDescription.json() == text else {
        fuzzFailure("the built network's description differs from the one it was built from: \(text) became \(network.networkDescription.json())")
    }
    guard network.parameters.count <= 200_000 else {
        fuzzFailure("\(network.parameters.count) parameters, beyond the fields' own estimate")
    }

    // One forward and backward pass at batch 1, but only when every
    // activation is small and the pass is a few million multiply-adds: a
    // padded convolution can grow a small input into a large output, and
    // each pass's cost and scratch grow with the connections.
    var input = description.inputShape
    var connections = 0
    for (layer, output) in zip(network.layers, network.shapes) {
        guard let count = checkedCount(output), count <= 1 << 16 else { return 0 }
        connections += layer.connections(for: input)
        guard connections <= 4_000_000 else { return 0 }
        input = output
    }
    runPasses(network, inputCount: inputCount, text: text)
    return 0
}

/// Training-mode forward and backward, an evaluation-mode forward, and the
/// inference path (fused kernels where a rule takes the layers), on one
/// sample of zeros. The inference path must give the evaluation-mode
/// forward's logits, to rounding.
func runPasses(_ network: Network, inputCount: Int, text: String) {
    network.threads = 1  // one core: the fuzzer runs as one job
    do {
        let x = try network.input(batch: 1)
        guard x.count == inputCount else { fuzzFailure("input(batch: 1) holds \(x.count) values for \(inputCount)") }
        x.update(repeating: 0)
        network.forward(batch: 1)
        let k = network.outputShape.count
        let dy = try network.outputGradient(batch: 1)
        guard dy.count == k else { fuzzFailure("outputGradient(batch: 1) holds \(dy.count) values for \(k) outputs") }
        dy.update(repeating: 1 / Float(k))
        network.backward(batch: 1, inputGradient: true)

        // The evaluation-mode pass, layer by layer; the scale of its values
        // bounds the rounding the fused kernels may differ by.
        let logits = Array(UnsafeBufferPointer(start: network.forward(batch: 1, training: false), count: k))
        var scale: Float = 0
        for (i, shape) in network.shapes.enumerated() {
            for v in UnsafeBufferPointer(start: network.activation(after: i), count: shape.count) {
                scale = max(scale, abs(v))
            }
        }
        let predicted = try network.predict([Float](repeating: 0, count: inputCount))
        guard predicted.count == k else { fuzzFailure("predict gave \(predicted.count) logits for \(k) outputs") }
        // NaN and infinity (a ScaledTanh's amplitude may be 1e38) compare
        // as nothing.
        guard scale.isFinite else { return }
        let tolerance = 1e-2 * (1 + scale)
        for (a, b) in zip(logits, predicted) where a.isFinite && b.isFinite && abs(a - b) > tolerance {
            fuzzFailure("predict gave \(predicted) where forward(training: false) gave \(logits) (scale \(scale)): \(text)")
        }
    } catch is LeNetError {
        // Memory refused: allowed, though these sizes are small.
    } catch {
        fuzzFailure("a pass threw \(type(of: error)), not a LeNetError: \(error)")
    }
}

/// C·H·W, or nil when it overflows.
func checkedCount(_ shape: FeatureShape) -> Int? {
    var product = 1
    for d in [shape.channels, shape.height, shape.width] {
        guard d >= 0 else { return nil }
        let (p, overflow) = product.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        product = p
    }
    return product
}

/// The parameters (and buffers) a layer's fields ask for, in Double so that
/// no product of sizes up to 2^24 overflows.
func parameterEstimate(_ configuration: any LayerConfiguration) -> Double {
    switch configuration {
    case let c as Conv2D.Configuration:
        return Double(c.outChannels) * (Double(c.inChannels) * Double(c.kernelSize) * Double(c.kernelSize) + 1)
    case let c as Linear.Configuration:
        return Double(c.outFeatures) * (Double(c.inFeatures) + 1)
    case let c as Subsampling.Configuration:
        return 2 * Double(c.channels)
    case let c as BatchNorm2D.Configuration:
        return 4 * Double(c.numFeatures)
    default:
        return 0
    }
}

/// Reports a broken invariant as a crash, which libFuzzer saves as an input.
func fuzzFailure(_ message: String) -> Never {
    fatalError("fuzz invariant: \(message)")
}

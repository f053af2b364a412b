// ONNX export: a network as an ONNX model that ONNX Runtime, TensorRT,
// OpenVINO and the browser runtimes load.
//
// The graph takes what the PyTorch model's `forward` takes, the normalized
// (N, C, H, W) float tensor with N symbolic, and gives the logits (N, K), so
// a model exported from PyTorch and one exported here replace each other.
// Each layer writes its own nodes (`Layer.exportONNX(into:input:)`), in
// standard operators of one opset: Conv, MaxPool, Relu, Tanh, Mul, Gemm,
// Flatten, BatchNormalization, Identity.

/// Writes networks as ONNX models.
public enum ONNXExport {
    /// The operator set the graph declares (ONNX's default domain).
    @_spi(CLI) public static let opset = 13
    /// The IR version that goes with opset 13.
    static let irVersion = 7

    /// What a deployed model needs besides its graph, written to the
    /// model's `metadata_props`.
    public struct Metadata: Sendable {
        /// The model's name (`cifar-lenet`, `lenet5`): `model`.
        var model: String
        /// The input normalization, x = (byte / 255 − mean) / std per channel:
        /// `normalization_mean`, `normalization_std`.
        var normalization: Normalization
        /// The name of each output class, as a JSON array: `class_names`.
        var classNames: [String]

        /// - Parameters:
        ///   - model: the model's name (`cifar-lenet`, `lenet5`), written as `model`.
        ///   - normalization: the input normalization, x = (byte / 255 − mean) / std per
        ///     channel, written as `normalization_mean` and `normalization_std`.
        ///   - classNames: the name of each output class, written as `class_names`.
        public init(model: String, normalization: Normalization, classNames: [String]) {
            self.model = model
            self.normalization = normalization
            self.classNames = classNames
        }
    }

    /// The graph's rewrites of the layer order, declared as fusion rules
    /// (a pattern and the layers it writes, in their order).
    ///
    /// A max pool followed by a ReLU is written ReLU first: ReLU is monotone,
    /// so the maximum of the rectified values is the rectified maximum, and
    /// the logits are the same bit for bit. LeNetKit pools first (a quarter of
    /// the ReLU work); a runtime fuses a convolution with the Relu right after
    /// it (ONNX Runtime's Conv activation fusion), which it cannot across a
    /// MaxPool.
    /// A rule's step is the indices of the layers it covers, in the order written.
    static let orderRules: [FusionRule<[Int]>] = [
        FusionRule("max pool then ReLU, written ReLU then max pool", [.maxPool, .relu]) { [$0.start + 1, $0.start] },
    ]

    /// The network's layers in the order the graph writes them (`orderRules`).
    static func writingOrder(_ network: Network) -> [any Layer] {
        fuse(orderRules, description: network.networkDescription, shapes: network.shapes,
             parameters: network.parameters, buffers: network.buffers) { [$0] }.flatMap { $0 }.map { network.layers[$0] }
    }

    /// The serialized ModelProto.
    /// - Throws: `LeNetError` naming the first layer that has no ONNX form,
    ///   or whose input it cannot take (a convolution after a flatten).
    static func encode(_ network: Network, metadata: Metadata) throws -> [UInt8] {
        var graph = ONNXGraph(network: network)
        var value = "input"
        let written = writingOrder(network)
        for (i, layer) in written.enumerated() {
            if i == written.count - 1 { graph.finalOutput = "logits" }
            value = try layer.exportONNX(into: &graph, input: value)
        }
        if value != "logits" { value = graph.node("Identity", [value], output: "logits") }

        var model = ProtobufMessage()
        model.int(1, irVersion)
        model.string(2, "LeNetKit")
        model.string(3, LeNetKitVersion.string)
        model.message(8) { opset in
            opset.string(1, "")
            opset.int(2, ONNXExport.opset)
        }
        model.message(7) { g in
            for node in graph.nodes { g.message(1, node) }
            g.string(2, metadata.model)
            for tensor in graph.initializers { g.message(5, tensor) }
            let s = network.inputShape
            g.message(11, valueInfo("input", ["N", s.channels, s.height, s.width]))
            g.message(12, valueInfo("logits", ["N", network.outputShape.count]))
        }
        let props: [(String, String)] = [
            ("model", metadata.model),
            ("normalization_mean", Checkpoint.formatFloats(metadata.normalization.mean)),
            ("normalization_std", Checkpoint.formatFloats(metadata.normalization.std)),
            ("class_names", Checkpoint.encodeClassNames(metadata.classNames)),
            ("lenetkit_version", LeNetKitVersion.string),
        ]
        for (key, text) in props {
            model.message(14) { entry in
                entry.string(1, key)
                entry.string(2, text)
            }
        }
        return model.bytes
    }

    /// `encode` written to `path` atomically: a failed export leaves no
    /// half-written model and keeps the file that was there.
    /// - Throws: `LeNetError` naming the layer (see `encode`) or the file.
    public static func write(_ network: Network, metadata: Metadata, to path: String) throws {
        try FileIO.writeAtomically(try encode(network, metadata: metadata), to: path)
    }

    /// A float tensor's ValueInfoProto; a String dimension is symbolic.
    private static func valueInfo(_ name: String, _ dims: [Any]) -> ProtobufMessage {
        var info = ProtobufMessage()
        info.string(1, name)
        info.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, 1)  // FLOAT
                tensor.message(2) { shape in
                    for d in dims {
                        shape.message(1) { dim in
                            if let n = d as? Int { dim.int(1, n) } else { dim.string(2, "\(d)") }
                        }
                    }
                }
            }
        }
        return info
    }
}

/// The graph being exported: nodes and initializers in order, value names
/// kept unique, and the rank of the value flowing between layers. Each
/// layer appends its own nodes (`Layer.exportONNX(into:input:)`).
public struct ONNXGraph {
    /// The network being exported (its parameters and buffers).
    let network: Network
    private(set) var nodes: [ProtobufMessage] = []
    private(set) var initializers: [ProtobufMessage] = []
    /// 4 for (N, C, H, W), 2 once flattened for a fully connected layer.
    var rank = 4
    /// The name the next node's output takes (the graph's output), if set.
    var finalOutput: String?
    private var names: Set<String> = ["input", "logits"]

    init(network: Network) { self.network = network }

    /// A node attribute.
    public enum Attribute {
        case int(String, Int)
        case ints(String, [Int])
        case float(String, Float)
    }

    private mutating func unique(_ base: String) -> String {
        var name = base, k = 1
        while names.contains(name) {
            k += 1
            name = "\(base)_\(k)"
        }
        names.insert(name)
        return name
    }

    /// A float initializer.
    /// - Parameters:
    ///   - base: the name it is given, made unique in the graph.
    ///   - dims: its shape; empty for a scalar.
    ///   - values: its values, row-major.
    /// - Returns: its name in the graph.
    public mutating func constant(_ base: String, dims: [Int], values: [Float]) -> String {
        var raw = [UInt8]()
        raw.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        return initializer(base, dims: dims, dataType: 1, raw: raw)  // FLOAT
    }

    /// An int64 initializer (a shape or axes, which opset 13 takes as inputs).
    mutating func constant(_ base: String, dims: [Int], integers values: [Int]) -> String {
        var raw = [UInt8]()
        raw.reserveCapacity(values.count * 8)
        for v in values { withUnsafeBytes(of: Int64(v).littleEndian) { raw.append(contentsOf: $0) } }
        return initializer(base, dims: dims, dataType: 7, raw: raw)  // INT64
    }

    /// A TensorProto of `dataType` (ONNX's code) holding `raw`, little-endian, under a name made unique from `base`.
    private mutating func initializer(_ base: String, dims: [Int], dataType: Int, raw: [UInt8]) -> String {
        let name = unique(base)
        var tensor = ProtobufMessage()
        tensor.ints(1, dims)
        tensor.int(2, dataType)
        tensor.string(8, name)
        tensor.data(9, raw)
        initializers.append(tensor)
        return name
    }

    /// A parameter or buffer of the network (`layer.weight`,
    /// `layer.running_mean`), as an initializer of the same name.
    public mutating func parameter(_ name: String, dims: [Int]) throws -> String {
        guard let values = network.parameters.values(of: name) ?? network.buffers.values(of: name),
              values.count == dims.reduce(1, *) else {
            throw LeNetError("the network has no parameter of shape \(dims)", subject: name)
        }
        return constant(name, dims: dims, values: values)
    }

    /// A node; its output is named after `output` (or `finalOutput`).
    /// - Returns: the output's name.
    @discardableResult
    public mutating func node(_ op: String, _ inputs: [String], output: String, attributes: [Attribute] = []) -> String {
        let out: String
        if let final = finalOutput, op != "Flatten" {
            out = final
            finalOutput = nil
        } else {
            out = unique(output)
        }
        var node = ProtobufMessage()
        for i in inputs { node.string(1, i) }
        node.string(2, out)
        node.string(3, out)
        node.string(4, op)
        for a in attributes {
            node.message(5) { attribute in
                switch a {
                case let .int(name, value):
                    attribute.string(1, name)
                    attribute.int(3, value)
                    attribute.int(20, 2)  // INT
                case let .ints(name, values):
                    attribute.string(1, name)
                    attribute.ints(8, values)
                    attribute.int(20, 7)  // INTS
                case let .float(name, value):
                    attribute.string(1, name)
                    attribute.float(2, value)
                    attribute.int(20, 1)  // FLOAT
                }
            }
        }
        nodes.append(node)
        return out
    }

    /// The input as (N, features): a Flatten after a convolution or pool.
    mutating func flattened(_ input: String, for layer: String) -> String {
        guard rank == 4 else { return input }
        rank = 2
        return node("Flatten", [input], output: layer + ".flatten", attributes: [.int("axis", 1)])
    }

    /// A Conv over the layer's own `weight` (OC, C, KH, KW) and `bias` (OC).
    mutating func convolution(_ layer: String, _ input: String, weight dims: [Int], stride: Int, padding: Int) throws -> String {
        try requireImage(layer)
        let w = try parameter(layer + ".weight", dims: dims)
        let b = try parameter(layer + ".bias", dims: [dims[0]])
        return node("Conv", [input, w, b], output: layer, attributes: [
            .ints("kernel_shape", [dims[2], dims[3]]), .ints("strides", [stride, stride]),
            .ints("pads", [padding, padding, padding, padding]),
        ])
    }

    /// Throws unless the value is still (N, C, H, W).
    func requireImage(_ layer: String) throws {
        guard rank == 4 else {
            throw LeNetError("takes (N, C, H, W) in ONNX, but a fully connected layer before it flattened the value",
                             subject: layer)
        }
    }
}


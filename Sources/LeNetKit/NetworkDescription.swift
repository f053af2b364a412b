import Foundation

/// A network as a value: the shape of one input sample and its layers'
/// configurations, first to last. It is all `Network(_:seed:)` needs to
/// build the network, every checkpoint carries it (metadata key `network`),
/// and it reads and writes as JSON:
///
/// ```json
/// {"name": "tiny", "input_shape": [1, 28, 28], "layers": [
///   {"type": "Conv2d", "name": "conv1", "in_channels": 1, "out_channels": 8, "kernel_size": 5},
///   {"type": "ReLU", "name": "relu1"},
///   {"type": "MaxPool2d", "name": "pool1", "kernel_size": 2},
///   {"type": "Flatten", "name": "flatten"},
///   {"type": "Linear", "name": "fc", "in_features": 1152, "out_features": 10}]}
/// ```
/// docs/LAYERS.md lists every layer type and its fields.
public struct NetworkDescription: Sendable {
    /// A short name (`cifar-lenet`), or nil.
    public var name: String?
    /// The shape of one input sample, (C, H, W).
    public var inputShape: FeatureShape
    /// The layers, first to last.
    public var layers: [any LayerConfiguration]

    /// - Parameters:
    ///   - name: a short name for summaries and checkpoints.
    ///   - inputShape: one input sample's (C, H, W).
    ///   - layers: the layers' configurations, first to last.
    public init(name: String? = nil, inputShape: FeatureShape, layers: [any LayerConfiguration]) {
        self.name = name
        self.inputShape = inputShape
        self.layers = layers
    }

    /// Checks every layer's fields, its name and the input shape (two
    /// layers with parameters of the same name are refused by `Network`). Whether the shapes chain and the sizes fit in memory is
    /// checked by `Network(_:seed:)`, before it allocates anything.
    /// - Throws: `LeNetError` naming the layer and the field.
    func validate() throws { _ = try makeLayers() }

    /// The layers, made after the input shape and every layer's name are
    /// checked, each by its configuration's checked `makeLayer()`.
    /// - Throws: `LeNetError` naming the layer and the field.
    func makeLayers() throws -> [any Layer] {
        for (field, value) in [("channels", inputShape.channels), ("height", inputShape.height), ("width", inputShape.width)] {
            guard (1...maximumLayerSize).contains(value) else {
                throw LeNetError("input_shape: \(field) must be " + (value < 1 ? "at least 1" : "at most \(maximumLayerSize)") + ", got \(value)")
            }
        }
        guard !layers.isEmpty else { throw LeNetError("layers: a network needs at least one layer") }
        return try layers.enumerated().map { i, layer in
            do {
                guard !layer.name.isEmpty else { throw LayerFieldError("name", "must not be empty") }
                // A name goes into error lines, tensor names and reports: printable, one line.
                guard !layer.name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                    throw LayerFieldError("name", "must not hold control characters (a newline, a tab)")
                }
                return try layer.makeLayer()
            } catch let error as LayerFieldError {
                throw LeNetError(DescriptionError(layer: i, name: layer.name, field: error.field, problem: error.problem).message)
            }
        }
    }

    /// Reads a description from JSON.
    /// - Parameters:
    ///   - json: the JSON text's bytes.
    ///   - registry: the layer types it may name.
    /// - Throws: `LeNetError` naming the layer and the field: malformed
    ///   JSON, an unknown type or field, a missing or mistyped field, a size
    ///   out of range. (Whether the shapes chain is checked on building.)
    public init(json: Data, registry: LayerRegistry = .standard) throws {
        let decoder = JSONDecoder()
        if let key = LayerRegistry.userInfoKey { decoder.userInfo[key] = registry }
        do {
            self = try decoder.decode(Coded.self, from: json).description
        } catch let error as DescriptionError {
            throw LeNetError(error.message)
        } catch let error as LeNetError {
            throw error
        } catch let error as DecodingError {
            if case let .dataCorrupted(context) = error, context.codingPath.isEmpty {
                throw LeNetError("not valid JSON: \(Self.underlying(context))")
            }
            let (field, problem) = DescriptionError.explain(error)
            throw LeNetError(DescriptionError(field: field, problem: problem).message)
        }
        try validate()
    }

    /// The innermost reason JSONDecoder gives for malformed text.
    private static func underlying(_ context: DecodingError.Context) -> String {
        var text = context.debugDescription
        var error = context.underlyingError
        while let e = error {
            text = (e as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(e)"
            error = (e as NSError).userInfo[NSUnderlyingErrorKey] as? Error
        }
        return text
    }

    /// Reads a description from a JSON file.
    /// - Throws: `LeNetError` naming the file, then the layer and the field.
    public init(contentsOf path: String, registry: LayerRegistry = .standard) throws {
        let bytes = try FileIO.readAll(path: path)
        do {
            try self.init(json: Data(bytes), registry: registry)
        } catch let error as LeNetError {
            throw LeNetError(error.description, subject: path)
        }
    }

    /// The description as JSON: every field written, keys sorted (so the same
    /// network always gives the same bytes); `pretty` for people to read.
    ///
    /// A network's description always encodes: `Network` refuses one that
    /// does not (`encodedJSON`), and every field of LeNetKit's layers is
    /// checked finite by `validate()`.
    public func json(pretty: Bool = false) -> String {
        (try? encodedJSON(pretty: pretty)) ?? "{}"
    }

    /// `json(pretty:)`, or the encoder's error (a custom configuration that
    /// does not encode, a non-finite number).
    func encodedJSON(pretty: Bool = false) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do {
            data = try encoder.encode(Coded(self))
        } catch {
            throw LeNetError("cannot be written as JSON: \(error)", subject: name ?? "network description")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// The JSON form: `name`, `input_shape` [C, H, W], `layers`.
    private struct Coded: Codable {
        var name: String?
        var input_shape: [Int]
        var layers: [CodedLayer]

        init(_ d: NetworkDescription) {
            name = d.name
            input_shape = [d.inputShape.channels, d.inputShape.height, d.inputShape.width]
            layers = d.layers.map(CodedLayer.init)
        }

        private enum CodingKeys: String, CodingKey, CaseIterable { case name, input_shape, layers }

        init(from decoder: any Decoder) throws {
            guard let top = try? decoder.container(keyedBy: FieldKey.self) else {
                throw DescriptionError(problem: "must be an object, {\"input_shape\": […], \"layers\": […]}")
            }
            let known = Set(CodingKeys.allCases.map(\.rawValue))
            for key in top.allKeys.map(\.stringValue).sorted() where !known.contains(key) {
                throw DescriptionError(field: key.isEmpty ? "\"\"" : key, problem: "unknown field (a description has name, input_shape and layers)")
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decodeIfPresent(String.self, forKey: .name)
            do {
                input_shape = try container.integers(.input_shape)
            } catch let error as LayerFieldError {
                throw DescriptionError(field: error.field, problem: error.problem)
            }
            guard input_shape.count == 3 else {
                throw DescriptionError(field: "input_shape", problem: "must be [channels, height, width], got \(input_shape.count) values")
            }
            layers = try container.decode([CodedLayer].self, forKey: .layers)
        }

        var description: NetworkDescription {
            NetworkDescription(name: name, inputShape: FeatureShape(channels: input_shape[0], height: input_shape[1], width: input_shape[2]),
                               layers: layers.map(\.configuration))
        }
    }
}

// MARK: - The networks LeNetKit ships

extension NetworkDescription {
    /// The names of the networks shipped in the library.
    @_spi(CLI) public static let builtInNames = ["cifar-lenet", "cifar-lenet-bn", "lenet5", "lenet5-rbf", "lenet1", "lenet4"]

    /// A network shipped in the library (see `named`), with `classes` outputs.
    /// - Throws: `LeNetError` for an unknown name or `classes` outside 1...256.
    static func builtIn(_ name: String, classes: Int = 10) throws -> NetworkDescription {
        try Models.checkClasses(classes)
        switch name {
        case "cifar-lenet": return cifarLeNet(classes: classes, batchNorm: false)
        case "cifar-lenet-bn": return cifarLeNet(classes: classes, batchNorm: true)
        case "lenet5": return lenet5(classes: classes)
        case "lenet5-rbf": return lenet5RBF(classes: classes)
        case "lenet1": return lenet1(classes: classes)
        case "lenet4": return lenet4(classes: classes)
        default:
            throw LeNetError("unknown model '\(name)'; built in: \(builtInNames.joined(separator: ", "))")
        }
    }

    /// A network shipped in the library, by name, or a JSON description
    /// file's. The networks shipped:
    /// - `cifar-lenet`: `Models.cifarLeNet`'s;
    /// - `cifar-lenet-bn`: the same with a `BatchNorm2d` after each convolution;
    /// - `lenet5`: `Models.lenet5`'s;
    /// - `lenet5-rbf`: the same with the paper's RBF output (`RBF`), its
    ///   prototypes the digit drawings (random signs for more than 10 classes);
    /// - `lenet1`, `lenet4`: the paper's smaller networks (docs/LENET5.md).
    /// - Parameters:
    ///   - nameOrPath: `cifar-lenet`, `lenet5`, … or a file (`net.json`).
    ///   - classes: a built-in network's outputs; a file's are its own.
    ///   - registry: the layer types a file may name.
    /// - Throws: `LeNetError` naming the file, or the name when it is
    ///   neither a built-in nor a file.
    public static func named(_ nameOrPath: String, classes: Int = 10, registry: LayerRegistry = .standard) throws -> NetworkDescription {
        if builtInNames.contains(nameOrPath) { return try builtIn(nameOrPath, classes: classes) }
        guard FileManager.default.fileExists(atPath: nameOrPath) || nameOrPath.hasSuffix(".json") else {
            throw LeNetError("unknown model '\(nameOrPath)': not a built-in network (\(builtInNames.joined(separator: ", "))) nor a JSON file")
        }
        return try NetworkDescription(contentsOf: nameOrPath, registry: registry)
    }

    /// The built-in network whose parameter and buffer names are `names`,
    /// with the class count its last bias gives (for a checkpoint without
    /// a `network` key: a PyTorch `state_dict` saved as is).
    static func guess(tensors: [String: [Int]]) -> NetworkDescription? {
        for name in builtInNames {
            guard let plain = try? builtIn(name), let names = try? plain.tensorNames() else { continue }
            let expected = Set(names)
            guard expected == Set(tensors.keys), let output = plain.layers.last?.name,
                  let bias = tensors[output + ".bias"], bias.count == 1, (1...256).contains(bias[0]) else { continue }
            return try? builtIn(name, classes: bias[0])
        }
        return nil
    }

    /// Every parameter's and buffer's full name, in order.
    func tensorNames() throws -> [String] {
        try makeLayers().flatMap { layer in (layer.parameterSpecs + layer.bufferSpecs).map { "\(layer.name).\($0.name)" } }
    }

    private static func cifarLeNet(classes: Int, batchNorm: Bool) -> NetworkDescription {
        var layers: [any LayerConfiguration] = []
        for (i, (c, oc)) in [(3, 16), (16, 32)].enumerated() {
            layers.append(Conv2D.Configuration(name: "conv\(i + 1)", inChannels: c, outChannels: oc, kernelSize: 5))
            if batchNorm { layers.append(BatchNorm2D.Configuration(name: "bn\(i + 1)", numFeatures: oc)) }
            layers.append(MaxPool2D.Configuration(name: "pool\(i + 1)", kernelSize: 2))
            layers.append(ReLU.Configuration(name: "relu\(i + 1)"))
        }
        layers += [
            Linear.Configuration(name: "fc1", inFeatures: 800, outFeatures: 120), ReLU.Configuration(name: "relu3"),
            Linear.Configuration(name: "fc2", inFeatures: 120, outFeatures: 84), ReLU.Configuration(name: "relu4"),
            Linear.Configuration(name: "fc3", inFeatures: 84, outFeatures: classes),
        ]
        return NetworkDescription(name: batchNorm ? "cifar-lenet-bn" : "cifar-lenet",
                                  inputShape: FeatureShape(channels: 3, height: 32, width: 32), layers: layers)
    }

    private static func lenet5(classes: Int, squashC1: Bool = true) -> NetworkDescription {
        let tanh = { (name: String) in Tanh.Configuration.lecun(name) }
        var layers: [any LayerConfiguration] = [Conv2D.Configuration(name: "c1", inChannels: 1, outChannels: 6, kernelSize: 5)]
        if squashC1 { layers.append(tanh("c1.tanh")) }
        layers += [
            Subsampling.Configuration(name: "s2", channels: 6), tanh("s2.tanh"),
            Conv2D.Configuration(name: "c3", inChannels: 6, outChannels: 16, kernelSize: 5, table: Conv2D.lecunC3Table), tanh("c3.tanh"),
            Subsampling.Configuration(name: "s4", channels: 16), tanh("s4.tanh"),
            Conv2D.Configuration(name: "c5", inChannels: 16, outChannels: 120, kernelSize: 5), tanh("c5.tanh"),
            Linear.Configuration(name: "f6", inFeatures: 120, outFeatures: 84), tanh("f6.tanh"),
            Linear.Configuration(name: "output", inFeatures: 84, outFeatures: classes),
        ]
        return NetworkDescription(name: "lenet5", inputShape: FeatureShape(channels: 1, height: 32, width: 32), layers: layers)
    }

    /// LeNet-5 as published: F6's 84 units feed Euclidean RBF units whose
    /// prototypes draw the digits on a 7×12 grid.
    private static func lenet5RBF(classes: Int) -> NetworkDescription {
        var d = lenet5(classes: classes)
        d.name = "lenet5-rbf"
        d.layers[d.layers.count - 1] = RBF.Configuration(name: "output", inFeatures: 84, outFeatures: classes,
                                                         prototypes: classes <= RBF.digitBitmaps.count ? .digits : .randomSigns)
        return d
    }

    /// LeNet-1 (LeCun et al. 1998, §III-C.7; the net of LeCun et al. 1989):
    /// the 28×28 digit itself (the paper shrank the digits to 16×16), four
    /// 5×5 maps, subsampling, twelve 5×5 maps each reading two of the four,
    /// subsampling, ten outputs: 2,678 parameters ("about 2,600").
    private static func lenet1(classes: Int) -> NetworkDescription {
        let tanh = { (name: String) in Tanh.Configuration.lecun(name) }
        let pairs = [[0, 1], [1, 2], [2, 3], [3, 0], [0, 2], [1, 3]]
        return NetworkDescription(name: "lenet1", inputShape: FeatureShape(channels: 1, height: 28, width: 28), layers: [
            Conv2D.Configuration(name: "c1", inChannels: 1, outChannels: 4, kernelSize: 5), tanh("c1.tanh"),
            Subsampling.Configuration(name: "s2", channels: 4), tanh("s2.tanh"),
            Conv2D.Configuration(name: "c3", inChannels: 4, outChannels: 12, kernelSize: 5, table: pairs + pairs), tanh("c3.tanh"),
            Subsampling.Configuration(name: "s4", channels: 12), tanh("s4.tanh"),
            Flatten.Configuration(name: "flatten"),
            Linear.Configuration(name: "output", inFeatures: 12 * 4 * 4, outFeatures: classes),
        ])
    }

    /// LeNet-4 (§III-C.8): four 5×5 maps on the 32×32 field, eight
    /// subsampling maps reading the four in pairs (each a 2×2, stride-2
    /// kernel of its own), sixteen 5×5 maps, subsampling, 120 units, ten
    /// outputs.
    private static func lenet4(classes: Int) -> NetworkDescription {
        let tanh = { (name: String) in Tanh.Configuration.lecun(name) }
        return NetworkDescription(name: "lenet4", inputShape: FeatureShape(channels: 1, height: 32, width: 32), layers: [
            Conv2D.Configuration(name: "c1", inChannels: 1, outChannels: 4, kernelSize: 5), tanh("c1.tanh"),
            Conv2D.Configuration(name: "s2", inChannels: 4, outChannels: 8, kernelSize: 2, stride: 2,
                                 table: (0..<8).map { [$0 / 2] }), tanh("s2.tanh"),
            Conv2D.Configuration(name: "c3", inChannels: 8, outChannels: 16, kernelSize: 5), tanh("c3.tanh"),
            Subsampling.Configuration(name: "s4", channels: 16), tanh("s4.tanh"),
            Flatten.Configuration(name: "flatten"),
            Linear.Configuration(name: "f5", inFeatures: 16 * 5 * 5, outFeatures: 120), tanh("f5.tanh"),
            Linear.Configuration(name: "output", inFeatures: 120, outFeatures: classes),
        ])
    }

    /// LeNet-5 with or without the squashing after C1 (`Models.lenet5`).
    static func lenet5(classes: Int, squashesC1: Bool) -> NetworkDescription {
        var d = lenet5(classes: classes, squashC1: squashesC1)
        if !squashesC1 { d.name = "lenet5-linear-c1" }
        return d
    }
}

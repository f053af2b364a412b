import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Networks as values: descriptions in JSON, built-ins shipped as
/// descriptions, checkpoints that carry them, fusion chosen by pattern, and
/// a layer written outside the library taking part in all of it.
struct NetworkDescriptionTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// Every built-in network: JSON and back gives the same description,
    /// and the network built from the copy has bitwise the built-in's initial
    /// parameters (the same layers, drawn in the same order).
    @Test(arguments: NetworkDescription.builtInNames)
    func testBuiltInsRoundTripThroughJSON(_ name: String) throws {
        let original = try NetworkDescription.builtIn(name, classes: 7)
        let json = original.json(pretty: true)
        let copy = try NetworkDescription(json: Data(json.utf8))
        #expect(copy.json() == original.json())
        #expect(copy.name == name)
        let a = try Network(original, seed: 11), b = try Network(copy, seed: 11)
        #expect(Array(a.parameters.values) == Array(b.parameters.values))
        #expect(Array(a.buffers.values) == Array(b.buffers.values))
        #expect(a.outputShape.count == 7)
        #expect(a.networkDescription.json() == original.json())
    }

    /// The models built from descriptions are the ones this library has
    /// always shipped: the parameter counts of the paper and the tutorial.
    @Test func testBuiltInParameterCounts() throws {
        #expect(try Models.cifarLeNet().trainableParameterCount == 121_182)
        #expect(try Models.lenet5().trainableParameterCount == 60_850)
        let bn = try Models.cifarLeNetBN()
        #expect(bn.trainableParameterCount == 121_182 + 2 * (16 + 32))
        #expect(bn.buffers.entries.map(\.name) == ["bn1.running_mean", "bn1.running_var", "bn2.running_mean", "bn2.running_var"])
        #expect(Array(bn.buffers.values) == [Float](repeating: 0, count: 16) + [Float](repeating: 1, count: 16)
            + [Float](repeating: 0, count: 32) + [Float](repeating: 1, count: 32))
        #expect(bn.parameters.values(of: "bn2.weight") == [Float](repeating: 1, count: 32))
        #expect(bn.parameters.values(of: "bn2.bias") == [Float](repeating: 0, count: 32))
        // The same as the CIFAR LeNet with the two layers put in by hand.
        #expect(try NetworkDescription.builtIn("cifar-lenet-bn").json() == BatchNormTests.cifarLeNetWithBatchNorm().json())
        // Constant initial values draw nothing: the other layers start where the plain network's do.
        let plain = try Models.cifarLeNet()
        #expect(bn.parameters.values(of: "conv2.weight") == plain.parameters.values(of: "conv2.weight"))
        #expect(bn.parameters.values(of: "fc3.bias") == plain.parameters.values(of: "fc3.bias"))
    }

    /// The JSON uses PyTorch's names and LeNetKit's own for the rest.
    @Test func testJSONVocabulary() throws {
        let bn = try NetworkDescription.builtIn("cifar-lenet-bn").json()
        #expect(bn.contains(#""eps":1e-05"#) && bn.contains(#""momentum":0.1"#) && bn.contains(#""num_features":16"#), "\(bn)")
        let json = try NetworkDescription.builtIn("lenet5").json()
        for needle in [#""type":"Conv2d""#, #""in_channels":1"#, #""kernel_size":5"#, #""type":"PartialConv2d""#,
                       #""table":[[0,1,2],"#, #""type":"ScaledTanh""#, #""amplitude":1.7159"#, #""type":"Subsampling""#,
                       #""type":"Linear""#, #""in_features":120"#, #""input_shape":[1,32,32]"#] {
            #expect(json.contains(needle), "\(needle) in \(json)")
        }
    }

    /// A description written by hand, with PyTorch's defaults left out,
    /// builds the network it says.
    @Test func testHandWrittenDescription() throws {
        let json = """
            {"name": "tiny", "input_shape": [1, 12, 12], "layers": [
              {"type": "Conv2d", "name": "conv1", "in_channels": 1, "out_channels": 8, "kernel_size": 3, "padding": 1},
              {"type": "BatchNorm2d", "name": "bn1", "num_features": 8},
              {"type": "ReLU", "name": "relu1"},
              {"type": "MaxPool2d", "name": "pool1", "kernel_size": 2},
              {"type": "Dropout", "name": "drop", "p": 0.25},
              {"type": "Flatten", "name": "flatten"},
              {"type": "Linear", "name": "fc", "in_features": 288, "out_features": 4},
              {"type": "Tanh", "name": "squash"}]}
            """
        let net = try Network(NetworkDescription(json: Data(json.utf8)), seed: 2)
        #expect(net.shapes.map(\.description) == ["8×12×12", "8×12×12", "8×12×12", "8×6×6", "8×6×6", "288", "4", "4"])
        #expect(net.layers.map(\.kind) == ["Conv2D 3×3 p1", "BatchNorm2d", "ReLU", "MaxPool2D 2×2", "Dropout p=0.25", "Flatten", "Linear", "Tanh"])
        #expect(net.parameters.entries.map(\.name) == ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "fc.weight", "fc.bias"])
        #expect(net.buffers.entries.map(\.name) == ["bn1.running_mean", "bn1.running_var"])
        let pooled = try #require(net.networkDescription.layers[3] as? MaxPool2D.Configuration)
        #expect(pooled.stride == 2)
    }

    /// Every bad description gets one line naming the layer and the field.
    @Test(arguments: [
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "Conv3d", "name": "c"}]}"#, "layer 1 'c': type: unknown layer type 'Conv3d'"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "ReLU", "name": "r", "inplace": true}]}"#, "layer 1 'r': inplace: unknown field for a ReLU"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "Linear", "name": "fc", "in_features": 3072}]}"#, "layer 1 'fc': out_features: missing"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "Linear", "name": "fc", "in_features": "3072", "out_features": 2}]}"#,
         "layer 1 'fc': in_features: must be an integer"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "Conv2d", "name": "c", "in_channels": 3, "out_channels": 0, "kernel_size": 5}]}"#,
         "layer 1 'c': out_channels: must be at least 1, got 0"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "Conv2d", "name": "c", "in_channels": 3, "out_channels": 4, "kernel_size": -5}]}"#,
         "layer 1 'c': kernel_size: must be in 1...4096, got -5"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "ReLU", "name": "r"}, {"type": "ScaledTanh", "name": "t", "slope": 0}]}"#,
         "layer 2 't': slope: must be a finite number other than 0, got 0.0"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "Linear", "name": "fc", "in_features": 1.5, "out_features": 2}]}"#,
         "layer 1 'fc': in_features: must be an integer, got 1.5"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "ScaledTanh", "name": "t", "amplitude": 1e300}]}"#,
         "layer 1 't': amplitude: must be a finite number, got 1e+300"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "BatchNorm2d", "name": "bn", "num_features": 3, "eps": 0}]}"#,
         "layer 1 'bn': eps: must be a number in (0.0, 1.0], got 0.0"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "BatchNorm2d", "name": "bn", "num_features": 3, "affine": false}]}"#,
         "layer 1 'bn': affine: unknown field for a BatchNorm2d (its fields: eps, momentum, name, num_features)"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "ReLU", "name": "r"}, {"type": "Dropout", "name": "d", "p": 1.5}]}"#,
         "layer 2 'd': p: must be a number in [0.0, 1.0], got 1.5"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "Linear", "name": "fc", "in_features": 1e30, "out_features": 2}]}"#,
         "layer 1 'fc': in_features: must be an integer, got 1e+30"),
        (#"{"input_shape": [3, 32.5, 32], "layers": []}"#, "input_shape: must hold integers, got 32.5"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"name": "fc"}]}"#, "layer 1 'fc': type: missing"),
        (#"{"input_shape": [3, 32], "layers": [{"type": "ReLU", "name": "r"}]}"#, "input_shape: must be [channels, height, width], got 2 values"),
        (#"{"input_shape": [0, 32, 32], "layers": [{"type": "ReLU", "name": "r"}]}"#, "input_shape: channels must be at least 1, got 0"),
        (#"{"input_shape": [3, 32, 32], "layers": []}"#, "layers: a network needs at least one layer"),
        (#"{"input_shape": [3, 32, 32], "layers": [], "optimizer": "adam"}"#, "optimizer: unknown field"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "Tanh", "name": "t", "slope": 2}]}"#, "layer 1 't': slope: a Tanh has none"),
        (#"{"input_shape": [6, 14, 14], "layers": [{"type": "PartialConv2d", "name": "c3", "in_channels": 6, "out_channels": 2, "kernel_size": 5, "table": [[0, 6], [1]]}]}"#,
         "layer 1 'c3': table: row 0 of the connection table, [0, 6], must list distinct input maps in 0..<6"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "Conv2d", "name": "c", "in_channels": 3, "out_channels": 4, "kernel_size": 5, "table": [[0], [1], [2], [0]]}]}"#,
         "layer 1 'c': type: 'Conv2d' does not fit these fields (they make a PartialConv2d)"),
        (#"{"input_shape": [3, 32, 32], "layers": [{"type": "ReLU", "name": "r"}"#, "not valid JSON"),
        ("[1, 2, 3]", "must be"),
        ("", "not valid JSON"),
    ])
    func testBadDescriptionsAreNamed(_ json: String, _ expected: String) throws {
        assertError(expected) { try NetworkDescription(json: Data(json.utf8)) }
    }

    /// What only building can find: shapes that do not chain, tensors no
    /// memory holds (refused before anything is allocated), and the same
    /// parameter name twice.
    @Test func testBuildingRefusesWhatDoesNotFit() throws {
        func build(_ json: String) throws -> Network { try Network(NetworkDescription(json: Data(json.utf8))) }
        assertError("conv2", "expects 16 input channels, got 8") {
            try build(#"{"input_shape": [3, 32, 32], "layers": [{"type": "Conv2d", "name": "conv1", "in_channels": 3, "out_channels": 8, "kernel_size": 5}, {"type": "Conv2d", "name": "conv2", "in_channels": 16, "out_channels": 8, "kernel_size": 5}]}"#)
        }
        assertError("fc", "expects 100 input features, got 3072") {
            try build(#"{"input_shape": [3, 32, 32], "layers": [{"type": "Linear", "name": "fc", "in_features": 100, "out_features": 8}]}"#)
        }
        assertError("c", "does not fit input 3×32×32") {
            try build(#"{"input_shape": [3, 32, 32], "layers": [{"type": "Conv2d", "name": "c", "in_channels": 3, "out_channels": 8, "kernel_size": 40}]}"#)
        }
        // 2^24 × 2^24 weights: more than any memory, refused by the count.
        assertError("fc.weight", "more values than any memory") {
            try build(#"{"input_shape": [16777216, 1, 1], "layers": [{"type": "Linear", "name": "fc", "in_features": 16777216, "out_features": 16777216}]}"#)
        }
        // 2^36 weights (256 GB): within the count, beyond this machine.
        assertError("fc.weight", "available") {
            try build(#"{"input_shape": [65536, 1, 1], "layers": [{"type": "Linear", "name": "fc", "in_features": 65536, "out_features": 1048576}]}"#)
        }
        assertError("two parameters are named 'fc.weight'") {
            try build(#"{"input_shape": [4, 1, 1], "layers": [{"type": "Linear", "name": "fc", "in_features": 4, "out_features": 4}, {"type": "Linear", "name": "fc", "in_features": 4, "out_features": 4}]}"#)
        }
    }

    /// A description file, and `named` telling files from built-in names.
    @Test func testDescriptionFiles() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("net.json").path
        try NetworkDescription.builtIn("cifar-lenet").json(pretty: true).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try NetworkDescription.named(path).json() == NetworkDescription.builtIn("cifar-lenet").json())
        #expect(try NetworkDescription.named("lenet5", classes: 3).layers.last.map { ($0 as? Linear.Configuration)?.outFeatures } == 3)
        assertError("unknown model 'alexnet'") { try NetworkDescription.named("alexnet") }
        assertError("missing.json", "cannot open") { try NetworkDescription.named(dir.appendingPathComponent("missing.json").path) }
        let bad = dir.appendingPathComponent("bad.json").path
        try #"{"input_shape": [3, 32, 32], "layers": [{"type": "ReLU"}]}"#.write(toFile: bad, atomically: true, encoding: .utf8)
        assertError("bad.json", "layer 1: name: missing") { try NetworkDescription.named(bad) }
    }

    // MARK: - Fusion by pattern

    func inferenceKinds(_ net: Network) -> [String] { net.inferenceSteps.map(\.kind) }

    /// A 24-channel CIFAR LeNet matches the conv+pool+ReLU pattern (24 is a
    /// multiple of the kernel's 8): any description that fits gets the
    /// fused steps, not only the built-in.
    @Test(.enabled(if: CPUFeatures.avx2FMA))
    func testFusionFollowsTheDescription() throws {
        var wide = try NetworkDescription.builtIn("cifar-lenet")
        wide.layers[0] = Conv2D.Configuration(name: "conv1", inChannels: 3, outChannels: 24, kernelSize: 5)
        wide.layers[3] = Conv2D.Configuration(name: "conv2", inChannels: 24, outChannels: 32, kernelSize: 5)
        let net = try Network(wide)
        // conv2's 24 input channels are enough for Winograd's kernel (conv1's 3 are not).
        #expect(inferenceKinds(net) == ["fused conv+pool+ReLU", "Winograd conv+pool+ReLU", "fused linear+ReLU", "fused linear+ReLU", "direct linear"])
        net.allowsWinograd = false
        try net.reserve(batch: 1, backward: false)
        #expect(inferenceKinds(net) == ["fused conv+pool+ReLU", "fused conv+pool+ReLU", "fused linear+ReLU", "fused linear+ReLU", "direct linear"])
        #expect(net.backwardSteps.map(\.layers) == [0..<2, 2..<3, 3..<5, 5..<6, 6..<7, 7..<8, 8..<9, 9..<10, 10..<11])
        // 20 channels are not a multiple of 8: the convolution runs alone.
        wide.layers[0] = Conv2D.Configuration(name: "conv1", inChannels: 3, outChannels: 20, kernelSize: 5)
        wide.layers[3] = Conv2D.Configuration(name: "conv2", inChannels: 20, outChannels: 32, kernelSize: 5)
        #expect(inferenceKinds(try Network(wide)).prefix(3) == ["direct conv", "MaxPool2D 2×2", "ReLU"])
        // A BatchNorm between the convolution and its pool is folded into the convolution.
        #expect(inferenceKinds(try Models.cifarLeNetBN()) == ["fused conv+BN+pool+ReLU", "fused conv+BN+pool+ReLU", "fused linear+ReLU",
                                                               "fused linear+ReLU", "direct linear"])
        #expect(try Models.cifarLeNetBN().inferenceSteps.map(\.layers).prefix(2) == [0..<4, 4..<8])
        #expect(inferenceKinds(try Models.lenet5()) == ["direct conv", "Tanh 1.7159·tanh(0.6666667x)", "Subsampling 2×2",
                                                         "Tanh 1.7159·tanh(0.6666667x)", "direct conv", "Tanh 1.7159·tanh(0.6666667x)",
                                                         "Subsampling 2×2", "Tanh 1.7159·tanh(0.6666667x)", "conv as linear",
                                                         "Tanh 1.7159·tanh(0.6666667x)", "direct linear", "Tanh 1.7159·tanh(0.6666667x)",
                                                         "direct linear"])
    }

    /// The same pattern in the other order (ReLU before the pool) fuses too,
    /// and the fused pass agrees with the layers' own.
    @Test func testReLUBeforePoolFuses() throws {
        let d = NetworkDescription(inputShape: FeatureShape(channels: 3, height: 14, width: 14), layers: [
            Conv2D.Configuration(name: "conv", inChannels: 3, outChannels: 8, kernelSize: 5),
            ReLU.Configuration(name: "relu"), MaxPool2D.Configuration(name: "pool"),
            Linear.Configuration(name: "fc", inFeatures: 8 * 5 * 5, outFeatures: 3),
        ])
        let net = try Network(d, seed: 4)
        if CPUFeatures.avx2FMA {
            #expect(inferenceKinds(net).first == "fused conv+pool+ReLU")
        }
        let x = randomValues(5 * d.inputShape.count, seed: 9)
        _ = try net.input(batch: 5).update(fromContentsOf: x)
        let layered = Array(UnsafeBufferPointer(start: net.forward(batch: 5), count: 15))
        let fused = try net.predict(x)
        // The same sums in another order: within (C·25 + 1)·ε of the terms' size, then through fc.
        assertClose(fused, layered, "fused against layered", atol: 2e-4, rtol: 1e-4)
    }

    // MARK: - Checkpoints carry their network

    /// A checkpoint of a custom network loads with no code that built it;
    /// one written before descriptions (a `model` key only) still loads;
    /// a `network` key that disagrees with the tensors is refused.
    @Test func testCheckpointsCarryTheirNetwork() throws {
        let dir = try temporaryDirectory()
        let d = NetworkDescription(name: "custom", inputShape: FeatureShape(channels: 1, height: 8, width: 8), layers: [
            Conv2D.Configuration(name: "c", inChannels: 1, outChannels: 3, kernelSize: 3),
            Tanh.Configuration(name: "t"),
            Linear.Configuration(name: "fc", inFeatures: 108, outFeatures: 5),
        ])
        let net = try Network(d, seed: 8)
        let path = dir.appendingPathComponent("custom.safetensors").path
        try Checkpoint.saveWeights(net, to: path, metadata: [Checkpoint.Key.network: d.json()])
        let loaded = try Checkpoint.loadNetwork(path: path)
        #expect(loaded.network.networkDescription.json() == d.json())
        #expect(Array(loaded.network.parameters.values) == Array(net.parameters.values))
        #expect(Array(loaded.network.buffers.values) == Array(net.buffers.values))
        #expect(try Checkpoint.networkDescription(path: path).json() == d.json())

        // Before descriptions: the model's name, and the class count from its last bias.
        let old = try Models.lenet5(seed: 3, classes: 4)
        let oldPath = dir.appendingPathComponent("old.safetensors").path
        try Checkpoint.saveWeights(old, to: oldPath, metadata: ["model": "lenet5"])
        let reloaded = try Checkpoint.loadNetwork(path: oldPath)
        #expect(reloaded.network.outputShape.count == 4)
        #expect(Array(reloaded.network.parameters.values) == Array(old.parameters.values))

        // A description that does not match the tensors beside it.
        var other = d
        other.layers[2] = Linear.Configuration(name: "fc", inFeatures: 108, outFeatures: 6)
        let lying = dir.appendingPathComponent("lying.safetensors").path
        try Checkpoint.saveWeights(net, to: lying, metadata: [Checkpoint.Key.network: other.json()])
        assertError("lying.safetensors", "its 'network' metadata disagrees with its tensors", "fc.weight") {
            try Checkpoint.loadNetwork(path: lying)
        }
        let broken = dir.appendingPathComponent("broken.safetensors").path
        try Checkpoint.saveWeights(net, to: broken, metadata: [Checkpoint.Key.network: #"{"input_shape": [1, 8, 8], "layers": [{"type": "Conv2d"}]}"#])
        assertError("broken.safetensors", "its 'network' metadata: layer 1: name: missing") { try Checkpoint.loadNetwork(path: broken) }
    }

    // MARK: - A layer written outside the library

    /// `ChannelShift` (OutsideLayer.swift), written against the public API
    /// alone, trains (its gradient checked), saves, loads, exports to ONNX
    /// and counts its parameters in the memory estimate.
    @Test func testALayerFromOutsideTakesPart() throws {
        let registry = LayerRegistry.standard.registering(ChannelShift.Configuration.self, as: "ChannelShift",
                                                          fields: ChannelShift.Configuration.CodingKeys.self)
        let json = #"{"name": "shifted", "input_shape": [2, 6, 6], "layers": [{"type": "Conv2d", "name": "conv", "in_channels": 2, "out_channels": 3, "kernel_size": 3}, {"type": "ChannelShift", "name": "shift", "channels": 3}, {"type": "Flatten", "name": "flat"}, {"type": "Linear", "name": "fc", "in_features": 48, "out_features": 4}]}"#
        assertError("layer 2 'shift': type: unknown layer type 'ChannelShift'") { try NetworkDescription(json: Data(json.utf8)) }
        assertError("layer 2 'shift': channels: must be at least 1, got 0") {
            try NetworkDescription(json: Data(json.replacingOccurrences(of: #""channels": 3"#, with: #""channels": 0"#).utf8), registry: registry)
        }
        let d = try NetworkDescription(json: Data(json.utf8), registry: registry)
        let net = try Network(d, seed: 5)
        #expect(net.parameters.entries.map(\.name) == ["conv.weight", "conv.bias", "shift.bias", "fc.weight", "fc.bias"])
        #expect(net.networkDescription.json() == d.json())

        // Its gradient, through the harness every layer here is checked with.
        struct Harness: GradientCheckHarness {}
        try Harness().check(net, input: randomValues(3 * 72, seed: 2), batch: 3)

        // Its parameters are in the estimate: values and gradients, 2 × 3 Floats.
        let withShift = net.memoryEstimate(batch: 10)
        var plain = d
        plain.layers.remove(at: 1)
        let without = try Network(plain).memoryEstimate(batch: 10)
        #expect(withShift["parameters"] - without["parameters"] == 2 * 4 * 3)

        // Saved and loaded with the registry that knows it; without it, a clear error.
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("shifted.safetensors").path
        try Checkpoint.saveWeights(net, to: path, metadata: [Checkpoint.Key.network: d.json()])
        let loaded = try Checkpoint.loadNetwork(path: path, registry: registry)
        #expect(Array(loaded.network.parameters.values) == Array(net.parameters.values))
        assertError("shifted.safetensors", "unknown layer type 'ChannelShift'") { try Checkpoint.loadNetwork(path: path) }

        // Its ONNX nodes, between the library's own.
        let graph = try ONNXExport.encode(net, metadata: .init(model: "shifted", normalization: .half, classNames: ["a", "b", "c", "d"]))
        #expect(String(decoding: graph, as: UTF8.self).contains("shift.bias"))
    }

    /// The JSON copy of the CIFAR LeNet trains to bitwise the built-in's
    /// weights: same layers, same initialization, same kernels.
    @Test func testJSONCopyTrainsBitwiseAsTheBuiltIn() throws {
        let train = try TrainingTests.squares(count: 48, seed: 4)
        var options = TrainingOptions()
        options.batchSize = 12
        options.epochs = 1
        options.threads = 2
        let builtIn = try Models.cifarLeNet(seed: 6)
        let copy = try Network(NetworkDescription(json: Data(NetworkDescription.builtIn("cifar-lenet").json(pretty: true).utf8)), seed: 6)
        for net in [builtIn, copy] {
            let trainer = try Trainer(network: net, dataset: train, options: options)
            _ = try trainer.trainEpoch()
        }
        #expect(Array(builtIn.parameters.values) == Array(copy.parameters.values))
    }

    // MARK: - What a description cannot do to the process

    /// Sizes that pass each field's range but not the whole: a connection
    /// table over 2^24 × 4096 maps of 4×4 kernels (its weight 2^40 values,
    /// refused before any table work on any machine), a sample of more than 2^31
    /// values (the kernels index it with 32-bit integers), and more than 256
    /// outputs for training, evaluation and classification.
    @Test func testSizesBeyondTheKernelsAreRefused() throws {
        let rows = Array(repeating: "[0]", count: 4096).joined(separator: ",")
        let table = #"{"input_shape": [16777216, 4, 4], "layers": [{"type": "PartialConv2d", "name": "c", "in_channels": 16777216, "out_channels": 4096, "kernel_size": 4, "table": ["# + rows + "]}]}"
        assertError("c.weight", "more values than any memory") { try Network(NetworkDescription(json: Data(table.utf8))) }
        let wide = #"{"input_shape": [1, 46341, 46341], "layers": [{"type": "MaxPool2d", "name": "pool", "kernel_size": 3}]}"#
        assertError("the input", "more than the 2^31 − 1") { try Network(NetworkDescription(json: Data(wide.utf8))) }
        let many = NetworkDescription(inputShape: FeatureShape(features: 4), layers: [Linear.Configuration(name: "fc", inFeatures: 4, outFeatures: 300)])
        let net = try Network(many)
        let data = try ImageDataset(name: "tiny", channels: 4, height: 1, width: 1, images: [UInt8](repeating: 1, count: 8),
                                    labels: [0, 1], classNames: ["a", "b"])
        assertError("fc", "gives 300 outputs") { try Trainer(network: net, dataset: data, options: TrainingOptions()) }
        assertError("fc", "gives 300 outputs") { try net.evaluate(on: data, normalization: .half) }
        assertError("fc", "gives 300 outputs") { try Classifier(network: net, normalization: .half, classNames: (0..<300).map(String.init)) }
    }

    /// Names go into error lines and tensor names: no control characters.
    @Test func testNamesArePrintable() throws {
        let json = #"{"input_shape": [3, 4, 4], "layers": [{"type": "ReLU", "name": "re\nlu"}]}"#
        assertError("layer 1", "name: must not hold control characters") { try NetworkDescription(json: Data(json.utf8)) }
        assertError("layer 1: must be an object") { try NetworkDescription(json: Data(#"{"input_shape": [3, 4, 4], "layers": [9]}"#.utf8)) }
        assertError("must be an object") { try NetworkDescription(json: Data("5".utf8)) }
    }

    /// `--model NAME` for a checkpoint: a built-in network with the file's class count.
    @Test func testBuiltInForACheckpointTakesItsClassCount() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("three.safetensors").path
        try Checkpoint.saveWeights(try Models.cifarLeNet(classes: 3), to: path, metadata: [:])
        let d = try Checkpoint.networkDescription(path: path, named: "cifar-lenet")
        #expect((d.layers.last as? Linear.Configuration)?.outFeatures == 3)
        #expect(try Checkpoint.loadNetwork(path: path, description: d).network.outputShape.count == 3)
    }
}

import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// `ONNXExport` decoded back by a small protobuf reader (onnx.proto's field
/// numbers), against the graph each network must give. ONNX Runtime and
/// `onnx.checker` check the same files in Scripts/check-onnx (run by CI).
struct ONNXExportTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    // MARK: A protobuf reader for the messages the export writes

    enum Value {
        case varint(UInt64)
        case fixed32(UInt32)
        case bytes([UInt8])
    }

    struct Message {
        var fields: [(Int, Value)] = []

        init(_ bytes: [UInt8]) throws {
            var i = 0
            func varint() throws -> UInt64 {
                var v: UInt64 = 0, shift: UInt64 = 0
                while true {
                    guard i < bytes.count, shift < 64 else { throw LeNetError("truncated varint at byte \(i)") }
                    let b = bytes[i]
                    i += 1
                    v |= UInt64(b & 0x7F) << shift
                    if b < 0x80 { return v }
                    shift += 7
                }
            }
            while i < bytes.count {
                let key = try varint()
                let field = Int(key >> 3)
                switch key & 7 {
                case 0:
                    fields.append((field, .varint(try varint())))
                case 5:
                    guard i + 4 <= bytes.count else { throw LeNetError("truncated fixed32") }
                    fields.append((field, .fixed32(bytes[i..<i + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) })))
                    i += 4
                case 2:
                    let n = Int(try varint())
                    guard i + n <= bytes.count else { throw LeNetError("truncated field \(field)") }
                    fields.append((field, .bytes(Array(bytes[i..<i + n]))))
                    i += n
                default:
                    throw LeNetError("wire type \(key & 7) is not one the export writes")
                }
            }
        }

        func ints(_ field: Int) -> [Int] {
            fields.compactMap { if $0.0 == field, case let .varint(v) = $0.1 { return Int(Int64(bitPattern: v)) } else { return nil } }
        }
        func int(_ field: Int) -> Int? { ints(field).first }
        func data(_ field: Int) -> [[UInt8]] {
            fields.compactMap { if $0.0 == field, case let .bytes(b) = $0.1 { return b } else { return nil } }
        }
        func strings(_ field: Int) -> [String] { data(field).map { String(decoding: $0, as: UTF8.self) } }
        func string(_ field: Int) -> String? { strings(field).first }
        func messages(_ field: Int) throws -> [Message] { try data(field).map(Message.init) }
        func message(_ field: Int) throws -> Message {
            guard let m = try messages(field).first else { throw LeNetError("no field \(field)") }
            return m
        }
    }

    struct Node {
        var op: String, inputs: [String], output: String
        var attributes: [String: [Int]]
    }

    struct Graph {
        var irVersion: Int, opset: Int
        var nodes: [Node]
        var initializers: [String: (dims: [Int], values: [Float])]
        var initializerOrder: [String]
        var input: (name: String, dims: [String]), output: (name: String, dims: [String])
        var metadata: [String: String]
    }

    func decode(_ bytes: [UInt8]) throws -> Graph {
        let model = try Message(bytes)
        let opsets = try model.messages(8)
        #expect(opsets.count == 1)
        let graph = try model.message(7)
        let nodes = try graph.messages(1).map { n -> Node in
            var attributes: [String: [Int]] = [:]
            for a in try n.messages(5) {
                let name = try #require(a.string(1))
                switch a.int(20) {
                case 2: attributes[name] = [try #require(a.int(3))]
                case 7: attributes[name] = a.ints(8)
                default: Issue.record("attribute \(name) of type \(String(describing: a.int(20)))")
                }
            }
            #expect(n.strings(2).count == 1)
            #expect(n.string(3) == n.string(2), "a node is named for its output")
            return Node(op: try #require(n.string(4)), inputs: n.strings(1), output: try #require(n.string(2)),
                        attributes: attributes)
        }
        var initializers: [String: (dims: [Int], values: [Float])] = [:], order: [String] = []
        for t in try graph.messages(5) {
            #expect(t.int(2) == 1, "FLOAT")
            let raw = try #require(t.data(9).first)
            #expect(raw.count % 4 == 0)
            let values = stride(from: 0, to: raw.count, by: 4).map { i in
                Float(bitPattern: raw[i..<i + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) })
            }
            let name = try #require(t.string(8))
            #expect(initializers[name] == nil, "initializer \(name) twice")
            initializers[name] = (t.ints(1), values)
            order.append(name)
        }
        func valueInfo(_ m: Message) throws -> (name: String, dims: [String]) {
            let tensor = try m.message(2).message(1)
            #expect(tensor.int(1) == 1, "FLOAT")
            let dims = try tensor.message(2).messages(1).map { d in d.int(1).map(String.init) ?? d.string(2) ?? "?" }
            return (try #require(m.string(1)), dims)
        }
        var metadata: [String: String] = [:]
        for p in try model.messages(14) { metadata[try #require(p.string(1))] = p.string(2) }
        return Graph(irVersion: try #require(model.int(1)), opset: try #require(opsets[0].int(2)), nodes: nodes,
                     initializers: initializers, initializerOrder: order,
                     input: try valueInfo(try graph.message(11)), output: try valueInfo(try graph.message(12)),
                     metadata: metadata)
    }

    /// Every node reads only the graph input, initializers, or an earlier node's output.
    func assertWellFormed(_ g: Graph, sourceLocation: SourceLocation = #_sourceLocation) {
        var known: Set<String> = Set(g.initializers.keys).union([g.input.name])
        for n in g.nodes {
            for i in n.inputs where !known.contains(i) {
                Issue.record("\(n.op) \(n.output) reads \(i) before it exists", sourceLocation: sourceLocation)
            }
            #expect(!known.contains(n.output), "\(n.output) written twice", sourceLocation: sourceLocation)
            known.insert(n.output)
        }
        #expect(g.nodes.last?.output == g.output.name, sourceLocation: sourceLocation)
        #expect(g.irVersion == ONNXExport.irVersion, sourceLocation: sourceLocation)
        #expect(g.opset == 13, sourceLocation: sourceLocation)
    }

    // MARK: The two networks

    @Test func testCIFARLeNetGraph() throws {
        let net = try Models.cifarLeNet(seed: 4)
        let normalization = try Normalization(mean: [0.4, 0.5, 0.6], std: [0.2, 0.25, 0.3])
        let bytes = try ONNXExport.encode(net, metadata: .init(model: "cifar-lenet", normalization: normalization,
                                                               classNames: CIFAR10.standardClassNames))
        let g = try decode(bytes)
        assertWellFormed(g)
        // Each max pool's ReLU is written before it, right after the convolution, where runtimes fuse it.
        #expect(g.nodes.map(\.op) == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten",
                                           "Gemm", "Relu", "Gemm", "Relu", "Gemm"])
        #expect(g.nodes[1].inputs == [g.nodes[0].output] && g.nodes[2].inputs == [g.nodes[1].output])
        #expect(g.input.name == "input")
        #expect(g.input.dims == ["N", "3", "32", "32"])
        #expect(g.output.name == "logits")
        #expect(g.output.dims == ["N", "10"])
        // The initializers are the parameters, by their PyTorch names, shapes and values, bit for bit.
        #expect(g.initializerOrder == net.parameters.entries.map(\.name))
        for e in net.parameters.entries {
            let t = try #require(g.initializers[e.name])
            #expect(t.dims == e.shape, "\(e.name)")
            #expect(t.values.map(\.bitPattern) == (net.parameters.values(of: e.name) ?? []).map(\.bitPattern), "\(e.name)")
        }
        let conv1 = g.nodes[0], pool = g.nodes[2], flatten = g.nodes[6], fc1 = g.nodes[7]
        #expect(conv1.inputs == ["input", "conv1.weight", "conv1.bias"])
        #expect(conv1.attributes == ["kernel_shape": [5, 5], "strides": [1, 1], "pads": [0, 0, 0, 0]])
        #expect(pool.attributes == ["kernel_shape": [2, 2], "strides": [2, 2]])
        #expect(flatten.attributes == ["axis": [1]])
        #expect(fc1.inputs == [flatten.output, "fc1.weight", "fc1.bias"])
        #expect(fc1.attributes == ["transB": [1]])
        #expect(g.metadata["model"] == "cifar-lenet")
        #expect(g.metadata["normalization_mean"] == "0.4,0.5,0.6")
        #expect(g.metadata["normalization_std"] == "0.2,0.25,0.3")
        #expect(Checkpoint.classNames(metadata: g.metadata, classes: 10) == CIFAR10.standardClassNames)
        #expect(g.metadata["lenetkit_version"] == LeNetKitVersion.string)
    }

    @Test func testLeNet5Graph() throws {
        let net = try Models.lenet5(seed: 2)
        let bytes = try ONNXExport.encode(net, metadata: .init(model: "lenet5", normalization: .half, classNames: (0..<10).map(String.init)))
        let g = try decode(bytes)
        assertWellFormed(g)
        let squash = ["Mul", "Tanh", "Mul"]
        #expect(g.nodes.map(\.op) == ["Conv"] + squash + ["Conv"] + squash + ["Conv"] + squash + ["Conv"] + squash
                       + ["Conv"] + squash + ["Flatten", "Gemm"] + squash + ["Gemm"])
        #expect(g.input.dims == ["N", "1", "32", "32"])
        // Subsampling: a depthwise Conv whose 2×2 kernel is w[c] in every tap, stride 2, and its bias.
        for (name, channels) in [("s2", 6), ("s4", 16)] {
            let node = try #require(g.nodes.first { $0.output == name })
            #expect(node.attributes == ["kernel_shape": [2, 2], "strides": [2, 2], "group": [channels]])
            let kernel = try #require(g.initializers[node.inputs[1]])
            #expect(kernel.dims == [channels, 1, 2, 2])
            let w = net.parameters.values(of: name + ".weight") ?? []
            #expect(kernel.values == w.flatMap { [$0, $0, $0, $0] })
            #expect(node.inputs[2] == name + ".bias")
        }
        // C3: a dense Conv; its unconnected kernels are exactly 0.
        let c3 = try #require(g.initializers["c3.weight"])
        #expect(c3.dims == [16, 6, 5, 5])
        for (o, inputs) in Conv2D.lecunC3Table.enumerated() {
            for c in 0..<6 {
                let kernel = c3.values[(o * 6 + c) * 25..<(o * 6 + c + 1) * 25]
                #expect(kernel.allSatisfy { $0 == 0 } == !inputs.contains(c), "c3 map \(o), input \(c)")
            }
        }
        // The scaled tanh: x·(2/3), tanh, ·1.7159, with the layer's own constants.
        let tanh = Tanh.lecun()
        let mul = g.nodes.filter { $0.op == "Mul" }
        #expect(mul.count == 12)
        for (k, node) in mul.enumerated() {
            let constant = try #require(g.initializers[node.inputs[1]])
            #expect(constant.dims == [], "a scalar")
            #expect(constant.values == [k % 2 == 0 ? tanh.slope : tanh.amplitude])
        }
        #expect(g.initializers.count == net.parameters.entries.count - 2 + 2 + 12, "the parameters (s2 and s4's weights as kernels) and 12 scalars")
    }

    // MARK: What cannot be exported

    final class Custom: Layer {
        let name = "mystery"
        var kind: String { "Custom" }
        struct Configuration: LayerConfiguration {
            var name = "mystery"
            enum CodingKeys: String, CodingKey, CaseIterable { case name }
            var type: String { "Custom" }
            func makeLayer() -> any Layer { Custom() }
        }
        var configuration: any LayerConfiguration { Configuration() }
        func replica() -> any Layer { Custom() }
        func outputShape(for input: FeatureShape) throws -> FeatureShape { input }
        func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {}
        func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                      _ y: UnsafePointer<Float>, batch n: Int) {}
    }

    @Test func testALayerWithoutAnONNXFormIsNamed() throws {
        let net = try Network(inputShape: FeatureShape(channels: 1, height: 4, width: 4), layers: [
            Conv2D("conv", inChannels: 1, outChannels: 2, kernelSize: 3), Custom(),
        ])
        assertError("mystery", "has no ONNX form (Custom)") {
            try ONNXExport.encode(net, metadata: .init(model: "x", normalization: .half, classNames: ["a", "b"]))
        }
        let flat = try Network(inputShape: FeatureShape(channels: 1, height: 4, width: 4), layers: [
            Linear("fc", inFeatures: 16, outFeatures: 16), Conv2D("conv", inChannels: 16, outChannels: 1, kernelSize: 1),
        ])
        assertError("conv", "takes (N, C, H, W)") {
            try ONNXExport.encode(flat, metadata: .init(model: "x", normalization: .half, classNames: ["a"]))
        }
    }

    /// A failed export leaves the file that was there.
    @Test func testWriteIsAtomic() throws {
        let dir = try temporaryDirectory()
        let path = dir.appendingPathComponent("model.onnx").path
        try ONNXExport.write(Models.cifarLeNet(), metadata: .init(model: "cifar-lenet", normalization: .half,
                                                                  classNames: CIFAR10.standardClassNames), to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(try decode([UInt8](before)).nodes.count == 12)
        let bad = try Network(inputShape: FeatureShape(channels: 1, height: 4, width: 4), layers: [Custom()])
        assertError("mystery") { try ONNXExport.write(bad, metadata: .init(model: "x", normalization: .half, classNames: ["a"]), to: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.onnx"])
    }
}

import XCTest
@testable import LeNetKit

/// `ONNXExport` decoded back by a small protobuf reader (onnx.proto's field
/// numbers), against the graph each network must give. ONNX Runtime and
/// `onnx.checker` check the same files in Scripts/check-onnx (run by CI).
final class ONNXExportTests: XCTestCase {
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
        XCTAssertEqual(opsets.count, 1)
        let graph = try model.message(7)
        let nodes = try graph.messages(1).map { n -> Node in
            var attributes: [String: [Int]] = [:]
            for a in try n.messages(5) {
                let name = try XCTUnwrap(a.string(1))
                switch a.int(20) {
                case 2: attributes[name] = [try XCTUnwrap(a.int(3))]
                case 7: attributes[name] = a.ints(8)
                default: XCTFail("attribute \(name) of type \(String(describing: a.int(20)))")
                }
            }
            XCTAssertEqual(n.strings(2).count, 1)
            XCTAssertEqual(n.string(3), n.string(2), "a node is named for its output")
            return Node(op: try XCTUnwrap(n.string(4)), inputs: n.strings(1), output: try XCTUnwrap(n.string(2)),
                        attributes: attributes)
        }
        var initializers: [String: (dims: [Int], values: [Float])] = [:], order: [String] = []
        for t in try graph.messages(5) {
            XCTAssertEqual(t.int(2), 1, "FLOAT")
            let raw = try XCTUnwrap(t.data(9).first)
            XCTAssertEqual(raw.count % 4, 0)
            let values = stride(from: 0, to: raw.count, by: 4).map { i in
                Float(bitPattern: raw[i..<i + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) })
            }
            let name = try XCTUnwrap(t.string(8))
            XCTAssertNil(initializers[name], "initializer \(name) twice")
            initializers[name] = (t.ints(1), values)
            order.append(name)
        }
        func valueInfo(_ m: Message) throws -> (name: String, dims: [String]) {
            let tensor = try m.message(2).message(1)
            XCTAssertEqual(tensor.int(1), 1, "FLOAT")
            let dims = try tensor.message(2).messages(1).map { d in d.int(1).map(String.init) ?? d.string(2) ?? "?" }
            return (try XCTUnwrap(m.string(1)), dims)
        }
        var metadata: [String: String] = [:]
        for p in try model.messages(14) { metadata[try XCTUnwrap(p.string(1))] = p.string(2) }
        return Graph(irVersion: try XCTUnwrap(model.int(1)), opset: try XCTUnwrap(opsets[0].int(2)), nodes: nodes,
                     initializers: initializers, initializerOrder: order,
                     input: try valueInfo(try graph.message(11)), output: try valueInfo(try graph.message(12)),
                     metadata: metadata)
    }

    /// Every node reads only the graph input, initializers, or an earlier node's output.
    func assertWellFormed(_ g: Graph, file: StaticString = #filePath, line: UInt = #line) {
        var known: Set<String> = Set(g.initializers.keys).union([g.input.name])
        for n in g.nodes {
            for i in n.inputs where !known.contains(i) {
                XCTFail("\(n.op) \(n.output) reads \(i) before it exists", file: file, line: line)
            }
            XCTAssertFalse(known.contains(n.output), "\(n.output) written twice", file: file, line: line)
            known.insert(n.output)
        }
        XCTAssertEqual(g.nodes.last?.output, g.output.name, file: file, line: line)
        XCTAssertEqual(g.irVersion, ONNXExport.irVersion, file: file, line: line)
        XCTAssertEqual(g.opset, 13, file: file, line: line)
    }

    // MARK: The two networks

    func testCIFARLeNetGraph() throws {
        let net = try Models.cifarLeNet(seed: 4)
        let normalization = try Normalization(mean: [0.4, 0.5, 0.6], std: [0.2, 0.25, 0.3])
        let bytes = try ONNXExport.encode(net, metadata: .init(model: "cifar-lenet", normalization: normalization,
                                                               classNames: CIFAR10.standardClassNames))
        let g = try decode(bytes)
        assertWellFormed(g)
        XCTAssertEqual(g.nodes.map(\.op), ["Conv", "MaxPool", "Relu", "Conv", "MaxPool", "Relu", "Flatten",
                                           "Gemm", "Relu", "Gemm", "Relu", "Gemm"])
        XCTAssertEqual(g.input.name, "input")
        XCTAssertEqual(g.input.dims, ["N", "3", "32", "32"])
        XCTAssertEqual(g.output.name, "logits")
        XCTAssertEqual(g.output.dims, ["N", "10"])
        // The initializers are the parameters, by their PyTorch names, shapes and values, bit for bit.
        XCTAssertEqual(g.initializerOrder, net.parameters.entries.map(\.name))
        for e in net.parameters.entries {
            let t = try XCTUnwrap(g.initializers[e.name])
            XCTAssertEqual(t.dims, e.shape, e.name)
            XCTAssertEqual(t.values.map(\.bitPattern), (net.parameters.values(of: e.name) ?? []).map(\.bitPattern), e.name)
        }
        let conv1 = g.nodes[0], pool = g.nodes[1], flatten = g.nodes[6], fc1 = g.nodes[7]
        XCTAssertEqual(conv1.inputs, ["input", "conv1.weight", "conv1.bias"])
        XCTAssertEqual(conv1.attributes, ["kernel_shape": [5, 5], "strides": [1, 1], "pads": [0, 0, 0, 0]])
        XCTAssertEqual(pool.attributes, ["kernel_shape": [2, 2], "strides": [2, 2]])
        XCTAssertEqual(flatten.attributes, ["axis": [1]])
        XCTAssertEqual(fc1.inputs, [flatten.output, "fc1.weight", "fc1.bias"])
        XCTAssertEqual(fc1.attributes, ["transB": [1]])
        XCTAssertEqual(g.metadata["model"], "cifar-lenet")
        XCTAssertEqual(g.metadata["normalization_mean"], "0.4,0.5,0.6")
        XCTAssertEqual(g.metadata["normalization_std"], "0.2,0.25,0.3")
        XCTAssertEqual(Checkpoint.classNames(metadata: g.metadata, classes: 10), CIFAR10.standardClassNames)
        XCTAssertEqual(g.metadata["lenetkit_version"], LeNetKitVersion.string)
    }

    func testLeNet5Graph() throws {
        let net = try Models.lenet5(seed: 2)
        let bytes = try ONNXExport.encode(net, metadata: .init(model: "lenet5", normalization: .half, classNames: (0..<10).map(String.init)))
        let g = try decode(bytes)
        assertWellFormed(g)
        let squash = ["Mul", "Tanh", "Mul"]
        XCTAssertEqual(g.nodes.map(\.op), ["Conv"] + squash + ["Conv"] + squash + ["Conv"] + squash + ["Conv"] + squash
                       + ["Conv"] + squash + ["Flatten", "Gemm"] + squash + ["Gemm"])
        XCTAssertEqual(g.input.dims, ["N", "1", "32", "32"])
        // Subsampling: a depthwise Conv whose 2×2 kernel is w[c] in every tap, stride 2, and its bias.
        for (name, channels) in [("s2", 6), ("s4", 16)] {
            let node = try XCTUnwrap(g.nodes.first { $0.output == name })
            XCTAssertEqual(node.attributes, ["kernel_shape": [2, 2], "strides": [2, 2], "group": [channels]])
            let kernel = try XCTUnwrap(g.initializers[node.inputs[1]])
            XCTAssertEqual(kernel.dims, [channels, 1, 2, 2])
            let w = net.parameters.values(of: name + ".weight") ?? []
            XCTAssertEqual(kernel.values, w.flatMap { [$0, $0, $0, $0] })
            XCTAssertEqual(node.inputs[2], name + ".bias")
        }
        // C3: a dense Conv; its unconnected kernels are exactly 0.
        let c3 = try XCTUnwrap(g.initializers["c3.weight"])
        XCTAssertEqual(c3.dims, [16, 6, 5, 5])
        for (o, inputs) in PartialConv2D.lecunC3Table.enumerated() {
            for c in 0..<6 {
                let kernel = c3.values[(o * 6 + c) * 25..<(o * 6 + c + 1) * 25]
                XCTAssertEqual(kernel.allSatisfy { $0 == 0 }, !inputs.contains(c), "c3 map \(o), input \(c)")
            }
        }
        // The scaled tanh: x·(2/3), tanh, ·1.7159, with the layer's own constants.
        let tanh = Tanh.lecun()
        let mul = g.nodes.filter { $0.op == "Mul" }
        XCTAssertEqual(mul.count, 12)
        for (k, node) in mul.enumerated() {
            let constant = try XCTUnwrap(g.initializers[node.inputs[1]])
            XCTAssertEqual(constant.dims, [], "a scalar")
            XCTAssertEqual(constant.values, [k % 2 == 0 ? tanh.slope : tanh.amplitude])
        }
        XCTAssertEqual(g.initializers.count, net.parameters.entries.count - 2 + 2 + 12,
                       "the parameters (s2 and s4's weights as kernels) and 12 scalars")
    }

    // MARK: What cannot be exported

    final class Custom: Layer {
        let name = "mystery"
        var kind: String { "Custom" }
        func replica() -> any Layer { Custom() }
        func outputShape(for input: FeatureShape) throws -> FeatureShape { input }
        func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {}
        func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                      _ y: UnsafePointer<Float>, batch n: Int) {}
    }

    func testALayerWithoutAnONNXFormIsNamed() throws {
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
    func testWriteIsAtomic() throws {
        let dir = try temporaryDirectory(self)
        let path = dir.appendingPathComponent("model.onnx").path
        try ONNXExport.write(Models.cifarLeNet(), metadata: .init(model: "cifar-lenet", normalization: .half,
                                                                  classNames: CIFAR10.standardClassNames), to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(try decode([UInt8](before)).nodes.count, 12)
        let bad = try Network(inputShape: FeatureShape(channels: 1, height: 4, width: 4), layers: [Custom()])
        assertError("mystery") { try ONNXExport.write(bad, metadata: .init(model: "x", normalization: .half, classNames: ["a"]), to: path) }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["model.onnx"])
    }
}

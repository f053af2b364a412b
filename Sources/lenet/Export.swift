import ArgumentParser
import Foundation
import LeNetKit

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint as an ONNX model (opset \(ONNXExport.opset)) for ONNX Runtime and other runtimes.",
        discussion: """
            The model takes the normalized (N, C, H, W) float tensor, as the PyTorch model's forward does, \
            and gives the logits (N, classes). Its metadata_props hold normalization_mean, normalization_std, \
            class_names, model and lenetkit_version.
            """)

    @Option(help: "The weights (safetensors), from `lenet train --output` or PyTorch's state_dict.")
    var weights: String

    @Option(help: "The model, when the file does not say (default: from its metadata or tensor names).")
    var model: ModelKind?

    @Option(help: "The ONNX file to write.")
    var output: String

    func run() throws {
        try checkWritable(output, flag: "--output")
        let loaded = try Checkpoint.loadNetwork(path: weights, model: model)
        let names = Checkpoint.classNames(metadata: loaded.metadata, classes: loaded.network.outputShape.count)
        try ONNXExport.write(loaded.network, metadata: ONNXExport.Metadata(
            model: loaded.model.rawValue, normalization: loaded.normalization, classNames: names), to: output)
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        print("wrote \(output): \(loaded.model.rawValue), opset \(ONNXExport.opset), \(size) bytes")
    }
}

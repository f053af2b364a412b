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

    @Option(help: "The network (a built-in name or a JSON description), overriding the file's (default: its 'network' metadata, else its model's name or tensor names).")
    var model: String?

    @Option(help: "The ONNX file to write.")
    var output: String

    func run() throws {
        try checkWritable(output, flag: "--output")
        let loaded = try Checkpoint.loadNetwork(path: weights, description: model.map { try modelDescription($0, forCheckpoint: weights) })
        let names = Checkpoint.classNames(metadata: loaded.metadata, classes: loaded.network.outputShape.count)
        try ONNXExport.write(loaded.network, metadata: ONNXExport.Metadata(
            model: displayName(loaded.network), normalization: loaded.normalization, classNames: names), to: output)
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        print("wrote \(output): \(displayName(loaded.network)), opset \(ONNXExport.opset), \(size) bytes")
    }
}

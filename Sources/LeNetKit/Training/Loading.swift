import Foundation

extension Network {
    /// The network `weights` holds, with its weights; or, without
    /// `weights`, the network `model` names (a built-in name or a JSON
    /// description file), freshly initialized with seed 0.
    /// - Throws: `LeNetError` naming the file, or the model option when the
    ///   name is neither a built-in network nor a file.
    @_spi(CLI) public static func named(_ model: String, weights: String? = nil) throws -> Network {
        if let weights { return try Checkpoint.loadNetwork(path: weights).network }
        return try Network(TrainingRun.description(model), seed: 0, initialization: .pytorch, naming: model)
    }

    /// `init(description, seed:initialization:)`, its errors naming the
    /// description file `model` names (a shape that does not chain is found
    /// only here).
    convenience init(_ description: NetworkDescription, seed: UInt64, initialization: WeightInitialization, naming model: String?) throws {
        do {
            try self.init(description, seed: seed, initialization: initialization)
        } catch let error as LeNetError {
            guard let model, !NetworkDescription.builtInNames.contains(model) else { throw error }
            throw LeNetError(error.description, subject: model)
        }
    }
}

extension Classifier {
    /// `init(weights:description:)` with the network `model` names
    /// (overriding the file's), or the file's own when nil.
    @_spi(CLI) public convenience init(weights path: String, model: String?) throws {
        try self.init(weights: path, description: Checkpoint.networkDescription(path: path, model: model))
    }
}

extension LeNetError {
    /// `body`'s result; an error of `body` that names no file (a name that
    /// is neither a built-in network nor a file) is about the model option.
    static func aboutModel<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as LeNetError where error.subject == nil {
            throw LeNetError(error.message, option: .model)
        }
    }
}

extension ONNXExport {
    /// Writes the checkpoint at `weights` as an ONNX model with its
    /// normalization, class names and network name in the metadata.
    /// - Parameters:
    ///   - weights: the checkpoint.
    ///   - model: the network, overriding the file's (nil: the file's).
    ///   - path: the ONNX file.
    /// - Returns: "wrote PATH: NETWORK, opset 13, N bytes".
    /// - Throws: `LeNetError` naming the file at fault.
    @discardableResult
    public static func write(checkpoint weights: String, model: String? = nil, to path: String) throws -> String {
        try OutputPath.checkWritable(path, option: .output)
        let loaded = try Checkpoint.loadNetwork(path: weights, model: model)
        let names = Checkpoint.classNames(metadata: loaded.metadata, classes: loaded.network.outputShape.count)
        try write(loaded.network, metadata: Metadata(model: loaded.network.displayName, normalization: loaded.normalization,
                                                     classNames: names), to: path)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        return "wrote \(path): \(loaded.network.displayName), opset \(opset), \(size) bytes"
    }
}

extension EpochResult {
    /// The time left in the epoch at the pace so far: "1:05", "1:02:03".
    @_spi(CLI) public var remaining: String {
        let s = Int(secondsRemaining.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

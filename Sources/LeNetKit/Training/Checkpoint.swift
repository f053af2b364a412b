import Foundation

/// Weights in safetensors, named and shaped exactly as PyTorch's
/// `state_dict()` names and shapes them, so that
/// `model.load_state_dict(safetensors.torch.load_file(path))` works; and,
/// beside them in `<path>.state`, what `--resume` needs to continue exactly:
/// optimizer moments and step count, the shuffling generator, the epoch.
public enum Checkpoint {
    /// The metadata keys LeNetKit writes.
    public enum Key {
        public static let format = "format"
        public static let model = "model"
        public static let epoch = "epoch"
        public static let imagesSeen = "images_seen"
        public static let normalizationMean = "normalization_mean"
        public static let normalizationStd = "normalization_std"
        public static let seed = "seed"
        public static let dataset = "dataset"
    }

    /// The training-state file that goes with a weights file.
    public static func statePath(for path: String) -> String { path + ".state" }

    /// The network's parameters as safetensors tensors, in state_dict order.
    public static func tensors(of network: Network) -> [SafetensorsTensor] {
        network.parameters.entries.map { e in
            SafetensorsTensor(name: e.name, shape: e.shape, values: network.parameters.values(of: e.name) ?? [])
        }
    }

    /// Writes the weights atomically.
    /// - Throws: `LeNetError` naming the path when it cannot be written; the
    ///   previous file is then left as it was.
    public static func saveWeights(_ network: Network, to path: String, metadata: [String: String]) throws {
        var meta = metadata
        meta[Key.format] = "lenetkit-1"
        try SafetensorsFile(tensors: tensors(of: network), metadata: meta).write(path: path)
    }

    /// Copies every parameter of `network` from `file`: each must be present
    /// with the right shape, and no tensor may be left over.
    /// - Throws: `LeNetError` naming `source` and the tensor.
    public static func load(_ file: SafetensorsFile, into network: Network, source: String) throws {
        let known = Set(network.parameters.entries.map(\.name))
        for e in network.parameters.entries {
            guard let t = file[e.name] else {
                throw LeNetError("missing tensor '\(e.name)' (expected shape \(e.shape))", subject: source)
            }
            guard t.shape == e.shape else {
                throw LeNetError("tensor '\(e.name)' has shape \(t.shape), expected \(e.shape)", subject: source)
            }
            if let bad = t.values.firstIndex(where: { !$0.isFinite }) {
                throw LeNetError("tensor '\(e.name)' holds a non-finite value (\(t.values[bad])) at index \(bad)", subject: source)
            }
        }
        if let extra = file.tensors.map(\.name).first(where: { !known.contains($0) }) {
            throw LeNetError("unexpected tensor '\(extra)' for this model", subject: source)
        }
        for e in network.parameters.entries {
            if let t = file[e.name] { try network.parameters.setValues(t.values, of: e.name) }
        }
    }

    /// Reads a weights file and builds the network it holds: the model named
    /// in its metadata, or the one whose parameter names it carries.
    /// - Returns: the network, the file's metadata, and its normalization
    ///   (the default 0.5/0.5 when the file has none).
    public static func loadNetwork(path: String, model: ModelKind? = nil) throws
        -> (network: Network, model: ModelKind, metadata: [String: String], normalization: Normalization) {
        let file = try SafetensorsFile.read(path: path)
        let kind: ModelKind
        if let model {
            kind = model
        } else if let name = file.metadata[Key.model] {
            guard let k = ModelKind(rawValue: name) else {
                throw LeNetError("unknown model '\(name)' in the metadata; known: \(ModelKind.allCases.map(\.rawValue).joined(separator: ", "))", subject: path)
            }
            kind = k
        } else if let k = ModelKind.guess(tensorNames: file.tensors.map(\.name)) {
            kind = k
        } else {
            throw LeNetError("its tensors (\(file.tensors.map(\.name).prefix(4).joined(separator: ", "))…) match no known model", subject: path)
        }
        let network = kind.make()
        try load(file, into: network, source: path)
        var normalization = Normalization.half
        if let m = file.metadata[Key.normalizationMean], let s = file.metadata[Key.normalizationStd] {
            guard let mean = parseFloats(m), let std = parseFloats(s),
                  let n = try? Normalization(mean: mean, std: std, channels: network.inputShape.channels) else {
                throw LeNetError("bad normalization metadata: mean '\(m)', std '\(s)'", subject: path)
            }
            normalization = n
        }
        return (network, kind, file.metadata, normalization)
    }

    /// "0.5,0.5,0.5" → [0.5, 0.5, 0.5], nil when any part is not a number.
    public static func parseFloats(_ text: String) -> [Float]? {
        let parts = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        return parts.compactMap { $0 }
    }

    /// [0.5, 0.5] → "0.5,0.5".
    public static func formatFloats(_ values: [Float]) -> String {
        values.map { "\($0)" }.joined(separator: ",")
    }
}

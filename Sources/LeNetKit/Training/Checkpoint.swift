import Foundation

/// Weights in safetensors, named and shaped exactly as PyTorch's
/// `state_dict()` names and shapes them, so that
/// `model.load_state_dict(safetensors.torch.load_file(path))` works; and,
/// beside them in `<path>.state`, what `--resume` needs to continue exactly:
/// optimizer moments and step count, the shuffling generator, the epoch.
public enum Checkpoint {
    /// The metadata keys LeNetKit writes.
    public enum Key {
        /// The file format, "lenetkit-1".
        public static let format = "format"
        /// The model's name, a `ModelKind` raw value (`cifar-lenet`, `lenet5`).
        public static let model = "model"
        /// Epochs completed.
        public static let epoch = "epoch"
        /// Training images processed.
        public static let imagesSeen = "images_seen"
        /// The normalization mean per channel, comma-separated: "0.5" or "0.49,0.48,0.45".
        public static let normalizationMean = "normalization_mean"
        /// The normalization std per channel, comma-separated.
        public static let normalizationStd = "normalization_std"
        /// The training seed.
        public static let seed = "seed"
        /// The training dataset's name, e.g. "CIFAR-10 train".
        public static let dataset = "dataset"
        /// The class names by label, as a JSON array of strings.
        public static let classNames = "class_names"
        /// The training augmentation, e.g. "crop 4, flip"; absent when none.
        public static let augmentation = "augmentation"
    }

    /// The training-state file that goes with a weights file.
    public static func statePath(for path: String) -> String { path + ".state" }

    /// The network's parameters as safetensors tensors, in state_dict order.
    public static func tensors(of network: Network) -> [SafetensorsTensor] {
        tensors(of: network, values: Array(network.parameters.values))
    }

    /// `values`, in the parameter store's layout (a weight average's), as
    /// the network's tensors.
    static func tensors(of network: Network, values: [Float]) -> [SafetensorsTensor] {
        network.parameters.entries.map { e in
            SafetensorsTensor(name: e.name, shape: e.shape, values: Array(values[e.offset..<e.offset + e.count]))
        }
    }

    /// Writes the weights atomically.
    /// - Parameters:
    ///   - network: whose parameters to write, named as PyTorch's state_dict.
    ///   - path: the safetensors file.
    ///   - metadata: string pairs stored in the header (`Key`); `format` is added.
    /// - Throws: `LeNetError` naming the path when it cannot be written; the
    ///   previous file is then left as it was.
    public static func saveWeights(_ network: Network, to path: String, metadata: [String: String]) throws {
        try saveWeights(tensors(of: network), to: path, metadata: metadata)
    }

    /// `saveWeights(_:to:metadata:)` of tensors already made.
    static func saveWeights(_ tensors: [SafetensorsTensor], to path: String, metadata: [String: String]) throws {
        var meta = metadata
        meta[Key.format] = "lenetkit-1"
        try SafetensorsFile(tensors: tensors, metadata: meta).write(path: path)
    }

    /// Copies every parameter of `network` from `file`: each must be present
    /// with the right shape, and no tensor may be left over.
    /// - Parameters:
    ///   - file: a parsed safetensors file.
    ///   - network: the network whose parameters are overwritten.
    ///   - source: the file's path, for error messages.
    /// - Throws: `LeNetError` naming `source` and the tensor.
    public static func load(_ file: SafetensorsFile, into network: Network, source: String) throws {
        let values = try parameterValues(in: file, of: network, source: source)
        let known = Set(network.parameters.entries.map(\.name))
        if let extra = file.tensors.map(\.name).first(where: { !known.contains($0) }) {
            throw LeNetError("unexpected tensor '\(extra)' for this model", subject: source)
        }
        _ = network.parameters.values.update(from: values)
    }

    /// Every parameter of `network` as `file` holds it, under its name with
    /// `prefix` before it, in the parameter store's layout: each present,
    /// with the parameter's shape, and finite. Other tensors are ignored.
    /// - Parameters:
    ///   - what: what the tensors are, for the message when one is missing.
    ///   - source: the file's path, for error messages.
    /// - Throws: `LeNetError` naming `source` and the tensor.
    static func parameterValues(in file: SafetensorsFile, of network: Network, prefix: String = "", what: String? = nil,
                                source: String) throws -> [Float] {
        var values = [Float](repeating: 0, count: network.parameters.count)
        for e in network.parameters.entries {
            let name = prefix + e.name
            guard let t = file[name] else {
                throw LeNetError("missing tensor '\(name)' (expected shape \(e.shape)" + (what.map { "; \($0)" } ?? "") + ")", subject: source)
            }
            guard t.shape == e.shape else {
                throw LeNetError("tensor '\(name)' has shape \(t.shape), expected \(e.shape)", subject: source)
            }
            if let bad = t.values.firstIndex(where: { !$0.isFinite }) {
                throw LeNetError("tensor '\(name)' holds a non-finite value (\(t.values[bad])) at index \(bad)", subject: source)
            }
            values.replaceSubrange(e.offset..<e.offset + e.count, with: t.values)
        }
        return values
    }

    /// Reads a weights file and builds the network it holds: the model named
    /// in its metadata, or the one whose parameter names it carries.
    /// - Parameters:
    ///   - path: a safetensors file from `lenet train` or PyTorch.
    ///   - model: the model to build, overriding the file's metadata and tensor names.
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
        } else if let k = try ModelKind.guess(tensorNames: file.tensors.map(\.name)) {
            kind = k
        } else {
            throw LeNetError("its tensors (\(file.tensors.map(\.name).prefix(4).joined(separator: ", "))…) match no known model", subject: path)
        }
        // The class count is the last layer's: fc3.bias's length for a
        // checkpoint of a 3-class image folder, 10 for CIFAR-10.
        var classes = 10
        if let bias = file.tensors.first(where: { $0.name == kind.outputBiasName }), bias.shape.count == 1 {
            guard (1...256).contains(bias.shape[0]) else {
                throw LeNetError("\(kind.outputBiasName) has \(bias.shape[0]) classes; the models take 1 to 256", subject: path)
            }
            classes = bias.shape[0]
        }
        let network = try kind.make(classes: classes)
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

    /// The class names as `Key.classNames` stores them: a JSON array of strings.
    public static func encodeClassNames(_ names: [String]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: names), let text = String(data: data, encoding: .utf8) else {
            return "[]"
        }
        return text
    }

    /// The class names for a network with `classes` outputs, from a
    /// checkpoint's metadata, in this order of preference:
    /// 1. the `class_names` key, when it holds `classes` names;
    /// 2. the dataset named by the `dataset` key: CIFAR-10's names for a
    ///    "CIFAR-10 …" dataset, Fashion-MNIST's for "Fashion-MNIST …", MNIST's
    ///    digits for "MNIST …";
    /// 3. "0", "1", … otherwise.
    /// - Parameters:
    ///   - metadata: a checkpoint's metadata.
    ///   - classes: the network's number of outputs.
    public static func classNames(metadata: [String: String], classes: Int) -> [String] {
        if let text = metadata[Key.classNames], let data = text.data(using: .utf8),
           let names = (try? JSONSerialization.jsonObject(with: data)) as? [String], names.count == classes {
            return names
        }
        let dataset = (metadata[Key.dataset] ?? "").lowercased()
        let known: [String]?
        if dataset.hasPrefix("cifar-10") {
            known = CIFAR10.standardClassNames
        } else if dataset.hasPrefix("fashion-mnist") {
            known = MNISTVariant.fashionMNIST.classNames
        } else if dataset.hasPrefix("mnist") {
            known = MNISTVariant.mnist.classNames
        } else {
            known = nil
        }
        if let known, known.count == classes { return known }
        return (0..<classes).map(String.init)
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

import Foundation

/// Weights in safetensors, named and shaped exactly as PyTorch's
/// `state_dict()` names and shapes them, so that
/// `model.load_state_dict(safetensors.torch.load_file(path))` works; and,
/// beside them in `<path>.state`, what `--resume` needs to continue exactly:
/// optimizer moments and step count, the shuffling generator, the epoch.
public enum Checkpoint {
    /// The format LeNetKit writes, in both files' `format` metadata.
    static let format = "lenetkit-2"
    /// The format before the training state became one JSON value; its
    /// state files still resume (`TrainingState.init(lenetkit1:imagesSeen:source:)`).
    static let legacyFormat = "lenetkit-1"

    /// The metadata keys LeNetKit writes.
    enum Key {
        /// The file format, "lenetkit-2" ("lenetkit-1" in files written
        /// before the training state became one JSON value).
        static let format = "format"
        /// The network's name (`cifar-lenet`, `lenet5`), when it has one;
        /// files without `network` name a built-in network here.
        static let model = "model"
        /// The network's description as JSON (`NetworkDescription.json()`):
        /// what `loadNetwork` builds, with no model named anywhere else.
        static let network = "network"
        /// Epochs completed.
        static let epoch = "epoch"
        /// Training images processed.
        static let imagesSeen = "images_seen"
        /// The normalization mean per channel, comma-separated: "0.5" or "0.49,0.48,0.45".
        static let normalizationMean = "normalization_mean"
        /// The normalization std per channel, comma-separated.
        static let normalizationStd = "normalization_std"
        /// The training seed.
        static let seed = "seed"
        /// The training dataset's name, e.g. "CIFAR-10 train".
        static let dataset = "dataset"
        /// The class names by label, as a JSON array of strings.
        static let classNames = "class_names"
        /// The training augmentation, e.g. "crop 4, flip"; absent when none.
        static let augmentation = "augmentation"
        /// How a new image is brought to the network's input
        /// (`ImagePreprocessing`): "digit" for a network trained on MNIST,
        /// "resize" otherwise.
        static let preprocessing = "preprocessing"
    }

    /// How images are brought to the input of a network trained as
    /// `metadata` says: its `preprocessing` key; else `.digit` when its
    /// dataset is MNIST (files written before the key); else `.resize`.
    /// - Throws: `LeNetError` (subject `subject`) when the key holds
    ///   something else.
    static func preprocessing(metadata: [String: String], subject: String) throws -> ImagePreprocessing {
        if let text = metadata[Key.preprocessing] {
            guard let value = ImagePreprocessing(rawValue: text) else {
                throw LeNetError("metadata '\(Key.preprocessing)' is '\(text)'; expected "
                    + ImagePreprocessing.allCases.map { "'\($0.rawValue)'" }.joined(separator: " or "), subject: subject)
            }
            return value
        }
        return preprocessing(trainedOn: metadata[Key.dataset] ?? "")
    }

    /// `.digit` for MNIST's handwritten digits (a dataset named "MNIST …"),
    /// `.resize` for any other dataset.
    static func preprocessing(trainedOn dataset: String) -> ImagePreprocessing {
        dataset.lowercased().hasPrefix(MNISTVariant.mnist.displayName.lowercased() + " ") ? .digit : .resize
    }

    /// The training-state file that goes with a weights file.
    @_spi(CLI) public static func statePath(for path: String) -> String { path + ".state" }

    /// The network's parameters and buffers as safetensors tensors, in
    /// state_dict order within each.
    static func tensors(of network: Network) -> [SafetensorsTensor] {
        tensors(of: network, values: Array(network.parameters.values))
    }

    /// `values`, in the parameter store's layout (a weight average's), as
    /// the network's tensors, followed by its buffers.
    static func tensors(of network: Network, values: [Float]) -> [SafetensorsTensor] {
        let buffers = network.buffers.values
        return network.parameters.entries.map { e in
            SafetensorsTensor(name: e.name, shape: e.shape, values: Array(values[e.offset..<e.offset + e.count]))
        } + network.buffers.entries.map { e in
            SafetensorsTensor(name: e.name, shape: e.shape, values: Array(buffers[e.offset..<e.offset + e.count]))
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
        meta[Key.format] = format
        try SafetensorsFile(tensors: tensors, metadata: meta).write(path: path)
    }

    /// Copies every parameter of `network` from `file`: each must be present
    /// with the right shape, and no tensor may be left over.
    /// - Parameters:
    ///   - file: a parsed safetensors file.
    ///   - network: the network whose parameters are overwritten.
    ///   - source: the file's path, for error messages.
    /// - Throws: `LeNetError` naming `source` and the tensor.
    static func load(_ file: SafetensorsFile, into network: Network, source: String) throws {
        let values = try parameterValues(in: file, of: network, source: source)
        let buffers = try storeValues(in: file, of: network.buffers, prefix: "", what: "a buffer", source: source)
        let known = Set((network.parameters.entries + network.buffers.entries).map(\.name))
        if let extra = file.tensors.map(\.name).first(where: { !known.contains($0) }) {
            throw LeNetError("unexpected tensor '\(extra)' for this model", subject: source)
        }
        _ = network.parameters.values.update(from: values)
        _ = network.buffers.values.update(from: buffers)
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
        try storeValues(in: file, of: network.parameters, prefix: prefix, what: what, source: source)
    }

    /// `parameterValues` for any store's tensors (the buffers').
    static func storeValues(in file: SafetensorsFile, of store: ParameterStore, prefix: String, what: String?,
                            source: String) throws -> [Float] {
        var values = [Float](repeating: 0, count: store.count)
        for e in store.entries {
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

    /// Reads a weights file and builds the network it holds: the one its
    /// `network` metadata describes; for files written before descriptions,
    /// the built-in network its `model` key names; for a PyTorch
    /// `state_dict` saved as is, the built-in network whose tensor names it
    /// carries.
    /// - Parameters:
    ///   - path: a safetensors file from `lenet train` or PyTorch.
    ///   - description: the network to build, overriding the file's.
    ///   - registry: the layer types its description may name.
    /// - Returns: the network, the file's metadata, and its normalization
    ///   (the default 0.5/0.5 when the file has none).
    /// - Throws: `LeNetError` naming the file: unreadable, a description
    ///   that is malformed or disagrees with the tensors, a missing,
    ///   misshapen or non-finite tensor.
    public static func loadNetwork(path: String, description: NetworkDescription? = nil, registry: LayerRegistry = .standard) throws
        -> (network: Network, metadata: [String: String], normalization: Normalization) {
        let file = try SafetensorsFile.read(path: path)
        let fromMetadata = description == nil && file.metadata[Key.network] != nil
        let chosen = try description ?? networkDescription(of: file, path: path, registry: registry)
        let network: Network
        do {
            network = try Network(chosen)
        } catch let error as LeNetError {
            throw LeNetError((fromMetadata ? "its 'network' metadata: " : "") + error.description, subject: path)
        }
        do {
            try load(file, into: network, source: path)
        } catch let error as LeNetError where fromMetadata {
            throw LeNetError("its 'network' metadata disagrees with its tensors: \(error.message)", subject: path)
        }
        var normalization = Normalization.half
        if let m = file.metadata[Key.normalizationMean], let s = file.metadata[Key.normalizationStd] {
            guard let mean = parseFloats(m), let std = parseFloats(s),
                  let n = try? Normalization(mean: mean, std: std, channels: network.inputShape.channels) else {
                throw LeNetError("bad normalization metadata: mean '\(m)', std '\(s)'", subject: path)
            }
            normalization = n
        }
        return (network, file.metadata, normalization)
    }

    /// The network a checkpoint holds, without building it: its `network`
    /// metadata; for files written before descriptions, the built-in
    /// network its `model` key names, with the class count of its last
    /// bias; for a PyTorch `state_dict` saved as is, the built-in network
    /// whose tensor names it carries.
    /// - Throws: `LeNetError` naming the file.
    static func networkDescription(path: String, registry: LayerRegistry = .standard) throws -> NetworkDescription {
        try networkDescription(of: try SafetensorsFile.read(path: path), path: path, registry: registry)
    }

    static func networkDescription(of file: SafetensorsFile, path: String, registry: LayerRegistry) throws -> NetworkDescription {
        if let json = file.metadata[Key.network] {
            do {
                return try NetworkDescription(json: Data(json.utf8), registry: registry)
            } catch let error as LeNetError {
                throw LeNetError("its 'network' metadata: \(error.description)", subject: path)
            }
        }
        if let name = file.metadata[Key.model] {
            guard NetworkDescription.builtInNames.contains(name) else {
                throw LeNetError("unknown model '\(name)' in the metadata; known: \(NetworkDescription.builtInNames.joined(separator: ", "))", subject: path)
            }
            return try builtIn(name, fitting: file, path: path)
        }
        let shapes = Dictionary(file.tensors.map { ($0.name, $0.shape) }, uniquingKeysWith: { a, _ in a })
        guard let guessed = NetworkDescription.guess(tensors: shapes) else {
            throw LeNetError("its tensors (\(file.tensors.map(\.name).prefix(4).joined(separator: ", "))…) match no known model", subject: path)
        }
        return guessed
    }

    /// The network `nameOrPath` names (`NetworkDescription.named`) for the
    /// checkpoint at `path`: a built-in network gets as many classes as the
    /// file's last bias has (3 for a 3-class image folder), a description
    /// file keeps its own.
    /// - Throws: `LeNetError` naming the file.
    static func networkDescription(path: String, named nameOrPath: String,
                                          registry: LayerRegistry = .standard) throws -> NetworkDescription {
        guard NetworkDescription.builtInNames.contains(nameOrPath) else {
            return try NetworkDescription.named(nameOrPath, registry: registry)
        }
        return try builtIn(nameOrPath, fitting: try SafetensorsFile.read(path: path), path: path)
    }

    /// The built-in network `name` with the class count of `file`'s last
    /// bias (10 when it has none).
    private static func builtIn(_ name: String, fitting file: SafetensorsFile, path: String) throws -> NetworkDescription {
        let plain = try NetworkDescription.builtIn(name)
        var classes = 10
        if let last = plain.layers.last?.name, let bias = file[last + ".bias"], bias.shape.count == 1 {
            guard (1...256).contains(bias.shape[0]) else {
                throw LeNetError("\(last).bias has \(bias.shape[0]) classes; the models take 1 to 256", subject: path)
            }
            classes = bias.shape[0]
        }
        return try NetworkDescription.builtIn(name, classes: classes)
    }

    /// The training seed a checkpoint records (`seed`), or 0 when it has none.
    /// - Throws: `LeNetError` naming the file when it cannot be read or its
    ///   seed is not a whole number.
    static func seed(path: String) throws -> UInt64 {
        guard let text = try SafetensorsFile.read(path: path).metadata[Key.seed] else { return 0 }
        guard let seed = UInt64(text) else { throw LeNetError("has seed '\(text)', expected a whole number", subject: path) }
        return seed
    }

    /// Throws unless a checkpoint's metadata describes `network` (or, for
    /// files from before descriptions, names its built-in model).
    static func checkSameNetwork(_ metadata: [String: String], as network: Network, source: String) throws {
        if let json = metadata[Key.network] {
            // Compared as descriptions, re-encoded: another encoder's number formatting is no difference.
            let theirs = (try? NetworkDescription(json: Data(json.utf8)))?.json() ?? json
            guard theirs == network.descriptionJSON else {
                let theirs = (try? NetworkDescription(json: Data(json.utf8)))?.name ?? "another network"
                throw LeNetError("holds \(theirs == network.networkDescription.name ? "another description of '\(theirs)'" : "'\(theirs)'"), "
                                 + "this run trains '\(network.networkDescription.name ?? "a custom network")'", subject: source)
            }
        } else if let m = metadata[Key.model], let name = network.networkDescription.name, m != name {
            throw LeNetError("holds a '\(m)' model, this run trains '\(name)'", subject: source)
        }
    }

    /// The class names as `Key.classNames` stores them: a JSON array of strings.
    static func encodeClassNames(_ names: [String]) -> String {
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
    static func classNames(metadata: [String: String], classes: Int) -> [String] {
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
    static func parseFloats(_ text: String) -> [Float]? {
        let parts = text.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        return parts.compactMap { $0 }
    }

    /// [0.5, 0.5] → "0.5,0.5".
    static func formatFloats(_ values: [Float]) -> String {
        values.map { "\($0)" }.joined(separator: ",")
    }
}

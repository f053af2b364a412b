import Foundation

/// What a configuration will hold in memory, worked out before anything is
/// allocated, from the same sizes the buffers are made with: an embedding
/// application (or `lenet`) can ask first and refuse a configuration that
/// does not fit, instead of finding out from the OOM killer.
public struct MemoryEstimate: Sendable, CustomStringConvertible {
    /// One part of the total: `activations`, `images`, `optimizer state`.
    struct Item: Sendable, Equatable {
        /// What the bytes are for.
        var name: String
        /// How many.
        var bytes: Int
        /// - Parameters:
        ///   - name: what the bytes are for.
        ///   - bytes: how many.
        init(_ name: String, bytes: Int) {
            self.name = name
            self.bytes = bytes
        }
    }

    /// The parts, in the order they were added; an item's name appears once.
    private(set) var items: [Item] = []

    /// An estimate of nothing.
    init() {}

    /// The sum of the items.
    public var bytes: Int { items.reduce(0) { $0 &+ $1.bytes } }

    /// The bytes of the item named `name` (0 when there is none).
    subscript(name: String) -> Int { items.first { $0.name == name }?.bytes ?? 0 }

    /// Adds `bytes` to the item `name` (made when new).
    mutating func add(_ name: String, bytes: Int) {
        if let i = items.firstIndex(where: { $0.name == name }) {
            items[i].bytes = items[i].bytes &+ bytes
        } else {
            items.append(Item(name, bytes: bytes))
        }
    }

    /// Adds every item of `other`.
    mutating func add(_ other: MemoryEstimate) {
        for item in other.items { add(item.name, bytes: item.bytes) }
    }

    /// "about 212.4 MB (images 184.3 MB, activations 12.1 MB, …)".
    public var description: String {
        "about \(ByteCount(bytes))" + (items.isEmpty ? "" : " ("
            + items.filter { $0.bytes > 0 }.map { "\($0.name) \(ByteCount($0.bytes))" }.joined(separator: ", ") + ")")
    }
}

extension Network {
    /// What `DataParallel(network:threads:).reserve(batch: n)` allocates
    /// for a network made fresh like this one: every part's activations and
    /// their gradients, its layers' scratch and its parameter gradients, and
    /// the shared parameter values. Nothing is allocated to find out.
    /// - Parameters:
    ///   - n: the batch size.
    ///   - threads: the runner's threads: at most this many parts.
    ///   - backward: with the backward pass's buffers (training), or only
    ///     what forward needs (evaluation, `reserve(batch:backward: false)`).
    func memoryEstimate(batch n: Int, threads: Int, backward: Bool = true) -> MemoryEstimate {
        memoryEstimate(batch: n, parts: Self.parts(batch: n, threads: threads), workers: threads, backward: backward)
    }

    /// What `reserve(batch: n, backward:)` allocates for a network made
    /// fresh like this one, alone: its activations (and their gradients),
    /// its layers' scratch for `threads` workers, its parameters.
    public func memoryEstimate(batch n: Int, backward: Bool = true) -> MemoryEstimate {
        memoryEstimate(batch: n, parts: 1, workers: threads, backward: backward)
    }

    /// A batch of `n` in `parts` parts, the first network's scratch for `workers`.
    private func memoryEstimate(batch n: Int, parts: Int, workers: Int, backward: Bool) -> MemoryEstimate {
        let largest = (n + parts - 1) / max(parts, 1)
        var estimate = MemoryEstimate()
        let P = 4 * max(parameters.count, 1)
        estimate.add("parameters", bytes: 2 * P)  // values and gradients
        estimate.add("buffers", bytes: 4 * max(buffers.count, 1))  // running statistics, shared by the replicas
        // The replicas share the values; their gradients exist only for backward.
        estimate.add("replica gradients", bytes: backward ? P * (parts - 1) : 0)
        let perSample = ([inputShape] + shapes).reduce(0) { $0 + BatchBuffer.bytes(perSample: $1.count, batch: largest) }
        estimate.add("activations", bytes: (backward ? 2 : 1) * perSample * parts)  // values, and gradients
        // This network's layers keep scratch for every thread (it also runs
        // whole batches on its own); a replica's, for the one it runs on.
        var shape = inputShape, scratch = 0
        for (layer, out) in zip(layers, shapes) {
            scratch += Self.bytes(layer.workspace(batch: largest, input: shape, workers: max(workers, 1), backward: backward))
            scratch += (parts - 1) * Self.bytes(layer.workspace(batch: largest, input: shape, workers: 1, backward: backward))
            shape = out
        }
        // Each part's network has its own fused backward steps' buffers.
        if backward {
            scratch += parts * backwardSteps.reduce(0) { $0 + Self.bytes($1.workspace) }
        }
        estimate.add("layer scratch", bytes: scratch)
        let inference = inferenceSteps.reduce(0) {
            $0 + Self.bytes($1.workspace(batch: largest, workers: max(workers, 1))) + (parts - 1) * Self.bytes($1.workspace(batch: largest, workers: 1))
        }
        estimate.add("inference scratch", bytes: inference)
        return estimate
    }

    /// What `evaluate(on:normalization:batchSize:)` allocates over a dataset
    /// of `images` images: its network's parts (when it has not reserved
    /// them already) and each part's labels, predictions and losses.
    /// - Parameters:
    ///   - images: the dataset's size.
    ///   - batchSize: images per forward pass.
    ///   - keepsLogits: whether every image's logits are kept.
    ///   - threads: the threads it splits each batch across.
    ///   - testTimeAugmentation: with `.flip`, each part's mean of the two views too.
    @_spi(CLI) public func evaluationMemoryEstimate(images: Int, batchSize: Int, keepsLogits: Bool = false,
                                         threads: Int, testTimeAugmentation: TestTimeAugmentation = .none) -> MemoryEstimate {
        let batch = min(max(batchSize, 1), max(images, 1))
        var estimate = memoryEstimate(batch: batch, threads: threads, backward: false)
        let parts = Self.parts(batch: batch, threads: threads), largest = Self.longestPart(batch: batch, threads: threads)
        let K = outputShape.count
        // labels, predictions, confidences; the loss's probabilities and labels
        estimate.add("evaluation buffers", bytes: parts * 4 * (3 * largest + largest * K + largest))
        if keepsLogits { estimate.add("kept logits", bytes: 4 * images * K) }
        if testTimeAugmentation == .flip { estimate.add("test-time views", bytes: parts * 4 * largest * K) }
        return estimate
    }
}

extension Network {
    /// What a layer's workspace spec allocates: 4 bytes a Float, and the
    /// one-value minimum of every buffer (`FloatBuffer`).
    static func bytes(_ spec: [WorkspaceBuffer]) -> Int {
        spec.reduce(0) { $0 &+ 4 &* max($1.count, 1) }
    }

    /// `DataParallel.parts(batch:)` of a runner with `threads` threads.
    static func parts(batch n: Int, threads: Int) -> Int { max(1, min(threads, n)) }

    /// `DataParallel.longestPart(batch:)` of a runner with `threads` threads.
    static func longestPart(batch n: Int, threads: Int) -> Int {
        let parts = parts(batch: n, threads: threads)
        return (n + parts - 1) / parts
    }
}

extension Trainer {
    /// What `Trainer(network:dataset:options:)` allocates on top of the
    /// network and the dataset it is given: the network's parts for the
    /// batch (`Network.memoryEstimate`), the optimizer's state, and each
    /// part's labels and loss buffers. Add the datasets' `bytes` for the
    /// whole run's figure (`lenet train` does).
    /// - Parameters:
    ///   - network: the network to train.
    ///   - images: the training set's size.
    ///   - options: the batch size, optimizer and threads.
    ///   - threads: the threads to estimate for instead of `options.threads`
    ///     (`lenet` asks what fewer would save).
    public static func memoryEstimate(network: Network, images: Int, options: TrainingOptions,
                                      threads: Int? = nil) -> MemoryEstimate {
        let batch = min(max(options.batchSize, 1), max(images, 1))
        let threads = min(max(threads ?? options.threads, 1), batch)  // the trainer's runner's
        var estimate = network.memoryEstimate(batch: batch, threads: threads)
        let P = network.parameters.count
        switch options.optimizer {
        case .adam, .adamw: estimate.add("optimizer state", bytes: 2 * 4 * P)
        case .sgd: estimate.add("optimizer state", bytes: 4 * (options.momentum != 0 ? P : 1))
        case .sdlm:
            // The curvature, and the estimate's sum and copy of the weights.
            estimate.add("optimizer state", bytes: 3 * 4 * P)
            // The estimate runs chunks of up to 100 images through the
            // network (which grows its buffers to them when the batch is
            // smaller) and three scratch buffers of a chunk's largest activation.
            let chunk = min(Trainer.curvatureChunk, max(images, 1))
            let largest = ([network.inputShape] + network.shapes).map(\.count).max() ?? 0
            let grown = chunk > batch ? network.memoryEstimate(batch: chunk, threads: threads).bytes
                - network.memoryEstimate(batch: batch, threads: threads).bytes : 0
            estimate.add("curvature pass", bytes: max(grown, 0) + 3 * 4 * chunk * largest)
        }
        if options.ema != nil { estimate.add("weight average", bytes: 4 * P) }
        let parts = Network.parts(batch: batch, threads: threads)
        let largest = Network.longestPart(batch: batch, threads: threads)
        let K = network.outputShape.count
        estimate.add("training labels", bytes: parts * 4 * largest)
        // Made by the first step: each part's softmax and labels; and the epoch's shuffled indices.
        estimate.add("loss buffers", bytes: parts * 4 * (largest * K + largest))
        estimate.add("shuffle order", bytes: 8 * images)
        return estimate
    }
}

extension ImageDataset {
    /// The bytes its images and labels hold.
    var bytes: Int { images.count + labels.count }
}

/// What this machine can give a process now, and what the process holds:
/// read from Linux's `/proc` and the cgroup files, and the address-space
/// limit (`ulimit -v`).
enum SystemMemory {
    /// Bytes the process can still allocate without swapping or being
    /// killed: the least of `MemAvailable`, the cgroup's limit less its
    /// usage (v2 `memory.max`, or v1 `memory.limit_in_bytes`), and the
    /// address-space limit less the address space in use. nil where none
    /// can be read.
    static func available() -> (bytes: Int, source: String)? {
        var best: (bytes: Int, source: String)?
        func consider(_ bytes: Int?, _ source: String) {
            guard let bytes else { return }
            if let known = best, known.bytes <= bytes { return }
            best = (max(bytes, 0), source)
        }
        consider(meminfo("MemAvailable:").map { $0 * 1024 }, "MemAvailable")
        if let limit = number(file: "/sys/fs/cgroup/memory.max"), let used = number(file: "/sys/fs/cgroup/memory.current") {
            consider(limit - used, "cgroup memory.max")
        } else if let limit = number(file: "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                  let used = number(file: "/sys/fs/cgroup/memory/memory.usage_in_bytes"), limit < 1 << 60 {
            consider(limit - used, "cgroup memory limit")
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max,
           let cap = Int(exactly: limit.rlim_cur), let size = status("VmSize:") {
            consider(cap - size * 1024, "ulimit -v")
        }
        return best
    }

    /// The process's resident memory now, in bytes (`VmRSS`).
    static func residentBytes() -> Int? { status("VmRSS:").map { $0 * 1024 } }

    /// The most resident memory the process has had, in bytes (`VmHWM`).
    static func peakResidentBytes() -> Int? { status("VmHWM:").map { $0 * 1024 } }

    /// A "Key:   123 kB" line's number from /proc/meminfo.
    private static func meminfo(_ key: String) -> Int? { field(key, in: "/proc/meminfo") }

    private static func status(_ key: String) -> Int? { field(key, in: "/proc/self/status") }

    private static func field(_ key: String, in path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return Int(line.dropFirst(key.count).split(whereSeparator: \.isWhitespace).first ?? "")
        }
        return nil
    }

    /// A file holding one number ("max" and anything else not a number: nil).
    private static func number(file path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

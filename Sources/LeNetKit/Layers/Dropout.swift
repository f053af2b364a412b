/// PyTorch's `Dropout`: `p`, default 0.5.
public struct DropoutConfiguration: LayerConfiguration, KeyedLayerConfiguration, Equatable {
    public var name: String
    /// The probability that a value is zeroed in training.
    public var p: Float

    /// PyTorch's `nn.Dropout(p)`.
    public init(name: String, p: Float = 0.5) {
        self.name = name
        self.p = p
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, p }

    init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(name: try c.decode(String.self, forKey: .name), p: try c.floatIfPresent(.p) ?? 0.5)
    }

    public var type: String { "Dropout" }

    func validate() throws { try check(Double(p), .p, in: 0...1) }

    public func makeLayer() throws -> any Layer {
        try validate()
        return Dropout(name, probability: p)
    }
}

/// Dropout, PyTorch's `nn.Dropout(p)`: in training, each value is zeroed
/// with probability p and the rest are scaled by 1/(1 − p), so the
/// expected output is the input; in evaluation, the identity.
///
/// ```
/// training:   y = x·mask,  mask = 0 with probability p, else 1/(1 − p)
///             dx = dy·mask
/// evaluation: y = x
/// ```
/// Each training pass draws its mask from a generator seeded by the
/// network's seed (`Network(_:seed:)`, without taking a draw from the
/// stream the weights come from), the layer's name, the part of a
/// data-parallel step and the pass's number (`Network.trainingPass`, the
/// optimizer's step in `Trainer`): a run is the same for the same seed and
/// thread count, and a resumed one draws what an uninterrupted one drew.
/// Give each Dropout its own name: two of one name draw the same masks.
final class Dropout: BuiltInLayer {
    let name: String
    /// The probability that a value is zeroed.
    let probability: Float
    private var generator: SeededGenerator
    /// The seed of part 0's stream, from the network's seed and the name.
    private var seed: UInt64
    private let part: Int
    private var count = 0  // values per sample
    private var mask: UnsafeMutablePointer<Float>?  // (N, C, H, W): 0 or 1/(1 − p)
    private var maskCount = 0
    private var lastForwardTrained = true
    /// Whether the last training-mode forward kept its mask for backward.
    private var maskKept = false

    /// - Parameters:
    ///   - name: the layer's name.
    ///   - probability: p, in 0...1.
    convenience init(_ name: String, probability: Float = 0.5) {
        self.init(name, probability: probability, seed: Self.hash(name), part: 0)
    }

    private init(_ name: String, probability: Float, seed: UInt64, part: Int) {
        self.name = name
        self.probability = probability
        self.seed = seed
        self.part = part
        generator = SeededGenerator(seed: seed &+ UInt64(part) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// FNV-1a of the name: the same in every process.
    private static func hash(_ name: String, _ start: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = start
        for byte in name.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    /// Seeds the masks from the network's seed: the generator's next value,
    /// read from a copy, so the stream the weights are drawn from is untouched.
    func initialize(using generator: inout SeededGenerator) {
        var copy = generator
        seed = Self.hash(name, copy.next())
        self.generator = SeededGenerator(seed: seed &+ UInt64(part) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// The pass's own stream: seed, part and pass mixed (SeededGenerator
    /// runs the seed through splitmix64).
    func startTrainingPass(_ pass: Int) {
        generator = SeededGenerator(seed: seed &+ UInt64(part) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(truncatingIfNeeded: pass) &* 0xD1B5_4A32_D192_ED03)
    }

    typealias Configuration = DropoutConfiguration

    var configuration: any LayerConfiguration { Configuration(name: name, p: probability) }

    var kind: String { "Dropout p=\(probability)" }

    /// `pointwise` in the curvature pass (SDLM).
    var curvatureRule: CurvatureRule { .pointwise }

    /// Part 1's copy: a data-parallel step asks for `replica(part:)`, so each part draws its own masks.
    func replica() -> any Layer { replica(part: 1) }

    func replica(part: Int) -> any Layer { Dropout(name, probability: probability, seed: seed, part: part) }

    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        count = input.count
        return input
    }

    /// The mask, kept for the backward pass. Made for an evaluation-only
    /// reserve too: a training pass run there keeps its mask, and the
    /// backward reserve after it finds the same buffer (the spec is the same).
    func workspace(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) -> [WorkspaceBuffer] {
        [WorkspaceBuffer("mask", count: n * input.count)]
    }

    func bind(workspace: [BoundWorkspaceBuffer]) {
        mask = workspace.first?.pointer
        maskCount = workspace.first?.spec.count ?? 0
    }

    /// The training-mode pass, as `Network.forward` runs it.
    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        forward(y, x, batch: n, training: true)
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int, training: Bool) {
        let total = n * count
        lastForwardTrained = training
        guard training, probability > 0 else {
            y.update(from: x, count: total)
            return
        }
        guard let keep = mask, maskCount >= total else { unready(name, "forward") }
        maskKept = true
        let scale = probability < 1 ? 1 / (1 - probability) : 0
        // p as a 24-bit threshold: a value is zeroed when its draw is below it.
        let threshold = UInt32((Double(probability) * Double(1 << 24)).rounded())
        for i in 0..<total {
            let m: Float = UInt32(truncatingIfNeeded: generator.next() >> 40) < threshold ? 0 : scale
            keep[i] = m
            y[i] = x[i] * m
        }
    }

    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let dx else { return }
        let total = n * count
        guard lastForwardTrained, probability > 0 else {
            dx.update(from: dy, count: total)
            return
        }
        guard maskKept, let m = mask, maskCount >= total else { unready(name, "backward") }
        for i in 0..<total { dx[i] = dy[i] * m[i] }
    }

    /// Inference is the identity.
    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        graph.node("Identity", [input], output: name)
    }
}

import Foundation

/// LeNet-5's Euclidean RBF output: `in_features`, `out_features` and how its
/// fixed prototypes are drawn,
/// `{"type": "RBF", "name": "output", "in_features": 84, "out_features": 10, "prototypes": "digits"}`.
public struct RBFConfiguration: LayerConfiguration, KeyedLayerConfiguration, Equatable {
    public var name: String
    /// IN, the size of the flattened input, and OUT, one unit per class.
    public var inFeatures: Int, outFeatures: Int
    /// How the prototypes are drawn when the network is made.
    public var prototypes: Prototypes

    /// The prototypes a new layer starts with.
    public enum Prototypes: String, Sendable, CaseIterable, Encodable {
        /// The ten digits drawn on a 7×12 grid: IN must be 84 and OUT at
        /// most 10.
        case digits
        /// Each prototype entry ±1 at random, from the network's seed (for
        /// classes without a drawing).
        case randomSigns = "random-signs"
    }

    /// OUT units over IN inputs, their prototypes drawn as `prototypes` says.
    public init(name: String, inFeatures: Int, outFeatures: Int, prototypes: Prototypes = .digits) {
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.prototypes = prototypes
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, inFeatures = "in_features", outFeatures = "out_features", prototypes
    }

    init(decoding decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try c.decodeIfPresent(String.self, forKey: .prototypes) ?? Prototypes.digits.rawValue
        guard let prototypes = Prototypes(rawValue: kind) else {
            throw LayerFieldError("prototypes", "must be \(Prototypes.allCases.map(\.rawValue).joined(separator: " or ")), got '\(kind)'")
        }
        self.init(name: try c.decode(String.self, forKey: .name), inFeatures: try c.integer(.inFeatures),
                  outFeatures: try c.integer(.outFeatures), prototypes: prototypes)
    }

    public var type: String { "RBF" }

    func validate() throws {
        try check(inFeatures, .inFeatures, in: 1...maximumLayerSize)
        try check(outFeatures, .outFeatures, in: 1...maximumLayerSize)
        if prototypes == .digits {
            guard inFeatures == RBF.bitmapWidth * RBF.bitmapHeight else {
                throw LayerFieldError("in_features", "must be 84 (7×12) for the digit prototypes, got \(inFeatures)")
            }
            guard outFeatures <= RBF.digitBitmaps.count else {
                throw LayerFieldError("out_features", "must be at most 10 for the digit prototypes, got \(outFeatures); use \"prototypes\": \"random-signs\"")
            }
        }
    }

    public func makeLayer() throws -> any Layer {
        try validate()
        return RBF(name, inFeatures: inFeatures, outFeatures: outFeatures, prototypes: prototypes)
    }
}

/// The Euclidean radial basis function output of LeCun et al. 1998's
/// LeNet-5: each output unit is the squared distance between the input and
/// the unit's fixed prototype, negated so that, as with every other output
/// layer of LeNetKit, the largest output is the predicted class and a
/// softmax over the outputs gives probabilities:
///
/// ```
/// z[n, i] = −y[n, i],   y[n, i] = Σ_j (x[n, j] − w[i, j])²
/// dx[n, j] = Σ_i dz[n, i] · (−2)(x[n, j] − w[i, j])
/// ```
///
/// The prototypes `w` (OUT, IN) are a buffer, saved and loaded with the
/// weights but never trained, as in the paper, where they are ±1 drawings
/// of the digits on a 7×12 grid (`digitBitmaps`): F6's 84 tanh units are
/// trained to draw the digit's picture.
final class RBF: BuiltInLayer {
    let name: String
    /// Input features (IN) and output units (OUT).
    let inFeatures: Int, outFeatures: Int
    /// How the prototypes are drawn.
    let prototypes: Prototypes

    typealias Prototypes = RBFConfiguration.Prototypes

    private var weight: UnsafeMutablePointer<Float>?  // (OUT, IN), a buffer

    /// - Parameters:
    ///   - name: the buffer-name prefix (`output` → `output.prototypes`).
    ///   - inFeatures: IN, the size of the flattened input.
    ///   - outFeatures: OUT, the classes.
    ///   - prototypes: how the prototypes are drawn when the network is made.
    init(_ name: String, inFeatures: Int, outFeatures: Int, prototypes: Prototypes = .digits) {
        self.name = name
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.prototypes = prototypes
    }

    var kind: String { "RBF" }

    typealias Configuration = RBFConfiguration

    var configuration: any LayerConfiguration {
        Configuration(name: name, inFeatures: inFeatures, outFeatures: outFeatures, prototypes: prototypes)
    }

    /// Saved and loaded as `NAME.prototypes`; set by `initialize(using:)`.
    var bufferSpecs: [ParameterSpec] {
        [ParameterSpec(name: "prototypes", shape: [outFeatures, inFeatures], initialValue: 0)]
    }

    func bind(buffers: [UnsafeMutablePointer<Float>]) { weight = buffers[0] }

    /// Draws the prototypes: the digit bitmaps, or random signs.
    func initialize(using generator: inout SeededGenerator) {
        guard let weight else { return }
        for i in 0..<outFeatures {
            let row = weight + i * inFeatures
            switch prototypes {
            case .digits:
                let bitmap = Self.digitBitmaps[i]
                for j in 0..<min(inFeatures, bitmap.count) { row[j] = bitmap[j] }
            case .randomSigns:
                for j in 0..<inFeatures { row[j] = generator.next() & 1 == 0 ? -1 : 1 }
            }
        }
    }

    func replica() -> any Layer { RBF(name, inFeatures: inFeatures, outFeatures: outFeatures, prototypes: prototypes) }

    func outputShape(for input: FeatureShape) throws -> FeatureShape {
        guard input.count == inFeatures else {
            throw LeNetError("expects \(inFeatures) input features, got \(input.count) (input \(input))", subject: name)
        }
        return FeatureShape(features: outFeatures)
    }

    /// One subtraction, square and addition per input and unit.
    func connections(for input: FeatureShape) -> Int { outFeatures * inFeatures }

    /// Sums run in double: a distance of 84 terms of up to ~7 each keeps its
    /// small differences between classes, whose softmax depends on them.
    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        guard let weight else { unready(name) }
        let IN = inFeatures, OUT = outFeatures
        for s in 0..<n {
            let xs = x + s * IN, ys = y + s * OUT
            for i in 0..<OUT {
                let w = weight + i * IN
                var sum = 0.0
                for j in 0..<IN {
                    let d = Double(xs[j] - w[j])
                    sum += d * d
                }
                ys[i] = Float(-sum)
            }
        }
    }

    func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let dx else { return }
        guard let weight else { unready(name, "backward") }
        let IN = inFeatures, OUT = outFeatures
        for s in 0..<n {
            let xs = x + s * IN, dys = dy + s * OUT, dxs = dx + s * IN
            // dx_j = −2 Σ_i dz_i (x_j − w_ij) = −2 (x_j Σ_i dz_i − Σ_i dz_i w_ij)
            var total: Float = 0
            for i in 0..<OUT { total += dys[i] }
            for j in 0..<IN { dxs[j] = xs[j] * total }
            for i in 0..<OUT {
                let g = dys[i], w = weight + i * IN
                for j in 0..<IN { dxs[j] -= g * w[j] }
            }
            for j in 0..<IN { dxs[j] *= -2 }
        }
    }

    /// Its own rule in the curvature pass: the distance is not affine.
    var curvatureRule: CurvatureRule { .custom }

    /// ∂²E/∂x_j² = Σ_i (∂z_i/∂x_j)²·∂²E/∂z_i² + Σ_i ∂E/∂z_i·∂²z_i/∂x_j²
    ///           = Σ_i 4(x_j − w_ij)²·dy2_i − 2·Σ_i dy_i.
    /// The second term is the distance's own curvature, kept because it is
    /// exact and never negative here (with the MAP loss Σ_i dy_i is minus
    /// the rubbish class's probability; with the cross-entropy it is 0): for
    /// the correct class's quadratic y_D alone it gives 2 on every input.
    func backwardCurvature(_ dx2: UnsafeMutablePointer<Float>?, _ dy2: UnsafePointer<Float>, gradient dy: UnsafePointer<Float>,
                                  _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        guard let dx2 else { return }
        guard let weight else { unready(name, "backward") }
        let IN = inFeatures, OUT = outFeatures
        for s in 0..<n {
            let xs = x + s * IN, h = dy2 + s * OUT, g = dy + s * OUT, out = dx2 + s * IN
            var total = 0.0
            for i in 0..<OUT { total += Double(g[i]) }
            for j in 0..<IN {
                var sum = -2 * total
                for i in 0..<OUT {
                    let d = Double(xs[j] - weight[i * IN + j])
                    sum += 4 * d * d * Double(h[i])
                }
                out[j] = Float(max(sum, 0))
            }
        }
    }

    /// z = −Σ_j (x_j − w_ij)², written as the differences themselves,
    /// (N, 1, IN) − (OUT, IN), squared and summed over the last axis: the
    /// expanded form x·x − 2x·w + w·w loses the small distances to
    /// cancellation between terms a hundred times larger.
    func exportONNX(into graph: inout ONNXGraph, input: String) throws -> String {
        let x = graph.flattened(input, for: name)
        let prototypes = try graph.parameter(name + ".prototypes", dims: [outFeatures, inFeatures])
        let final = graph.finalOutput
        graph.finalOutput = nil
        let one = graph.constant(name + ".axis", dims: [1], integers: [1])
        let rows = graph.node("Unsqueeze", [x, one], output: name + ".rows")  // (N, 1, IN)
        let difference = graph.node("Sub", [rows, prototypes], output: name + ".difference")  // (N, OUT, IN)
        let square = graph.node("Mul", [difference, difference], output: name + ".square")
        let last = graph.constant(name + ".last", dims: [1], integers: [2])
        let distance = graph.node("ReduceSum", [square, last], output: name + ".distance", attributes: [.int("keepdims", 0)])
        graph.finalOutput = final
        return graph.node("Neg", [distance], output: name)
    }
}

// MARK: - The digit prototypes

extension RBF {
    /// The prototype grid: 7 wide, 12 tall, as in the paper's Fig. 3.
    static let bitmapWidth = 7, bitmapHeight = 12

    /// The ten digits as ±1 drawings on the 7×12 grid, row by row (`#` is
    /// +1, `.` is −1), in the spirit of the paper's Fig. 3: strokes one
    /// cell wide, each digit's distinctive parts (the 4's open top, the 7's
    /// bar) kept apart so that every two prototypes differ in at least 14
    /// cells (a squared distance of 56).
    static let digitDrawings: [[String]] = [
        [".#####.", "##...##", "#.....#", "#.....#", "#.....#", "#.....#",
         "#.....#", "#.....#", "#.....#", "#.....#", "##...##", ".#####."],  // 0
        ["...##..", "..###..", ".####..", "...##..", "...##..", "...##..",
         "...##..", "...##..", "...##..", "...##..", "...##..", ".######"],  // 1
        [".#####.", "##...##", ".....##", ".....##", "....##.", "...##..",
         "..##...", ".##....", "##.....", "#......", "#......", "#######"],  // 2
        ["#######", ".....##", "....##.", "...##..", "..###..", "....##.",
         "......#", "......#", "......#", "#....##", "##..##.", ".####.."],  // 3
        ["#....#.", "#....#.", "#....#.", "#....#.", "#....#.", "#######",
         ".....#.", ".....#.", ".....#.", ".....#.", ".....#.", ".....#."],  // 4
        ["#######", "#......", "#......", "#......", "######.", ".....##",
         "......#", "......#", "......#", "#....##", "##..##.", ".####.."],  // 5
        ["...###.", "..##...", ".##....", "##.....", "#......", "#.####.",
         "##...##", "#.....#", "#.....#", "#.....#", "##...##", ".#####."],  // 6
        ["#######", "......#", ".....##", ".....#.", "....##.", "....#..",
         "...##..", "...#...", "..##...", "..#....", "..#....", "..#...."],  // 7
        [".#####.", "##...##", "#.....#", ".##.##.", "..###..", ".##.##.",
         "##...##", "#.....#", "#.....#", "#.....#", "##...##", ".#####."],  // 8
        [".#####.", "##...##", "#.....#", "#.....#", "##...##", ".####.#",
         "......#", ".....##", "....##.", "...##..", "..##...", ".##...."],  // 9
    ]

    /// `digitDrawings` as ±1 values, (10, 84).
    static let digitBitmaps: [[Float]] = digitDrawings.map { rows in
        rows.flatMap { row in row.map { $0 == "#" ? Float(1) : -1 } }
    }
}

/// What a layer tells the summary when some entries of its parameter tensors
/// are not parameters: a masked weight held at zero is stored but not trained.
public protocol TrainableCounting {
    /// The number of trainable values, fewer than the stored count.
    var trainableParameters: Int { get }
}

/// A convolution in which output map `oc` sees only the input maps listed in
/// `table[oc]`: LeNet-5's C3 (LeCun et al. 1998, Table I).
///
/// ```
/// y[n, oc] = b[oc] + Σ_{c ∈ table[oc]} w[oc, c] ⋆ x[n, c]
/// stored as a full convolution with w[oc, c] = 0 for c ∉ table[oc]:
/// per sample:  Y (OC, P) = W (OC, C·KH·KW) · cols (C·KH·KW, P)   (im2col + one gemm)
/// dW[oc, c] = 0 for c ∉ table[oc]
/// ```
///
/// Parameters: `weight` (OC, C, KH, KW) with exact zeros where the table has
/// no connection, `bias` (OC). A checkpoint stores that dense tensor, so it
/// loads into PyTorch as a masked `nn.Conv2d`. Only Σ|table[oc]|·KH·KW + OC
/// of its values are trainable (`trainableParameters`; 1,516 for C3).
///
/// The masked weights stay exactly zero:
/// - `backward` zeroes their gradient, so an optimizer step whose update is
///   0 for a zero value and a zero gradient (SGD and Adam, with or without
///   weight decay) leaves them at 0;
/// - `forward` zeroes the masked weights again before it computes, so a
///   generic initializer or a loaded tensor cannot switch on a connection
///   that the table does not have.
///
/// Init (`initialize(using:)`): uniform in ±1/√(|table[oc]|·KH·KW) for map
/// `oc`'s weights and bias: PyTorch's rule with each map's own fan-in
/// (C3: ±1/√75 for maps 0–5, ±1/√100 for 6–14, ±1/√150 for map 15).
public final class PartialConv2D: Layer, TrainableCounting {
    public let name: String
    /// Input maps (C) and output maps (OC).
    public let inChannels: Int, outChannels: Int
    /// Kernel rows and columns (KH, KW).
    public let kernelH: Int, kernelW: Int
    /// `table[oc]`: the input maps output map `oc` sees.
    public let table: [[Int]]

    /// LeCun et al. 1998, Table I: C3's 16 maps over S2's 6.
    /// Maps 0–5 see 3 contiguous maps, 6–11 see 4 contiguous maps (mod 6),
    /// 12–14 see 4 non-contiguous ones, 15 sees all six: 60 connections.
    public static let lecunC3Table: [[Int]] =
        (0..<6).map { i in (0..<3).map { (i + $0) % 6 } }
        + (0..<6).map { i in (0..<4).map { (i + $0) % 6 } }
        + [[0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5]]
        + [[0, 1, 2, 3, 4, 5]]

    // The convolution itself; this layer adds the mask around it.
    private let conv: Conv2D
    private var weight: UnsafeMutablePointer<Float>?  // (OC, C, KH, KW)
    private var bias: UnsafeMutablePointer<Float>?  // (OC)
    private var weightGrad: UnsafeMutablePointer<Float>?  // (OC, C, KH, KW)
    // Offsets of the masked (oc, c) blocks of KH·KW weights: (oc·C + c)·KH·KW.
    private let maskedBlocks: [Int]

    /// - Parameters:
    ///   - name: the parameter-name prefix, e.g. `c3`.
    ///   - kernelSize: square kernel side (stride 1, no padding).
    ///   - table: `table[oc]` lists the input maps of output map `oc`; one
    ///     entry per output map, each index in 0..<inChannels, no repeats.
    ///     `Network.init` throws when it is not.
    public init(_ name: String, inChannels: Int, outChannels: Int, kernelSize: Int, table: [[Int]]) {
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        kernelH = kernelSize
        kernelW = kernelSize
        self.table = table
        conv = Conv2D(name, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelSize)
        var blocks: [Int] = []
        for oc in 0..<outChannels {
            let seen = oc < table.count ? Set(table[oc]) : []
            for c in 0..<inChannels where !seen.contains(c) {
                blocks.append((oc * inChannels + c) * kernelSize * kernelSize)
            }
        }
        maskedBlocks = blocks
    }

    public var kind: String { "PartialConv2D \(kernelH)×\(kernelW)" }

    public var parameterSpecs: [ParameterSpec] {
        // The tensor-wide bound serves only a generic initializer; a model
        // calls `initialize(using:)` for each map's own bound.
        conv.parameterSpecs
    }

    /// Σ_oc (|table[oc]|·KH·KW + 1).
    public var trainableParameters: Int {
        table.reduce(0) { $0 + $1.count * kernelH * kernelW + 1 }
    }

    /// The number of (output map, input map) pairs that are connected.
    public var connectedPairs: Int { table.reduce(0) { $0 + $1.count } }

    public func replica() -> any Layer { PartialConv2D(name, inChannels: inChannels, outChannels: outChannels, kernelSize: kernelH, table: table) }

    public func outputShape(for input: FeatureShape) throws -> FeatureShape {
        guard table.count == outChannels else {
            throw LeNetError("the connection table has \(table.count) rows for \(outChannels) output maps", subject: name)
        }
        for (oc, row) in table.enumerated() {
            guard !row.isEmpty, row.allSatisfy({ (0..<inChannels).contains($0) }), Set(row).count == row.count else {
                throw LeNetError("row \(oc) of the connection table, \(row), must list distinct input maps in 0..<\(inChannels)", subject: name)
            }
        }
        return try conv.outputShape(for: input)
    }

    /// Σ_oc (|table[oc]|·KH·KW + 1)·OH·OW: only the connections that exist.
    public func connections(for input: FeatureShape) -> Int {
        let g = conv.geometry(for: input)
        return trainableParameters * g.positions
    }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        weight = parameters[0]; bias = parameters[1]
        weightGrad = gradients[0]
        conv.bind(parameters: parameters, gradients: gradients)
    }

    public func reserve(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) throws {
        try conv.reserve(batch: n, input: input, workers: workers, backward: backward)
    }

    public func workspaceBytes(batch n: Int, input: FeatureShape, workers: Int, backward: Bool) -> Int {
        conv.workspaceBytes(batch: n, input: input, workers: workers, backward: backward)
    }

    public func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, batch n: Int) {
        // Write only when something is off: replicas of this layer read the
        // same weights from other threads, and reads race with no one.
        if let weight, hasMaskedNonzero(weight) { zeroMasked(weight) }
        conv.forward(y, x, batch: n)
    }

    func geometry(for input: FeatureShape) -> ConvGeometry { conv.geometry(for: input) }

    /// The bound weight (OC, C, KH, KW), its missing connections made 0 as
    /// `forward` makes them, and the bias: for the inference path's step.
    var maskedValues: (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>)? {
        guard let weight, let bias else { return nil }
        if hasMaskedNonzero(weight) { zeroMasked(weight) }
        return (UnsafePointer(weight), UnsafePointer(bias))
    }

    public func backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                         _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, batch n: Int) {
        conv.backward(dx, dy, x, y, batch: n)
        // The gemm wrote dW for every (oc, c) pair; the missing connections
        // get none. The masked entries were 0 before (zeroGradients and this
        // line), so zeroing them drops exactly this pass's contribution.
        if let weightGrad { zeroMasked(weightGrad) }
    }

    /// Draws map `oc`'s weights and bias uniformly in ±1/√(|table[oc]|·KH·KW)
    /// and sets the masked weights to 0. Needs the layer to be in a `Network`
    /// (bound to its parameters); does nothing before.
    public func initialize(using generator: inout SeededGenerator) {
        guard let weight, let bias, table.count == outChannels else { return }
        let K = kernelH * kernelW
        for oc in 0..<outChannels {
            let bound = 1 / Float(max(1, table[oc].count * K)).squareRoot()
            let row = weight + oc * inChannels * K  // (C, KH, KW)
            row.update(repeating: 0, count: inChannels * K)
            for c in table[oc] where (0..<inChannels).contains(c) {
                for i in 0..<K { row[c * K + i] = generator.uniform(-bound, bound) }
            }
            bias[oc] = generator.uniform(-bound, bound)
        }
    }

    private func hasMaskedNonzero(_ w: UnsafePointer<Float>) -> Bool {
        let K = kernelH * kernelW
        for offset in maskedBlocks {
            for i in 0..<K where w[offset + i] != 0 { return true }
        }
        return false
    }

    private func zeroMasked(_ w: UnsafeMutablePointer<Float>) {
        let K = kernelH * kernelW
        for offset in maskedBlocks { (w + offset).update(repeating: 0, count: K) }
    }
}

extension PartialConv2D: KernelDescribing {
    public var kernelSummary: (size: String, count: Int) { ("\(kernelH)×\(kernelW)", outChannels) }
}

// MARK: - Reference: the full convolution's, on the masked weights

/// w with every weight the table does not connect set to 0.
private func maskedWeights(_ w: UnsafePointer<Float>, table: [[Int]], _ g: ConvGeometry) -> [Float] {
    let C = g.channels, K = g.kernelH * g.kernelW
    var masked = [Float](repeating: 0, count: table.count * C * K)
    for (oc, inputs) in table.enumerated() {
        for c in inputs { for k in 0..<K { masked[(oc * C + c) * K + k] = w[(oc * C + c) * K + k] } }
    }
    return masked
}

/// The reference for `PartialConv2D`: `conv2dForwardNaive` with the weights
/// the table does not connect taken as 0 (stride 1, no padding), so masked
/// weights are never read.
/// - Parameters:
///   - y: (N, OC, OH, OW)
///   - x: (N, C, H, W)
///   - w: (OC, C, KH, KW)
///   - b: (OC)
///   - table: `table[oc]`, the input maps of output map `oc`.
func partialConv2dForwardNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                               _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                               batch: Int, table: [[Int]], _ g: ConvGeometry) {
    conv2dForwardNaive(y, x, maskedWeights(w, table: table, g), b, batch: batch, outChannels: table.count, g)
}

/// The reference for `PartialConv2D`'s backward pass: `conv2dBackwardNaive`
/// on the masked weights; overwrites dx, dw and db; dw is 0 wherever the
/// table has no connection.
/// - Parameters:
///   - dx: (N, C, H, W)
///   - dw: (OC, C, KH, KW)
///   - db: (OC)
///   - dy: (N, OC, OH, OW)
///   - x: (N, C, H, W)
///   - w: (OC, C, KH, KW)
func partialConv2dBackwardNaive(_ dx: UnsafeMutablePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                                _ db: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                batch: Int, table: [[Int]], _ g: ConvGeometry) {
    let OC = table.count, C = g.channels, K = g.kernelH * g.kernelW
    conv2dBackwardNaive(dx, dw, db, dy, x, maskedWeights(w, table: table, g), batch: batch, outChannels: OC, g)
    for oc in 0..<OC {
        let connected = Set(table[oc])
        for c in 0..<C where !connected.contains(c) { (dw + (oc * C + c) * K).update(repeating: 0, count: K) }
    }
}

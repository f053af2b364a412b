// The report's map of what the network has learnt: every test image's
// penultimate-layer features (the input of the last layer: 84 for both
// LeNets), projected on their first two principal components. The
// covariance is one symmetric rank-k update (BLAS ssyrk) of the centred
// features; its eigenvectors come from LAPACK's ssyevd (Kernels/Eigen.swift).
import Foundation

/// Test images placed by the first two principal components of their
/// penultimate-layer features.
struct FeatureMap: Sendable {
    /// The layer whose output the features are (the input of the last layer).
    let layer: String
    /// Features per image (D).
    let width: Int
    /// Each image's coordinates on the first and second principal
    /// components, in dataset order. (N, 2)
    let points: [Float]
    /// Each image's label. (N)
    let labels: [UInt8]
    /// The class names, by label.
    let classNames: [String]
    /// The share of the features' variance along each of the two
    /// components, each in [0, 1].
    let explainedVariance: [Double]
    /// Misclassified images to mark on the map.
    let highlighted: [Misclassification]

    /// The number of images (N).
    var count: Int { labels.count }

    /// Runs `network` forward over `dataset` and maps the features its last
    /// layer reads.
    /// - Parameters:
    ///   - network: a trained network with at least two layers.
    ///   - dataset: images of its input shape.
    ///   - normalization: as in training.
    ///   - highlighting: misclassified images to mark (for example an
    ///     evaluation's first few).
    ///   - batchSize: images per forward pass.
    /// - Throws: `LeNetError` when the shapes disagree, the dataset is
    ///   empty, or memory or LAPACK fail.
    init(network: Network, dataset: ImageDataset, normalization: Normalization,
                highlighting: [Misclassification] = [], batchSize: Int = 256) throws {
        guard network.layers.count >= 2 else {
            throw LeNetError("a feature map needs a network of at least two layers", subject: "FeatureMap")
        }
        let shape = FeatureShape(channels: dataset.channels, height: dataset.height, width: dataset.width)
        guard shape == network.inputShape else {
            throw LeNetError("its images are \(shape), the model takes \(network.inputShape)", subject: dataset.name)
        }
        guard dataset.count >= 2 else {
            throw LeNetError("a feature map needs at least 2 images, got \(dataset.count)", subject: dataset.name)
        }
        let normalization = try normalization.validated(channels: dataset.channels)
        let last = network.layers.count - 1
        let D = network.shapes[last - 1].count
        let features = try FloatBuffer(count: dataset.count * D, name: "features of \(dataset.count) images")  // (N, D)
        // Within the buffers the network has, when it has some (a trainer's
        // network between epochs): the map then allocates no activations.
        let batch = max(1, min(batchSize, dataset.count, network.capacity > 0 ? network.capacity : Int.max))
        try network.reserve(batch: batch, backward: false)
        let labels = try IndexBuffer(count: batch, name: "feature map labels")  // (batch)
        var first = 0
        while first < dataset.count {
            let n = min(batch, dataset.count - first)
            guard let input = try network.input(batch: n).baseAddress else { break }
            dataset.fill(batch: first..<first + n, normalization: normalization, into: input, labels: labels.pointer)
            network.forward(batch: n, training: false)  // evaluation mode: running statistics, no dropout
            (features.pointer + first * D).update(from: network.activation(after: last - 1), count: n * D)
            first += n
        }
        let components = try Self.principalComponents(features.array, count: dataset.count, width: D, components: 2)
        var points = [Float](repeating: 0, count: dataset.count * 2)  // (N, 2)
        for i in 0..<dataset.count {
            for c in 0..<2 {
                var dot: Float = 0
                for d in 0..<D { dot += (features.pointer[i * D + d] - components.mean[d]) * components.vectors[c * D + d] }
                points[i * 2 + c] = dot
            }
        }
        self.layer = network.layers[last - 1].name
        self.width = D
        self.points = points
        self.labels = dataset.labels
        self.classNames = dataset.classNames
        self.explainedVariance = components.variances.map { components.totalVariance > 0 ? $0 / components.totalVariance : 0 }
        self.highlighted = highlighting.filter { $0.index >= 0 && $0.index < dataset.count }
    }

    /// The leading principal components of `count` rows of `width` features.
    /// - Parameters:
    ///   - features: the rows. (count, width)
    ///   - components: how many, the largest variance first; at most `width`.
    /// - Returns: the components, one per row, unit length and signed by
    ///   their largest entry, `(components, width)`; the variance along
    ///   each; the total variance (the covariance's trace); the mean row.
    /// - Throws: `LeNetError` when the sizes disagree or LAPACK fails.
    static func principalComponents(_ features: [Float], count n: Int, width d: Int, components k: Int)
        throws -> (vectors: [Float], variances: [Double], totalVariance: Double, mean: [Float]) {
        guard n >= 2, d >= 1, features.count == n * d, (1...d).contains(k) else {
            throw LeNetError("principal components need at least 2 rows of \(d) features and 1...\(d) components; "
                                 + "got \(features.count) values for \(n) rows, \(k) components", subject: "FeatureMap")
        }
        let (mean, covariance) = Self.covariance(features, count: n, width: d)
        let eigen = try SymmetricEigen(covariance, n: d)
        // ssyevd sorts ascending: the last k, largest first.
        let order = (0..<d).reversed().prefix(k)
        let vectors = order.flatMap { eigen.vectors[$0 * d..<($0 + 1) * d] }
        let total = (0..<d).reduce(0.0) { $0 + Double(covariance[$1 * d + $1]) }
        return (vectors, order.map { Double(max(eigen.values[$0], 0)) }, total, mean)
    }

    /// The mean row and the sample covariance `Σ (x − mean)ᵀ (x − mean) / (n − 1)`,
    /// both halves filled, of `count` rows of `width` features.
    static func covariance(_ features: [Float], count n: Int, width d: Int) -> (mean: [Float], covariance: [Float]) {
        var mean = [Double](repeating: 0, count: d)
        for i in 0..<n { for j in 0..<d { mean[j] += Double(features[i * d + j]) } }
        let centre = mean.map { Float($0 / Double(n)) }
        var centred = features  // (n, d)
        for i in 0..<n { for j in 0..<d { centred[i * d + j] -= centre[j] } }
        var covariance = [Float](repeating: 0, count: d * d)  // (d, d)
        centred.withUnsafeBufferPointer { a in
            covariance.withUnsafeMutableBufferPointer { c in
                if let a = a.baseAddress, let c = c.baseAddress {
                    syrkUpper(n: d, k: n, alpha: 1 / Float(n - 1), a, beta: 0, c)
                }
            }
        }
        for i in 0..<d { for j in 0..<i { covariance[i * d + j] = covariance[j * d + i] } }
        return (centre, covariance)
    }
}

extension FeatureMap {
    /// The most images drawn: a page of 10,000 SVG circles is slow to
    /// render, and every ⌈N / 2,000⌉-th image shows the same clusters.
    static let drawnLimit = 2_000

    /// The class colours: Tableau's ten, repeated for more classes.
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                          "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    /// The map as an SVG scatter plot: a dot per image (every
    /// ⌈N / drawnLimit⌉-th), coloured by its true class, with a legend;
    /// the highlighted images as larger dots ringed in black, each with a
    /// tooltip naming its true and predicted class.
    func svg() -> String {
        let width = 640.0, height = 460.0
        let left = 46.0, right = 150.0, top = 12.0, bottom = 40.0
        let plotW = width - left - right, plotH = height - top - bottom
        let step = max(1, (count + Self.drawnLimit - 1) / Self.drawnLimit)
        var drawn = Array(stride(from: 0, to: count, by: step))
        drawn += highlighted.map(\.index)
        let xs = drawn.map { Double(points[$0 * 2]) }, ys = drawn.map { Double(points[$0 * 2 + 1]) }
        func span(_ v: [Double]) -> (Double, Double) {
            let lo = v.min() ?? -1, hi = v.max() ?? 1
            let pad = max((hi - lo) * 0.04, 1e-6)
            return (lo - pad, hi + pad)
        }
        let (x0, x1) = span(xs), (y0, y1) = span(ys)
        func px(_ x: Float) -> String { format(left + (Double(x) - x0) / (x1 - x0) * plotW) }
        func py(_ y: Float) -> String { format(top + (1 - (Double(y) - y0) / (y1 - y0)) * plotH) }
        func colour(_ label: UInt8) -> String { Self.palette[Int(label) % Self.palette.count] }
        func name(_ k: Int) -> String { k < classNames.count ? classNames[k] : "class \(k)" }

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-size=\"11\">\n"
        svg += "<rect x=\"\(format(left))\" y=\"\(format(top))\" width=\"\(format(plotW))\" height=\"\(format(plotH))\" fill=\"none\" stroke=\"#888\"/>\n"
        // The axes through the mean (the origin of the projection).
        if x0 < 0 && x1 > 0 {
            svg += "<line x1=\"\(px(0))\" y1=\"\(format(top))\" x2=\"\(px(0))\" y2=\"\(format(top + plotH))\" stroke=\"#e4e4e4\"/>"
        }
        if y0 < 0 && y1 > 0 {
            svg += "<line x1=\"\(format(left))\" y1=\"\(py(0))\" x2=\"\(format(left + plotW))\" y2=\"\(py(0))\" stroke=\"#e4e4e4\"/>\n"
        }
        for i in stride(from: 0, to: count, by: step) {
            svg += "<circle cx=\"\(px(points[i * 2]))\" cy=\"\(py(points[i * 2 + 1]))\" r=\"1.8\" fill=\"\(colour(labels[i]))\" fill-opacity=\"0.7\"/>"
            if i % (step * 40) == 0 { svg += "\n" }
        }
        svg += "\n"
        for m in highlighted {
            let i = m.index
            svg += "<circle cx=\"\(px(points[i * 2]))\" cy=\"\(py(points[i * 2 + 1]))\" r=\"5\" fill=\"\(colour(labels[i]))\" stroke=\"#000\" stroke-width=\"1.5\">"
            svg += "<title>test image \(i): \(escape(name(m.truth))), predicted \(escape(name(m.predicted))) (\(String(format: "%.0f", Double(m.probability) * 100))%)</title></circle>\n"
        }
        svg += "<text x=\"\(format(left + plotW / 2))\" y=\"\(format(height - 8))\" text-anchor=\"middle\" fill=\"#222\">"
            + String(format: "first principal component (%.1f%% of the variance)", (explainedVariance.first ?? 0) * 100) + "</text>\n"
        svg += "<text transform=\"translate(16 \(format(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" fill=\"#222\">"
            + String(format: "second (%.1f%%)", (explainedVariance.dropFirst().first ?? 0) * 100) + "</text>\n"
        let legendX = left + plotW + 16
        for (k, className) in classNames.enumerated() {
            let y = top + 8 + 16 * Double(k)
            svg += "<circle cx=\"\(format(legendX + 4))\" cy=\"\(format(y))\" r=\"4\" fill=\"\(colour(UInt8(truncatingIfNeeded: k)))\"/>"
            svg += "<text x=\"\(format(legendX + 14))\" y=\"\(format(y))\" dominant-baseline=\"middle\" fill=\"#222\">\(escape(className))</text>\n"
        }
        if !highlighted.isEmpty {
            let y = top + 8 + 16 * Double(classNames.count) + 8
            svg += "<circle cx=\"\(format(legendX + 4))\" cy=\"\(format(y))\" r=\"5\" fill=\"#fff\" stroke=\"#000\" stroke-width=\"1.5\"/>"
            svg += "<text x=\"\(format(legendX + 14))\" y=\"\(format(y))\" dominant-baseline=\"middle\" fill=\"#222\">misclassified</text>\n"
        }
        svg += "</svg>"
        return svg
    }

    private func format(_ v: Double) -> String { String(format: "%.1f", v) }
}

import Foundation

/// What one test image looks like inside the network, as the 1998 paper's
/// figures show LeNet-5's C1 and C3: the image, then the maps of the first
/// two convolutions that give maps (height and width above 1), each taken
/// after the elementwise layers that follow it (its squashing).
struct ActivationMaps: Sendable {
    /// One layer's maps.
    struct Stage: Sendable {
        /// The layer whose kernels made the maps (`c1`), and the layer whose output is shown (`c1.tanh`).
        var layer: String, shownAfter: String
        /// Each map as a gray image, its own range stretched from black (its lowest value) to white.
        var maps: [PixelImage]
        /// The range of the shown values over all maps.
        var range: ClosedRange<Float>
    }

    /// The test image's index.
    var index: Int
    /// The image as stored.
    var image: PixelImage
    /// Up to two stages.
    var stages: [Stage]

    /// The maps of test image `index`.
    /// - Parameters:
    ///   - network: the trained network; one forward pass of one image is run on it.
    ///   - dataset: the test images.
    ///   - normalization: what the network was trained with.
    ///   - index: which image.
    /// - Throws: `LeNetError` when the index is outside the dataset or a buffer cannot be had.
    init(network: Network, dataset: ImageDataset, normalization: Normalization, index: Int = 0) throws {
        guard index >= 0, index < dataset.count else {
            throw LeNetError("image \(index) is outside the \(dataset.count) images", subject: dataset.name)
        }
        self.index = index
        let size = dataset.imageSize
        image = try PixelImage(planar: dataset.images[index * size..<(index + 1) * size],
                               channels: dataset.channels, height: dataset.height, width: dataset.width)
        guard let x = try network.input(batch: 1).baseAddress else { throw LeNetError("no input buffer", subject: "report") }
        var label: Int32 = 0
        dataset.fill(batch: [index], normalization: normalization, into: x, labels: &label)
        network.forward(batch: 1, training: false)
        var stages: [Stage] = []
        var i = 0
        while i < network.layers.count, stages.count < 2 {
            let shape = network.shapes[i]
            // A convolution: a four-dimensional weight (maps, inputs, height, width).
            guard network.layers[i].parameterSpecs.first?.shape.count == 4, shape.height > 1, shape.width > 1 else {
                i += 1
                continue
            }
            var last = i
            while last + 1 < network.layers.count, network.shapes[last + 1] == shape,
                  network.layers[last + 1].parameterSpecs.isEmpty { last += 1 }
            let values = UnsafeBufferPointer(start: network.activation(after: last), count: shape.count)
            let plane = shape.height * shape.width
            let maps = try (0..<shape.channels).map { c -> PixelImage in
                let v = values[c * plane..<(c + 1) * plane]
                let lo = v.min() ?? 0, hi = v.max() ?? 0
                let scale = hi > lo ? 255 / (hi - lo) : 0
                return try PixelImage(width: shape.width, height: shape.height, channels: 1,
                                      pixels: v.map { UInt8(max(0, min(255, (($0 - lo) * scale).rounded()))) })
            }
            stages.append(Stage(layer: network.layers[i].name, shownAfter: network.layers[last].name, maps: maps,
                                range: (values.min() ?? 0)...(values.max() ?? 0)))
            i = last + 1
        }
        self.stages = stages
    }

    /// The figure as HTML: the image, then each stage's maps in a row.
    func html() -> String {
        func img(_ image: PixelImage, _ alt: String, size: Int) -> String {
            let source = (try? PNG.encode(image)).map { "data:image/png;base64," + Data($0).base64EncodedString() } ?? ""
            return "<img src=\"\(source)\" alt=\"\(escape(alt))\" style=\"width:\(size)px;height:\(size)px;image-rendering:pixelated;border:1px solid #ccc\">"
        }
        var out = "<h2>Inside the network</h2>\n<p class=\"note\">Test image #\(index) and its maps after "
            + stages.map { "\(escape($0.layer)) (shown after \(escape($0.shownAfter)), values \(String(format: "%.2f to %.2f", $0.range.lowerBound, $0.range.upperBound)))" }
                .joined(separator: " and ")
            + "; each map stretched from its lowest value (black) to its highest (white).</p>\n"
        out += "<div class=\"grid\">" + img(image, "test image \(index)", size: 96) + "</div>\n"
        for stage in stages {
            out += "<p class=\"note\">\(escape(stage.layer)): \(stage.maps.count) maps</p><div class=\"grid\">"
            for (k, map) in stage.maps.enumerated() { out += img(map, "\(stage.layer) map \(k)", size: 64) }
            out += "</div>\n"
        }
        return out
    }
}

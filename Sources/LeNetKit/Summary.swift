/// One row of a network's layer table (`lenet summary`).
struct LayerSummary: Sendable, Equatable {
    /// The layer's name.
    var name: String
    /// Its kind, e.g. `Conv2D 5×5`.
    var kind: String
    /// The shape of one input sample.
    var input: FeatureShape
    /// The shape of one output sample.
    var output: FeatureShape
    /// "5×5" for a convolution or a pooling window, nil otherwise.
    var kernel: String?
    /// The number of kernels (feature maps) for convolution and subsampling.
    var kernels: Int?
    /// Trainable parameters.
    var parameters: Int
    /// Connections (multiply–adds, biases included) per sample.
    var connections: Int
}

extension Network {
    /// Trainable parameters: the store's size less entries held at zero
    /// (LeNet-5's C3 stores its connection table as a masked dense tensor).
    public var trainableParameterCount: Int {
        summary().reduce(0) { $0 + $1.parameters }
    }

    /// Connections (multiply–adds, biases included) per sample: a forward
    /// pass is about 2 FLOP each, a training step (the backward pass's input
    /// and weight gradients too) about 6.
    @_spi(Benchmarks) public var connections: Int { summary().reduce(0) { $0 + $1.connections } }

    /// The layer table: shapes, kernels, parameters and connections.
    func summary() -> [LayerSummary] {
        var rows: [LayerSummary] = []
        var input = inputShape
        for (layer, output) in zip(layers, shapes) {
            let kernel = layer.kernelSummary
            rows.append(LayerSummary(
                name: layer.name, kind: layer.kind, input: input, output: output,
                kernel: kernel?.size, kernels: kernel.flatMap { $0.count > 0 ? $0.count : nil },
                parameters: layer.trainableParameterCount,
                connections: layer.connections(for: input)))
            input = output
        }
        return rows
    }

    /// The summary as an aligned text table with a totals line.
    public func summaryTable() -> String {
        let rows = summary()
        let header = ["layer", "kind", "input", "kernel", "kernels", "output", "parameters", "connections"]
        var cells = [header]
        for r in rows {
            cells.append([r.name, r.kind, r.input.description, r.kernel ?? "-", r.kernels.map(String.init) ?? "-",
                          r.output.description, r.parameters == 0 ? "-" : grouped(r.parameters),
                          r.connections == 0 ? "-" : grouped(r.connections)])
        }
        cells.append(["total", "", "", "", "", "", grouped(rows.reduce(0) { $0 + $1.parameters }),
                      grouped(rows.reduce(0) { $0 + $1.connections })])
        var widths = [Int](repeating: 0, count: header.count)
        for row in cells { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        let numeric: Set<Int> = [4, 6, 7]
        return cells.map { row in
            row.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return numeric.contains(i) ? pad + c : c + pad
            }.joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n")
    }
}

/// 121182 → "121,182".
@_spi(CLI) public func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(ch)
    }
    return value < 0 ? "-" + out : out
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}

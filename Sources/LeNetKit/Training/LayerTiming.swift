import Dispatch

/// Forward and backward time of one layer, like `caffe time`.
struct LayerTiming: Sendable {
    /// The layer's name.
    var name: String
    /// Its kind, e.g. `Conv2D 5×5`.
    var kind: String
    /// Median milliseconds per batch.
    var forwardMilliseconds: Double
    /// Median milliseconds per batch of its backward pass; 0 when the pass
    /// runs inside the previous layer's (`backwardInPrevious`).
    var backwardMilliseconds: Double
    /// Whether its backward pass runs inside the previous layer's: a 2×2
    /// max pool after a convolution (`Network.fusesPooling`), whose time
    /// is in the convolution's row.
    var backwardInPrevious = false
}

extension Network {
    /// Times every layer's forward and backward pass on random input.
    /// - Parameters:
    ///   - n: images per pass.
    ///   - iterations: passes timed; the median is reported.
    /// - Returns: one row per layer, and the median of whole training
    ///   steps (forward, loss, backward, no optimizer) in milliseconds.
    func timeLayers(batch n: Int, iterations: Int = 20) throws -> (layers: [LayerTiming], stepMilliseconds: Double) {
        guard n > 0, iterations > 0 else {
            throw LeNetError("batch and iterations must be > 0, got \(n) and \(iterations)", subject: "timing")
        }
        // Training-mode passes update running statistics: the network's are put back after.
        let savedBuffers = Array(buffers.values)
        defer { _ = buffers.values.update(from: savedBuffers) }
        var rng = SeededGenerator(seed: 1)
        let x = try input(batch: n)
        for i in x.indices { x[i] = rng.uniform(-1, 1) }
        let labels = try IndexBuffer(count: n, name: "timing labels")  // (N)
        for s in 0..<n { labels.pointer[s] = Int32(s % outputShape.count) }
        let loss = SoftmaxCrossEntropy(classes: outputShape.count)
        var forward = [[Double]](repeating: [], count: layers.count)
        var backward = [[Double]](repeating: [], count: layers.count)
        var steps: [Double] = []
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        // The layers' loops split across `threads`, as in `forward`.
        let outer = ThreadBudget.enter(passThreads)
        defer { ThreadBudget.leave(restoring: outer) }
        for _ in 0..<(iterations + 2) {  // two warm-up passes
            let stepStart = now()
            for (i, layer) in layers.enumerated() {
                let t = now()
                layer.forward(activations[i + 1].pointer, activations[i].pointer, batch: n)
                forward[i].append(Double(now() - t) / 1e6)
            }
            _ = try loss.forward(activations[layers.count].pointer, labels.pointer, batch: n)
            parameters.zeroGradients()
            loss.backward(try outputGradient(batch: n))
            for step in backwardPath.reversed() {
                let t = now()
                self.backward(step, batch: n, inputGradient: false)
                // A pool fused into the convolution before it: the time is the convolution's.
                for j in step.layers { backward[j].append(j == step.layers.lowerBound ? Double(now() - t) / 1e6 : 0) }
            }
            steps.append(Double(now() - stepStart) / 1e6)
        }
        func median(_ v: [Double]) -> Double {
            let s = v.dropFirst(2).sorted()
            return s.isEmpty ? 0 : s[s.count / 2]
        }
        let rows = layers.indices.map {
            LayerTiming(name: layers[$0].name, kind: layers[$0].kind,
                        forwardMilliseconds: median(forward[$0]), backwardMilliseconds: median(backward[$0]),
                        backwardInPrevious: backwardFusesPool(at: $0))
        }
        return (rows, median(steps))
    }
}

/// The time of one step of the forward-only path (`Network.infer`).
struct InferenceStepTiming: Sendable {
    /// The names of the layers it runs, joined by `+` (`conv1+pool1+relu1`).
    var name: String
    /// What runs them: the layer's kind, or the fused kernel's name.
    var kind: String
    /// Median milliseconds per batch.
    var milliseconds: Double
}

extension Network {
    /// Times every step of the forward-only path on random input.
    /// - Parameters:
    ///   - n: images per pass.
    ///   - iterations: passes timed after two warm-up passes; the median is reported.
    /// - Returns: one row per step, and the median of whole passes in milliseconds.
    func timeInference(batch n: Int, iterations: Int = 20) throws -> (steps: [InferenceStepTiming], passMilliseconds: Double) {
        guard n > 0, iterations > 0 else {
            throw LeNetError("batch and iterations must be > 0, got \(n) and \(iterations)", subject: "timing")
        }
        try reserve(batch: n, backward: false)
        // Training-mode passes update running statistics: the network's are put back after.
        let savedBuffers = Array(buffers.values)
        defer { _ = buffers.values.update(from: savedBuffers) }
        var rng = SeededGenerator(seed: 1)
        let x = try input(batch: n)
        for i in x.indices { x[i] = rng.uniform(-1, 1) }
        var times = [[Double]](repeating: [], count: inferenceSteps.count)
        var passes: [Double] = []
        func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
        for _ in 0..<(iterations + 2) {
            let start = now()
            var pass = [UInt64](repeating: 0, count: inferenceSteps.count)
            runInference(batch: n, inputInPlace: true, filling: { _, _ in }) { k, nanoseconds in pass[k] += nanoseconds }
            passes.append(Double(now() - start) / 1e6)
            for k in pass.indices { times[k].append(Double(pass[k]) / 1e6) }
        }
        func median(_ v: [Double]) -> Double {
            let s = v.dropFirst(2).sorted()
            return s.isEmpty ? 0 : s[s.count / 2]
        }
        let rows = inferenceSteps.enumerated().map { k, step in
            InferenceStepTiming(name: step.layers.map { layers[$0].name }.joined(separator: "+"),
                                kind: step.kind,
                                milliseconds: median(times[k]))
        }
        return (rows, median(passes))
    }
}

extension Network {
    /// `timeLayers` (or, with `inference`, `timeInference`) as the table
    /// `lenet time` prints: a heading line, each layer's (or step's)
    /// median milliseconds, and the whole step's time and images/s.
    /// Its memory is checked first (one network runs the whole batch; the
    /// loss keeps its probabilities and labels).
    /// - Throws: `LeNetError` naming the batch size when it does not fit, or
    ///   when the batch or iterations are not positive.
    @_spi(CLI) public func timingTable(batch n: Int, iterations: Int, inference: Bool = false) throws -> String {
        guard n > 0 else { throw LeNetError("must be > 0, got \(n)", option: .batchSize) }
        var needs = memoryEstimate(batch: n)
        needs.add("loss buffers", bytes: 4 * n * (outputShape.count + 2))
        try MemoryPlan(remaining: needs, culprit: (.batchSize, n)).check()
        let heading = "\(displayName), batch \(n)" + (inference ? ", forward only" : "")
            + ", \(BLASThreads.summary), \(threads) thread(s), median of \(iterations) passes (ms)"
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        if inference {
            let (rows, pass) = try timeInference(batch: n, iterations: iterations)
            let width = max(4, rows.map(\.name.count).max() ?? 4)
            return ([heading, pad("step", width) + "  kind                   forward"]
                + rows.map { pad($0.name, width) + "  " + pad($0.kind, 21) + String(format: "  %7.3f", $0.milliseconds) }
                + [String(format: "whole pass %.3f ms = %.0f images/s", pass, Double(n) / pass * 1000)]).joined(separator: "\n")
        }
        let (rows, step) = try timeLayers(batch: n, iterations: iterations)
        let width = max(5, rows.map(\.name.count).max() ?? 5)
        var lines = [heading, pad("layer", width) + "  kind            forward  backward"]
        for (i, r) in rows.enumerated() {
            lines.append(pad(r.name, width) + "  " + pad(r.kind, 14) + String(format: "  %7.3f  ", r.forwardMilliseconds)
                + (r.backwardInPrevious ? "   (in \(i > 0 ? rows[i - 1].name : "-"))" : String(format: "%8.3f", r.backwardMilliseconds)))
        }
        let forward = rows.reduce(0) { $0 + $1.forwardMilliseconds }, backward = rows.reduce(0) { $0 + $1.backwardMilliseconds }
        lines.append(String(format: "layers: forward %.3f ms, backward %.3f ms; whole step %.3f ms = %.0f images/s (no optimizer)",
                            forward, backward, step, Double(n) / step * 1000))
        return lines.joined(separator: "\n")
    }
}

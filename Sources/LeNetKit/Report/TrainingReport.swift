// A training or evaluation run as one self-contained HTML page: per-epoch
// curves, the confusion matrix as a heat map, per-class accuracy bars and the
// misclassified test images. Everything is inline (SVG drawn here, images as
// PNG data URIs, CSS in a <style> element): no script, nothing fetched, so
// the page opens from disk, in a CI artifact or attached to an email.
import Foundation

/// What a report shows, and `html()` to draw it.
///
/// ```swift
/// var report = TrainingReport(title: "cifar-lenet on CIFAR-10")
/// report.epochs.append(.init(result: epochResult, evaluation: evaluation))
/// report.evaluation = evaluation
/// report.samples = try TrainingReport.samples(of: evaluation, in: test)
/// try report.write(directory: "report")          // report/index.html
/// ```
struct TrainingReport: Sendable {
    /// One epoch's figures.
    struct EpochRecord: Sendable, Equatable {
        /// The epoch, counting from 1.
        var epoch: Int
        /// Mean training loss over the epoch.
        var trainLoss: Double
        /// Training accuracy counted during the epoch, if known.
        var trainAccuracy: Double?
        /// Mean test loss after the epoch.
        var testLoss: Double
        /// Test accuracy after the epoch, 0...1.
        var testAccuracy: Double
        /// Seconds the epoch's training took.
        var seconds: Double
        /// Wall-clock seconds from the start of the run to the end of this
        /// epoch's evaluation, if known: the report's time-to-accuracy chart.
        var wallSeconds: Double?

        /// - Parameters:
        ///   - epoch: the epoch, from 1.
        ///   - trainLoss: mean training loss.
        ///   - trainAccuracy: training accuracy, 0...1, or nil.
        ///   - testLoss: mean test loss.
        ///   - testAccuracy: test accuracy, 0...1.
        ///   - seconds: training time of the epoch.
        ///   - wallSeconds: seconds since the run began, at the evaluation's end.
        init(epoch: Int, trainLoss: Double, trainAccuracy: Double?, testLoss: Double, testAccuracy: Double, seconds: Double,
                    wallSeconds: Double? = nil) {
            self.wallSeconds = wallSeconds
            self.epoch = epoch
            self.trainLoss = trainLoss
            self.trainAccuracy = trainAccuracy
            self.testLoss = testLoss
            self.testAccuracy = testAccuracy
            self.seconds = seconds
        }

        /// The record of a trained epoch and the evaluation that followed it.
        /// - Parameters:
        ///   - result: the epoch's training figures.
        ///   - evaluation: the test set's figures after it.
        ///   - wallSeconds: seconds since the run began, if known.
        init(result: EpochResult, evaluation: Evaluation, wallSeconds: Double? = nil) {
            self.init(epoch: result.epoch, trainLoss: result.loss, trainAccuracy: result.accuracy,
                      testLoss: evaluation.loss, testAccuracy: evaluation.accuracy, seconds: result.seconds,
                      wallSeconds: wallSeconds)
        }
    }

    /// A misclassified test image with what the network said: the
    /// evaluation's `Misclassification` and the image's pixels.
    struct Sample: Sendable, Equatable {
        /// Which image, its label, the class ranked first and its probability.
        var misclassification: Misclassification
        /// The image as stored in the dataset.
        var image: PixelImage

        /// Its index in the test set.
        var index: Int { misclassification.index }
        /// Its label.
        var truth: Int { misclassification.truth }
        /// The class the network ranked first.
        var predicted: Int { misclassification.predicted }
        /// The softmax probability of `predicted`.
        var probability: Float { misclassification.probability }

        /// - Parameters:
        ///   - misclassification: the evaluation's entry for the image.
        ///   - image: its pixels.
        init(_ misclassification: Misclassification, image: PixelImage) {
            self.misclassification = misclassification
            self.image = image
        }

        /// - Parameters:
        ///   - index: the image's index in the test set.
        ///   - truth: its label.
        ///   - predicted: the class ranked first.
        ///   - probability: the softmax probability of `predicted`.
        ///   - image: its pixels.
        init(index: Int, truth: Int, predicted: Int, probability: Float, image: PixelImage) {
            self.init(Misclassification(index: index, truth: truth, predicted: predicted, probability: probability), image: image)
        }
    }

    /// The page's heading.
    var title: String
    /// Label–value rows shown under the heading (model, data, recipe, …).
    var details: [(label: String, value: String)]
    /// One record per epoch, in order; empty for an evaluation-only report.
    var epochs: [EpochRecord]
    /// The final evaluation on the test set (its confusion matrix and class names).
    var evaluation: Evaluation?
    /// Misclassified test images to show.
    var samples: [Sample]
    /// The test images placed by their features' principal components, if computed.
    var featureMap: FeatureMap?
    /// One test image's maps inside the network, if computed.
    var activationMaps: ActivationMaps?

    /// - Parameters:
    ///   - title: the heading, e.g. "cifar-lenet on CIFAR-10".
    ///   - details: label–value rows shown under it.
    ///   - epochs: one record per epoch, in order; empty for an evaluation.
    ///   - evaluation: the final evaluation on the test set.
    ///   - samples: misclassified test images to show.
    ///   - featureMap: a map of the test images' features, drawn after the
    ///     confusion matrix.
    init(title: String, details: [(label: String, value: String)] = [], epochs: [EpochRecord] = [],
                evaluation: Evaluation? = nil, samples: [Sample] = [], featureMap: FeatureMap? = nil) {
        self.title = title
        self.details = details
        self.epochs = epochs
        self.evaluation = evaluation
        self.samples = samples
        self.featureMap = featureMap
    }

    /// The images of `evaluation.misclassified`, taken from the dataset it was computed on.
    /// - Parameters:
    ///   - evaluation: an evaluation with `misclassified` entries (see `Network.evaluate`'s `misclassifiedLimit`).
    ///   - dataset: the dataset it was computed on.
    /// - Throws: `LeNetError` when an index is outside the dataset.
    static func samples(of evaluation: Evaluation, in dataset: ImageDataset) throws -> [Sample] {
        try evaluation.misclassified.map { m in
            guard m.index >= 0, m.index < dataset.count else {
                throw LeNetError("misclassified image \(m.index) is outside the \(dataset.count) images", subject: dataset.name)
            }
            let size = dataset.imageSize
            let image = try PixelImage(planar: dataset.images[m.index * size..<(m.index + 1) * size],
                                       channels: dataset.channels, height: dataset.height, width: dataset.width)
            return Sample(m, image: image)
        }
    }

    /// Writes `html()` to `directory/index.html` (atomically), creating the directory if needed.
    /// - Parameter directory: where `index.html` goes; created with its parents if missing.
    /// - Returns: the path of the page.
    /// - Throws: `LeNetError` naming the directory or file when it cannot be written.
    @discardableResult
    func write(directory: String) throws -> String {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LeNetError("cannot create the directory: \(error.localizedDescription)", subject: directory)
        }
        let path = (directory as NSString).appendingPathComponent("index.html")
        // Flushed to disk before it replaces the previous page, as checkpoints are.
        try FileIO.writeAtomically(Array(html().utf8), to: path)
        return path
    }

    // MARK: - The page

    /// The whole page: HTML5 with inline CSS and SVG, no script.
    func html() -> String {
        var body = "<h1>\(escape(title))</h1>\n"
        if !details.isEmpty {
            body += "<table class=\"details\">\n"
            for d in details { body += "<tr><th>\(escape(d.label))</th><td>\(escape(d.value))</td></tr>\n" }
            body += "</table>\n"
        }
        if let e = evaluation {
            body += String(format: "<p class=\"headline\">Test accuracy <b>%.2f%%</b> (%@ of %@ images), test loss %.4f</p>\n",
                           e.accuracy * 100, grouped(e.correct), grouped(e.count), e.loss)
        }
        body += curvesSection()
        if let e = evaluation {
            body += "<section class=\"row\">\n"
            body += "<div><h2>Confusion matrix</h2>\n\(confusionSVG(e))</div>\n"
            body += "<div><h2>Accuracy per class</h2>\n\(perClassSVG(e))</div>\n"
            body += "</section>\n"
        }
        if let map = featureMap {
            body += "<h2>Test images by their features</h2>\n"
            body += "<p class=\"note\">Each dot is a test image (\(map.count > FeatureMap.drawnLimit ? "every \((map.count + FeatureMap.drawnLimit - 1) / FeatureMap.drawnLimit)th of \(grouped(map.count))" : "all \(grouped(map.count))")), "
                + "placed by the first two principal components of the \(map.width) features the last layer reads (the output of \(escape(map.layer))), "
                + "coloured by its true class. Ringed: the first \(map.highlighted.count) misclassified images; hover for their classes.</p>\n"
            body += map.svg() + "\n"
        }
        if let activationMaps { body += activationMaps.html() }
        body += samplesSection()
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <title>\(escape(title))</title>
            <style>
            body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; color: #222; margin: 24px 32px; max-width: 1100px; }
            h1 { font-size: 22px; margin: 0 0 12px; }
            h2 { font-size: 16px; margin: 18px 0 8px; }
            table.details { border-collapse: collapse; font-size: 13px; }
            table.details th { text-align: left; font-weight: normal; color: #666; padding: 2px 16px 2px 0; }
            table.details td { padding: 2px 0; }
            p.headline { font-size: 16px; margin: 14px 0; }
            p.note { color: #666; font-size: 13px; }
            section.row { display: flex; flex-wrap: wrap; gap: 8px 40px; align-items: flex-start; }
            svg text { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; }
            .grid { display: flex; flex-wrap: wrap; gap: 10px; }
            figure { margin: 0; width: 96px; font-size: 11px; text-align: center; }
            figure img { width: 96px; height: 96px; image-rendering: pixelated; border: 1px solid #ccc; display: block; }
            figcaption { margin-top: 3px; line-height: 1.3; }
            .truth { color: #1a7f37; }
            .wrong { color: #c0392b; }
            </style>
            </head>
            <body>
            \(body)</body>
            </html>

            """
    }

    private func curvesSection() -> String {
        guard !epochs.isEmpty else {
            return "<p class=\"note\">No per-epoch curves: this report was written from an evaluation, not a training run.</p>\n"
        }
        let x = epochs.map { Double($0.epoch) }
        var loss: [ChartSeries] = [
            ChartSeries(name: "train loss", color: "#1f77b4", points: Array(zip(x, epochs.map(\.trainLoss)))),
            ChartSeries(name: "test loss", color: "#d62728", points: Array(zip(x, epochs.map(\.testLoss)))),
        ]
        loss.removeAll { $0.points.isEmpty }
        var accuracy: [ChartSeries] = []
        let trained = epochs.compactMap { e in e.trainAccuracy.map { (Double(e.epoch), $0 * 100) } }
        if !trained.isEmpty { accuracy.append(ChartSeries(name: "train accuracy", color: "#1f77b4", points: trained)) }
        accuracy.append(ChartSeries(name: "test accuracy", color: "#d62728", points: Array(zip(x, epochs.map { $0.testAccuracy * 100 }))))
        var out = "<section class=\"row\">\n"
        out += "<div><h2>Loss per epoch</h2>\n\(lineChart(loss, yLabel: "cross-entropy"))</div>\n"
        out += "<div><h2>Accuracy per epoch</h2>\n\(lineChart(accuracy, yLabel: "accuracy (%)"))</div>\n"
        out += "</section>\n"
        let timed = epochs.compactMap { e in e.wallSeconds.map { ($0, e.testAccuracy * 100) } }
        if timed.count == epochs.count {
            let series = [ChartSeries(name: "test accuracy", color: "#d62728", points: timed)]
            out += "<div><h2>Test accuracy against time</h2>\n\(lineChart(series, yLabel: "accuracy (%)", time: true))</div>\n"
            out += "<p class=\"note\">Seconds of wall clock from the start of training to the end of each epoch's evaluation.</p>\n"
        }
        if trained.count == epochs.count {
            out += "<p class=\"note\">Train accuracy is counted during each epoch, on the (augmented) training batches as the weights change.</p>\n"
        }
        return out
    }

    private func samplesSection() -> String {
        guard let e = evaluation else { return "" }
        let wrong = e.count - e.correct
        var out = "<h2>Misclassified test images</h2>\n"
        guard !samples.isEmpty else {
            out += "<p class=\"note\">\(wrong == 0 ? "None: every test image was classified right." : "\(grouped(wrong)) images were misclassified; none were collected for this report.")</p>\n"
            return out
        }
        out += "<p class=\"note\">The first \(samples.count) of \(grouped(wrong)) misclassified images, in test-set order: "
            + "<span class=\"truth\">true class</span>, <span class=\"wrong\">predicted class</span> and its probability.</p>\n"
        out += "<div class=\"grid\">\n"
        for s in samples {
            let source: String
            if let png = try? PNG.encode(s.image) {
                source = "data:image/png;base64," + Data(png).base64EncodedString()
            } else {
                source = ""
            }
            let truth = escape(name(s.truth, e)), predicted = escape(name(s.predicted, e))
            out += "<figure><img src=\"\(source)\" alt=\"test image \(s.index)\">"
            out += String(format: "<figcaption>#%d<br><span class=\"truth\">%@</span><br><span class=\"wrong\">%@ %.0f%%</span></figcaption></figure>\n",
                          s.index, truth, predicted, Double(s.probability) * 100)
        }
        out += "</div>\n"
        return out
    }

    private func name(_ k: Int, _ e: Evaluation) -> String {
        k >= 0 && k < e.classNames.count ? e.classNames[k] : "class \(k)"
    }

    // MARK: - Charts

    struct ChartSeries {
        var name: String
        var color: String
        var points: [(x: Double, y: Double)]
    }

    /// A line chart with axes, grid, ticks and a legend; each point carries a
    /// `<title>` tooltip with its value. The x axis is whole epochs, or with
    /// `time`, seconds from 0.
    private func lineChart(_ series: [ChartSeries], yLabel: String, time: Bool = false) -> String {
        let width = 470.0, height = 290.0
        let left = 58.0, right = 14.0, top = 14.0, bottom = 42.0
        let plotW = width - left - right, plotH = height - top - bottom
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }
        let xMin = xs.min() ?? 1, xMax = xs.max() ?? 1
        let (x0, x1) = time ? (0, niceTicks(0, xMax).last ?? xMax) : xMin == xMax ? (xMin - 0.5, xMax + 0.5) : (xMin, xMax)
        let yTicks = niceTicks(ys.min() ?? 0, ys.max() ?? 1)
        let y0 = yTicks.first ?? 0, y1 = yTicks.last ?? 1
        let format = tickFormat(yTicks)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-size=\"11\">\n"
        for t in yTicks {
            let y = f(py(t))
            svg += "<line x1=\"\(f(left))\" y1=\"\(y)\" x2=\"\(f(left + plotW))\" y2=\"\(y)\" stroke=\"#e4e4e4\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(y)\" text-anchor=\"end\" dominant-baseline=\"middle\" fill=\"#444\">\(String(format: format, t))</text>\n"
        }
        let xTicks = time ? niceTicks(0, x1) : xTickValues(x0: x0, x1: x1), xFormat = time ? tickFormat(xTicks) : "%.0f"
        for t in xTicks {
            let x = f(px(t))
            svg += "<line x1=\"\(x)\" y1=\"\(f(top + plotH))\" x2=\"\(x)\" y2=\"\(f(top + plotH + 4))\" stroke=\"#444\"/>"
            svg += "<text x=\"\(x)\" y=\"\(f(top + plotH + 16))\" text-anchor=\"middle\" fill=\"#444\">\(String(format: xFormat, t))</text>\n"
        }
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotW))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#888\"/>\n"
        svg += "<text x=\"\(f(left + plotW / 2))\" y=\"\(f(height - 6))\" text-anchor=\"middle\" fill=\"#222\">\(time ? "seconds" : "epoch")</text>\n"
        svg += "<text transform=\"translate(14 \(f(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\" fill=\"#222\">\(escape(yLabel))</text>\n"
        for s in series {
            let path = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\"/>\n"
            for p in s.points {
                svg += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(s.color)\"><title>\(escape(s.name)), \(time ? String(format: "at %.1f s", p.x) : "epoch \(Int(p.x))"): \(String(format: "%.4f", p.y))</title></circle>"
            }
            svg += "\n"
        }
        // The legend goes in the right-hand corner away from where the lines
        // end: at the bottom when they end high (accuracy), at the top when
        // they end low (loss).
        let lastYs = series.compactMap { $0.points.last?.y }
        let lastMean = lastYs.isEmpty ? y0 : lastYs.reduce(0, +) / Double(lastYs.count)
        let legendTop = py(lastMean) < top + plotH / 2 ? top + plotH - 8 - 16 * Double(series.count) : top + 8
        for (i, s) in series.enumerated() {
            let y = legendTop + 16 * Double(i) + 8
            let x = left + plotW - 130
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(y))\" x2=\"\(f(x + 20))\" y2=\"\(f(y))\" stroke=\"\(s.color)\" stroke-width=\"2\"/>"
            svg += "<text x=\"\(f(x + 26))\" y=\"\(f(y))\" dominant-baseline=\"middle\" fill=\"#222\">\(escape(s.name))</text>\n"
        }
        svg += "</svg>"
        return svg
    }

    /// The confusion matrix as a heat map: rows are true classes, columns
    /// predicted ones; a cell's shade is its share of the row (blue on the
    /// diagonal, red off it), and its count is written in it.
    private func confusionSVG(_ e: Evaluation) -> String {
        let K = e.confusion.count
        let cell = K <= 10 ? 40.0 : max(12, 400.0 / Double(K))
        let labelW = 104.0, labelH = 92.0
        let width = labelW + cell * Double(K) + 10, height = labelH + cell * Double(K) + 30
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-size=\"11\">\n"
        for k in 0..<K {
            let n = escape(name(k, e))
            let cx = labelW + cell * (Double(k) + 0.5)
            svg += "<text transform=\"translate(\(f(cx + 4)) \(f(labelH - 6))) rotate(-55)\" fill=\"#222\">\(n)</text>"
            svg += "<text x=\"\(f(labelW - 6))\" y=\"\(f(labelH + cell * (Double(k) + 0.5)))\" text-anchor=\"end\" dominant-baseline=\"middle\" fill=\"#222\">\(n)</text>\n"
        }
        for (t, row) in e.confusion.enumerated() {
            let total = max(row.reduce(0, +), 1)
            for (p, count) in row.enumerated() {
                let share = Double(count) / Double(total)
                // Off-diagonal shares are small; scale them up so errors show.
                let strength = t == p ? share : min(1, share * 4)
                let color = t == p ? mixColor((33, 102, 172), strength) : mixColor((192, 57, 43), strength)
                let x = labelW + cell * Double(p), y = labelH + cell * Double(t)
                svg += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(cell))\" height=\"\(f(cell))\" fill=\"\(color)\" stroke=\"#fff\">"
                svg += "<title>true \(escape(name(t, e))), predicted \(escape(name(p, e))): \(count) (\(String(format: "%.1f", share * 100))% of the row)</title></rect>"
                if cell >= 24 {
                    let ink = strength > 0.55 ? "#fff" : "#222"
                    svg += "<text x=\"\(f(x + cell / 2))\" y=\"\(f(y + cell / 2))\" text-anchor=\"middle\" dominant-baseline=\"middle\" fill=\"\(ink)\" font-size=\"\(count >= 1000 ? 9 : 11)\">\(count)</text>"
                }
            }
            svg += "\n"
        }
        svg += "<text x=\"\(f(labelW + cell * Double(K) / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\" fill=\"#444\">rows: true class · columns: predicted class</text>\n"
        svg += "</svg>"
        return svg
    }

    /// One horizontal bar per class, with the overall accuracy as a dashed line.
    private func perClassSVG(_ e: Evaluation) -> String {
        let K = e.perClass.count
        let labelW = 104.0, barW = 300.0, rowH = 24.0, top = 10.0
        let width = labelW + barW + 64, height = top + rowH * Double(K) + 34
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-size=\"11\">\n"
        for (k, accuracy) in e.perClass.enumerated() {
            let y = top + rowH * Double(k)
            svg += "<text x=\"\(f(labelW - 6))\" y=\"\(f(y + rowH / 2))\" text-anchor=\"end\" dominant-baseline=\"middle\" fill=\"#222\">\(escape(name(k, e)))</text>"
            svg += "<rect x=\"\(f(labelW))\" y=\"\(f(y + 3))\" width=\"\(f(barW))\" height=\"\(f(rowH - 6))\" fill=\"#eee\"/>"
            svg += "<rect x=\"\(f(labelW))\" y=\"\(f(y + 3))\" width=\"\(f(barW * accuracy))\" height=\"\(f(rowH - 6))\" fill=\"#2166ac\"/>"
            svg += "<text x=\"\(f(labelW + barW + 6))\" y=\"\(f(y + rowH / 2))\" dominant-baseline=\"middle\" fill=\"#222\">\(String(format: "%.1f%%", accuracy * 100))</text>\n"
        }
        let overall = labelW + barW * e.accuracy
        let bottom = top + rowH * Double(K)
        svg += "<line x1=\"\(f(overall))\" y1=\"\(f(top))\" x2=\"\(f(overall))\" y2=\"\(f(bottom))\" stroke=\"#c0392b\" stroke-dasharray=\"4 3\" stroke-width=\"1.5\"/>\n"
        svg += "<text x=\"\(f(overall))\" y=\"\(f(bottom + 16))\" text-anchor=\"middle\" fill=\"#c0392b\">overall \(String(format: "%.1f%%", e.accuracy * 100))</text>\n"
        svg += "</svg>"
        return svg
    }

    /// About five round tick values spanning lo...hi.
    func niceTicks(_ lo: Double, _ hi: Double) -> [Double] {
        var lo = lo, hi = hi
        if !(lo.isFinite && hi.isFinite) { return [0, 1] }
        if hi - lo < 1e-9 { lo -= 0.5; hi += 0.5 }
        let raw = (hi - lo) / 5
        let magnitude = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
        let start = (lo / step).rounded(.down) * step, end = (hi / step).rounded(.up) * step
        return stride(from: start, through: end + step / 2, by: step).map { $0 }
    }

    /// Just enough decimals to tell the ticks apart: "%.0f" for 20, 25, 30;
    /// "%.1f" for 22.5; "%.2f" for 1.75.
    func tickFormat(_ ticks: [Double]) -> String {
        for decimals in 0...4 {
            let scale = pow(10, Double(decimals))
            if ticks.allSatisfy({ abs(($0 * scale).rounded() - $0 * scale) < 1e-6 }) { return "%.\(decimals)f" }
        }
        return "%.4g"
    }

    /// Whole epochs to label: all of them up to 12, else a round step.
    func xTickValues(x0: Double, x1: Double) -> [Double] {
        let first = x0.rounded(.up), last = x1.rounded(.down)
        guard last >= first else { return [] }
        let span = last - first
        let step = span <= 12 ? 1.0 : [2.0, 5, 10, 20, 50, 100].first { span / $0 <= 10 } ?? 200
        guard step > 1 else { return stride(from: first, through: last, by: 1).map { $0 } }
        // The first epoch, then round multiples of the step: 1, 5, 10, 15, …
        let round = stride(from: (first / step).rounded(.down) * step + step, through: last, by: step).map { $0 }
        return [first] + round.filter { $0 - first >= step / 2 }
    }

    private func mixColor(_ rgb: (Int, Int, Int), _ t: Double) -> String {
        let t = min(max(t, 0), 1)
        func c(_ v: Int) -> Int { Int((255 - (255 - Double(v)) * t).rounded()) }
        return String(format: "#%02x%02x%02x", c(rgb.0), c(rgb.1), c(rgb.2))
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }
}

/// Text made safe for HTML and SVG: & < > " escaped.
func escape(_ text: String) -> String {
    var out = ""
    for ch in text {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(ch)
        }
    }
    return out
}

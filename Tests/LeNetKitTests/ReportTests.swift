import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif
@_spi(CLI) @testable import LeNetKit

/// The HTML report: its parts, its numbers, well-formed SVG, and the
/// misclassified images it embeds.
struct ReportTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    /// A briefly trained small network, its test set and an evaluation with misclassified images.
    func trainedRun(epochs: Int = 2) throws -> (trainer: Trainer, test: ImageDataset, records: [TrainingReport.EpochRecord], evaluation: Evaluation) {
        let train = try TrainingTests.squares(count: 120, seed: 1), test = try TrainingTests.squares(count: 60, seed: 2)
        var options = TrainingOptions()
        options.batchSize = 20
        options.epochs = epochs
        options.augmentation = .cifar
        let net = try TrainingTests.smallNetwork()
        let trainer = try Trainer(network: net, dataset: train, options: options)
        var records: [TrainingReport.EpochRecord] = []
        var evaluation = try net.evaluate(on: test, normalization: .half)
        for _ in 0..<epochs {
            let result = try trainer.trainEpoch()
            evaluation = try net.evaluate(on: test, normalization: .half, misclassifiedLimit: 12)
            records.append(.init(result: result, evaluation: evaluation))
        }
        return (trainer, test, records, evaluation)
    }

    @Test func testEvaluationListsTheFirstMisclassifiedImages() throws {
        let test = try TrainingTests.squares(count: 50, seed: 2)
        let net = try TrainingTests.smallNetwork()
        let all = try net.evaluate(on: test, normalization: .half, batchSize: 7, misclassifiedLimit: 1000)
        #expect(all.misclassified.count == all.count - all.correct)
        #expect(all.misclassified.count > 5)
        // Each one really is wrong, with the probability of the predicted class.
        for m in all.misclassified {
            let size = test.imageSize
            let image = test.images[m.index * size..<(m.index + 1) * size].map { (Float($0) / 255 - 0.5) / 0.5 }
            let logits = try net.predict(image)
            let best = logits.indices.max { logits[$0] < logits[$1] } ?? -1
            #expect(m.predicted == best)
            #expect(m.truth == Int(test.labels[m.index]))
            #expect(m.truth != m.predicted)
            let z = logits.map { Double($0) }, zmax = z.max() ?? 0
            let softmax = exp(z[best] - zmax) / z.map { exp($0 - zmax) }.reduce(0, +)
            // Evaluated in batches, here one at a time: logits within the forward
            // chain's bound (75 + 400 + 800 + 120 + 84 terms), probabilities within half of it.
            let logitBound = ErrorBound.reduction(75 + 400 + 800 + 120 + 84, magnitude: Float(z.map(abs).max() ?? 0))
            #expect(abs(Double(m.probability) - softmax) <= (ErrorBound.probability(fromLogitBound: logitBound) + 1e-7))
        }
        #expect(all.misclassified.map(\.index) == all.misclassified.map(\.index).sorted())
        // A cap keeps the first ones; the default collects none.
        let capped = try net.evaluate(on: test, normalization: .half, batchSize: 7, misclassifiedLimit: 3)
        #expect(capped.misclassified == Array(all.misclassified.prefix(3)))
        #expect(try net.evaluate(on: test, normalization: .half).misclassified == [])
    }

    @Test func testTrainingReportHasEveryPartAndItsNumbers() throws {
        let run = try trainedRun()
        let report = try TrainingReport(trainer: run.trainer, test: run.test, epochs: run.records, evaluation: run.evaluation)
        let html = report.html()
        let e = run.evaluation
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(!html.lowercased().contains("<script"), "no JavaScript")
        #expect(!html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "").contains("http"), "nothing fetched")
        // Two charts, the heat map, the bars and the feature map: five SVG images, each well-formed XML.
        let svgs = fragments(of: "svg", in: html)
        #expect(svgs.count == 5)
        for svg in svgs { #expect(isWellFormedXML(svg), "\(String(svg.prefix(300)))") }
        // Lines for train/test loss and train/test accuracy, one point per epoch each.
        #expect(html.components(separatedBy: "<polyline").count - 1 == 4)
        #expect((svgs[0] + svgs[1]).components(separatedBy: "<circle").count - 1 == 4 * run.records.count)
        // The feature map: a dot per test image, a ring per highlighted one, a legend entry per class and one for the rings.
        let map = try #require(report.featureMap)
        #expect(map.count == run.test.count && map.width == 100)  // the small network's fc1 reads 4 × 5 × 5
        #expect(map.highlighted == Array(e.misclassified.prefix(TrainingReport.highlightedCount)))
        #expect(svgs[4].components(separatedBy: "<circle").count - 1
                == run.test.count + map.highlighted.count + run.test.classNames.count + (map.highlighted.isEmpty ? 0 : 1))
        #expect(html.contains("the 100 features the last layer reads (the output of pool)"))
        // The class names label the heat map and the bars.
        for name in run.test.classNames { #expect(html.components(separatedBy: ">\(name)<").count - 1 >= 3, "\(name)") }
        // The numbers: headline accuracy, each cell's count, each class's accuracy.
        #expect(html.contains(String(format: "Test accuracy <b>%.2f%%</b>", e.accuracy * 100)), "headline")
        #expect(html.contains("\(e.correct) of \(e.count) images"))
        for (k, accuracy) in e.perClass.enumerated() {
            #expect(html.contains(String(format: ">%.1f%%</text>", accuracy * 100)), "class \(k)")
        }
        let heat = svgs[2]
        #expect(heat.components(separatedBy: "<rect").count - 1 == 100)
        for (t, row) in e.confusion.enumerated() {
            for (p, count) in row.enumerated() {
                #expect(heat.contains("true \(run.test.classNames[t]), predicted \(run.test.classNames[p]): \(count) ("), "cell \(t),\(p)")
            }
        }
        // Each epoch's test accuracy sits on a point's tooltip.
        for r in run.records {
            #expect(html.contains(String(format: "test accuracy, epoch %d: %.4f", r.epoch, r.testAccuracy * 100)))
            #expect(html.contains(String(format: "train loss, epoch %d: %.4f", r.epoch, r.trainLoss)))
        }
        // The recipe.
        #expect(html.contains("random crop with 4-pixel black padding, horizontal flip"))
        #expect(html.contains("adam, lr 0.001"))
    }

    /// Records with their wall-clock seconds add a chart of test accuracy
    /// against time, a point per epoch at its second.
    @Test func testAccuracyAgainstTime() throws {
        let records = [(1, 0.50, 12.5), (2, 0.61, 25.0), (3, 0.70, 37.75)].map { epoch, accuracy, wall in
            TrainingReport.EpochRecord(epoch: epoch, trainLoss: 1, trainAccuracy: nil, testLoss: 1, testAccuracy: accuracy,
                                       seconds: 12, wallSeconds: wall)
        }
        let html = TrainingReport(title: "timed", epochs: records).html()
        let svgs = fragments(of: "svg", in: html)
        #expect(svgs.count == 3)  // loss, accuracy per epoch, accuracy against time
        for svg in svgs { #expect(isWellFormedXML(svg)) }
        #expect(html.contains("Test accuracy against time"))
        let time = svgs[2]
        #expect(time.contains(">seconds</text>"))
        for (wall, accuracy) in [(12.5, 50.0), (25.0, 61.0), (37.75, 70.0)] {
            #expect(time.contains(String(format: "test accuracy, at %.1f s: %.4f", wall, accuracy)), "\(wall)")
        }
        // Without the seconds of every epoch, no such chart.
        var untimed = records
        untimed[1].wallSeconds = nil
        #expect(!TrainingReport(title: "t", epochs: untimed).html().contains("against time"))
    }

    @Test func testMisclassifiedImagesAreEmbeddedAsPNG() throws {
        let run = try trainedRun(epochs: 1)
        let report = try TrainingReport(trainer: run.trainer, test: run.test, epochs: run.records, evaluation: run.evaluation)
        #expect(report.samples.count == min(12, run.evaluation.count - run.evaluation.correct))
        #expect(report.samples.count > 0)
        let html = report.html()
        let prefix = "src=\"data:image/png;base64,"
        // The misclassified images' section; the maps inside the network come before it.
        let section = try #require(html.components(separatedBy: "<h2>Misclassified test images</h2>").last)
        let uris = section.components(separatedBy: prefix).dropFirst().map { String($0.prefix { $0 != "\"" }) }
        #expect(uris.count == report.samples.count)
        // One test image and the maps of the network's first two convolutions.
        let maps = try #require(report.activationMaps)
        #expect(maps.stages.map(\.maps.count) == run.trainer.network.layers.filter { $0.parameterSpecs.first?.shape.count == 4 }
            .prefix(2).map { $0.parameterSpecs[0].shape[0] })
        let inside = try #require(html.components(separatedBy: "<h2>Inside the network</h2>").last?
            .components(separatedBy: "<h2>Misclassified test images</h2>").first)
        #expect(inside.components(separatedBy: prefix).count - 1 == 1 + maps.stages.reduce(0) { $0 + $1.maps.count })
        for (uri, sample) in zip(uris, report.samples) {
            let png = try #require(Data(base64Encoded: uri))
            let image = try PNG.decode([UInt8](png), subject: "data URI")
            let size = run.test.imageSize
            #expect(image.planar == Array(run.test.images[sample.index * size..<(sample.index + 1) * size]))
            #expect(html.contains("#\(sample.index)<br><span class=\"truth\">\(run.test.classNames[sample.truth])</span>"))
        }
    }

    @Test func testEvaluationReportAndEscapingAndWrite() throws {
        let test = try ImageDataset(name: "tiny <test>", channels: 1, height: 2, width: 2, images: [0, 50, 100, 255, 9, 9, 9, 9],
                                    labels: [0, 1], classNames: ["a&b", "\"c\""])
        let evaluation = Evaluation(correct: 1, count: 2, confusion: [[1, 0], [1, 0]], classNames: test.classNames,
                                    seconds: 0.5, loss: 0.75,
                                    misclassified: [Misclassification(index: 1, truth: 1, predicted: 0, probability: 0.875)])
        let report = try TrainingReport(weights: "w.safetensors", model: "cifar-lenet", metadata: ["epoch": "7"], test: test,
                                        evaluation: evaluation)
        let html = report.html()
        #expect(html.contains("a&amp;b"))
        #expect(html.contains("&quot;c&quot;"))
        #expect(html.contains("tiny &lt;test&gt;"))
        #expect(!html.contains("a&b"))
        #expect(html.contains("No per-epoch curves"))
        #expect(html.contains("Test accuracy <b>50.00%</b>"))
        #expect(html.contains("a&amp;b 88%"), "predicted class with its probability")
        #expect(html.contains("<th>epochs trained</th><td>7</td>"))
        let svgs = fragments(of: "svg", in: html)
        #expect(svgs.count == 2, "no curves: heat map and bars")
        for svg in svgs { #expect(isWellFormedXML(svg)) }

        let dir = try temporaryDirectory().appendingPathComponent("nested/report").path
        let path = try report.write(directory: dir)
        #expect(path == dir + "/index.html")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == html)
        assertError("/proc/nope") { try report.write(directory: "/proc/nope") }
    }

    @Test func testNiceTicksAndFormats() throws {
        let report = TrainingReport(title: "t")
        #expect(report.niceTicks(20.6, 33.1) == [20, 22.5, 25, 27.5, 30, 32.5, 35])
        let loss = report.niceTicks(1.83, 2.17)
        #expect(loss.count == 5)
        for (tick, want) in zip(loss, [1.8, 1.9, 2.0, 2.1, 2.2]) { #expect(abs(tick - want) <= 1e-9) }
        #expect(report.tickFormat([20, 22.5, 25]) == "%.1f")
        #expect(report.tickFormat([20, 30, 40]) == "%.0f")
        #expect(report.tickFormat([1.75, 2]) == "%.2f")
        #expect(report.xTickValues(x0: 1, x1: 3) == [1, 2, 3])
        #expect(report.xTickValues(x0: 1, x1: 30) == [1, 5, 10, 15, 20, 25, 30])
        #expect(report.xTickValues(x0: 1, x1: 100) == [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
        #expect(report.xTickValues(x0: 11, x1: 40) == [11, 15, 20, 25, 30, 35, 40])
    }

    /// Every `<tag …>…</tag>` in `html`.
    func fragments(of tag: String, in html: String) -> [String] {
        var out: [String] = []
        var rest = html[...]
        while let start = rest.range(of: "<\(tag) "), let end = rest.range(of: "</\(tag)>", range: start.upperBound..<rest.endIndex) {
            out.append(String(rest[start.lowerBound..<end.upperBound]))
            rest = rest[end.upperBound...]
        }
        return out
    }

    func isWellFormedXML(_ text: String) -> Bool {
        XMLParser(data: Data(text.utf8)).parse()
    }
}

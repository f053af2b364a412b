import Foundation
import XCTest
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import LeNetKit

/// The HTML report: its parts, its numbers, well-formed SVG, and the
/// misclassified images it embeds.
final class ReportTests: XCTestCase {
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

    func testEvaluationListsTheFirstMisclassifiedImages() throws {
        let test = try TrainingTests.squares(count: 50, seed: 2)
        let net = try TrainingTests.smallNetwork()
        let all = try net.evaluate(on: test, normalization: .half, batchSize: 7, misclassifiedLimit: 1000)
        XCTAssertEqual(all.misclassified.count, all.count - all.correct)
        XCTAssertGreaterThan(all.misclassified.count, 5)
        // Each one really is wrong, with the probability of the predicted class.
        for m in all.misclassified {
            let size = test.imageSize
            let image = test.images[m.index * size..<(m.index + 1) * size].map { (Float($0) / 255 - 0.5) / 0.5 }
            let logits = try net.predict(image)
            let best = logits.indices.max { logits[$0] < logits[$1] } ?? -1
            XCTAssertEqual(m.predicted, best)
            XCTAssertEqual(m.truth, Int(test.labels[m.index]))
            XCTAssertNotEqual(m.truth, m.predicted)
            let z = logits.map { Double($0) }, zmax = z.max() ?? 0
            let softmax = exp(z[best] - zmax) / z.map { exp($0 - zmax) }.reduce(0, +)
            // Evaluated in batches, here one at a time: logits within the forward
            // chain's bound (75 + 400 + 800 + 120 + 84 terms), probabilities within half of it.
            let logitBound = ErrorBound.reduction(75 + 400 + 800 + 120 + 84, magnitude: Float(z.map(abs).max() ?? 0))
            XCTAssertEqual(Double(m.probability), softmax, accuracy: ErrorBound.probability(fromLogitBound: logitBound) + 1e-7)
        }
        XCTAssertEqual(all.misclassified.map(\.index), all.misclassified.map(\.index).sorted())
        // A cap keeps the first ones; the default collects none.
        let capped = try net.evaluate(on: test, normalization: .half, batchSize: 7, misclassifiedLimit: 3)
        XCTAssertEqual(capped.misclassified, Array(all.misclassified.prefix(3)))
        XCTAssertEqual(try net.evaluate(on: test, normalization: .half).misclassified, [])
    }

    func testTrainingReportHasEveryPartAndItsNumbers() throws {
        let run = try trainedRun()
        let report = try TrainingReport(trainer: run.trainer, test: run.test, epochs: run.records, evaluation: run.evaluation)
        let html = report.html()
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertFalse(html.lowercased().contains("<script"), "no JavaScript")
        XCTAssertFalse(html.replacingOccurrences(of: "xmlns=\"http://www.w3.org/2000/svg\"", with: "").contains("http"),
                       "nothing fetched")
        // Two charts, the heat map and the bars: four SVG images, each well-formed XML.
        let svgs = fragments(of: "svg", in: html)
        XCTAssertEqual(svgs.count, 4)
        for svg in svgs { XCTAssertTrue(isWellFormedXML(svg), String(svg.prefix(300))) }
        // Lines for train/test loss and train/test accuracy, one point per epoch each.
        XCTAssertEqual(html.components(separatedBy: "<polyline").count - 1, 4)
        XCTAssertEqual(html.components(separatedBy: "<circle").count - 1, 4 * run.records.count)
        // The class names label the heat map and the bars.
        for name in run.test.classNames { XCTAssertGreaterThanOrEqual(html.components(separatedBy: ">\(name)<").count - 1, 3, name) }
        // The numbers: headline accuracy, each cell's count, each class's accuracy.
        let e = run.evaluation
        XCTAssertTrue(html.contains(String(format: "Test accuracy <b>%.2f%%</b>", e.accuracy * 100)), "headline")
        XCTAssertTrue(html.contains("\(e.correct) of \(e.count) images"))
        for (k, accuracy) in e.perClass.enumerated() {
            XCTAssertTrue(html.contains(String(format: ">%.1f%%</text>", accuracy * 100)), "class \(k)")
        }
        let heat = svgs[2]
        XCTAssertEqual(heat.components(separatedBy: "<rect").count - 1, 100)
        for (t, row) in e.confusion.enumerated() {
            for (p, count) in row.enumerated() {
                XCTAssertTrue(heat.contains("true \(run.test.classNames[t]), predicted \(run.test.classNames[p]): \(count) ("), "cell \(t),\(p)")
            }
        }
        // Each epoch's test accuracy sits on a point's tooltip.
        for r in run.records {
            XCTAssertTrue(html.contains(String(format: "test accuracy, epoch %d: %.4f", r.epoch, r.testAccuracy * 100)))
            XCTAssertTrue(html.contains(String(format: "train loss, epoch %d: %.4f", r.epoch, r.trainLoss)))
        }
        // The recipe.
        XCTAssertTrue(html.contains("random crop with 4-pixel black padding, horizontal flip"))
        XCTAssertTrue(html.contains("adam, lr 0.001"))
    }

    func testMisclassifiedImagesAreEmbeddedAsPNG() throws {
        let run = try trainedRun(epochs: 1)
        let report = try TrainingReport(trainer: run.trainer, test: run.test, epochs: run.records, evaluation: run.evaluation)
        XCTAssertEqual(report.samples.count, min(12, run.evaluation.count - run.evaluation.correct))
        XCTAssertGreaterThan(report.samples.count, 0)
        let html = report.html()
        let prefix = "src=\"data:image/png;base64,"
        let uris = html.components(separatedBy: prefix).dropFirst().map { String($0.prefix { $0 != "\"" }) }
        XCTAssertEqual(uris.count, report.samples.count)
        for (uri, sample) in zip(uris, report.samples) {
            let png = try XCTUnwrap(Data(base64Encoded: uri))
            let image = try PNG.decode([UInt8](png), subject: "data URI")
            let size = run.test.imageSize
            XCTAssertEqual(image.planar, Array(run.test.images[sample.index * size..<(sample.index + 1) * size]))
            XCTAssertTrue(html.contains("#\(sample.index)<br><span class=\"truth\">\(run.test.classNames[sample.truth])</span>"))
        }
    }

    func testEvaluationReportAndEscapingAndWrite() throws {
        let test = try ImageDataset(name: "tiny <test>", channels: 1, height: 2, width: 2, images: [0, 50, 100, 255, 9, 9, 9, 9],
                                    labels: [0, 1], classNames: ["a&b", "\"c\""])
        let evaluation = Evaluation(correct: 1, count: 2, confusion: [[1, 0], [1, 0]], classNames: test.classNames,
                                    seconds: 0.5, loss: 0.75,
                                    misclassified: [Misclassification(index: 1, truth: 1, predicted: 0, probability: 0.875)])
        let report = try TrainingReport(weights: "w.safetensors", model: "cifar-lenet", metadata: ["epoch": "7"], test: test,
                                        evaluation: evaluation)
        let html = report.html()
        XCTAssertTrue(html.contains("a&amp;b"))
        XCTAssertTrue(html.contains("&quot;c&quot;"))
        XCTAssertTrue(html.contains("tiny &lt;test&gt;"))
        XCTAssertFalse(html.contains("a&b"))
        XCTAssertTrue(html.contains("No per-epoch curves"))
        XCTAssertTrue(html.contains("Test accuracy <b>50.00%</b>"))
        XCTAssertTrue(html.contains("a&amp;b 88%"), "predicted class with its probability")
        XCTAssertTrue(html.contains("<th>epochs trained</th><td>7</td>"))
        let svgs = fragments(of: "svg", in: html)
        XCTAssertEqual(svgs.count, 2, "no curves: heat map and bars")
        for svg in svgs { XCTAssertTrue(isWellFormedXML(svg)) }

        let dir = try temporaryDirectory(self).appendingPathComponent("nested/report").path
        let path = try report.write(directory: dir)
        XCTAssertEqual(path, dir + "/index.html")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), html)
        assertError("/proc/nope") { try report.write(directory: "/proc/nope") }
    }

    func testNiceTicksAndFormats() throws {
        let report = TrainingReport(title: "t")
        XCTAssertEqual(report.niceTicks(20.6, 33.1), [20, 22.5, 25, 27.5, 30, 32.5, 35])
        let loss = report.niceTicks(1.83, 2.17)
        XCTAssertEqual(loss.count, 5)
        for (tick, want) in zip(loss, [1.8, 1.9, 2.0, 2.1, 2.2]) { XCTAssertEqual(tick, want, accuracy: 1e-9) }
        XCTAssertEqual(report.tickFormat([20, 22.5, 25]), "%.1f")
        XCTAssertEqual(report.tickFormat([20, 30, 40]), "%.0f")
        XCTAssertEqual(report.tickFormat([1.75, 2]), "%.2f")
        XCTAssertEqual(report.xTickValues(x0: 1, x1: 3), [1, 2, 3])
        XCTAssertEqual(report.xTickValues(x0: 1, x1: 30), [1, 5, 10, 15, 20, 25, 30])
        XCTAssertEqual(report.xTickValues(x0: 1, x1: 100), [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
        XCTAssertEqual(report.xTickValues(x0: 11, x1: 40), [11, 15, 20, 25, 30, 35, 40])
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

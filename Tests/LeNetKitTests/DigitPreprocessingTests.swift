import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Finding a digit in a photo or scan and laying it out as MNIST's are
/// (`DigitPreprocessing`), reading a row of digits, and the checkpoint key
/// that turns it on. The pages are drawn here with crisp shapes, so where
/// the ink is is known to the pixel.
struct DigitPreprocessingTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()
    static let lenet5Input = FeatureShape(channels: 1, height: 32, width: 32)

    /// A crisp shape `height` pixels high: true where there is ink. (H, W)
    enum Glyph {
        /// A "7": a bar along the top and a stroke down to the lower left.
        case seven
        /// A "1": an upright bar.
        case one
        /// A "0": an elliptical ring.
        case zero

        func mask(height: Int) -> [[Bool]] {
            let h = Double(height)
            let width: Int
            switch self {
            case .seven: width = Int(0.7 * h)
            case .one: width = max(2, Int(0.14 * h))
            case .zero: width = Int(0.75 * h)
            }
            let w = Double(width), stroke = max(2, 0.14 * h)
            return (0..<height).map { y in
                (0..<width).map { x in
                    let (px, py) = (Double(x) + 0.5, Double(y) + 0.5)
                    switch self {
                    case .seven:
                        if py < stroke { return true }
                        // The stroke from the bar's right end to the bottom, a third of the way in.
                        let t = py / h, centre = w - stroke / 2 - t * (w * 0.6)
                        return abs(px - centre) < stroke / 2
                    case .one:
                        return true
                    case .zero:
                        let u = (px - w / 2) / (w / 2), v = (py - h / 2) / (h / 2)
                        let r = (u * u + v * v).squareRoot(), inner = 1 - stroke / (w / 2)
                        return r <= 1 && r >= inner
                    }
                }
            }
        }
    }

    /// A page `width`×`height` with `glyphs` drawn at their positions.
    /// - Parameters:
    ///   - paper: the paper's level at (x, y), 0...255.
    ///   - ink: the ink's level before lighting, 0...255.
    ///   - light: the lighting at (x, y), multiplying both.
    ///   - channels: 1 (gray) or 3 (the same level in each).
    static func page(width: Int, height: Int, glyphs: [(mask: [[Bool]], x: Int, y: Int)], paper: Double, ink: Double,
                     light: (Int, Int) -> Double = { _, _ in 1 }, channels: Int = 1,
                     noise: Double = 0, seed: UInt64 = 1) throws -> PixelImage {
        var inked = [Bool](repeating: false, count: width * height)  // (H, W)
        for g in glyphs {
            for (dy, row) in g.mask.enumerated() {
                for (dx, on) in row.enumerated() where on { inked[(g.y + dy) * width + g.x + dx] = true }
            }
        }
        var random = SeededGenerator(seed: seed)
        var pixels = [UInt8](repeating: 0, count: width * height * channels)  // (H, W, C)
        for y in 0..<height {
            for x in 0..<width {
                var v = (inked[y * width + x] ? ink : paper) * light(x, y)
                if noise > 0 {
                    // A sum of four uniforms: close to a Gaussian of this σ.
                    let u = (0..<4).map { _ in Double.random(in: -0.5...0.5, using: &random) }.reduce(0, +)
                    v += noise * u * 3.0.squareRoot()
                }
                for c in 0..<channels { pixels[(y * width + x) * channels + c] = UInt8(min(max(v.rounded(), 0), 255)) }
            }
        }
        return try PixelImage(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// The box a mask placed at (x, y) covers: its ink's extent.
    static func box(_ mask: [[Bool]], x: Int, y: Int) -> PixelBox {
        let rows = mask.indices.filter { mask[$0].contains(true) }
        let columns = mask[0].indices.filter { c in mask.contains { $0[c] } }
        return PixelBox(x: x + columns.first!, y: y + rows.first!, width: columns.last! - columns.first! + 1,
                        height: rows.last! - rows.first! + 1)
    }

    // MARK: - One digit

    /// Dark ink on paper lit from one side reads as the same digit as light
    /// ink on black: lighting scales paper and ink alike, and the ink is
    /// measured as a share of the paper's local level.
    ///
    /// Bound: the page is rounded to whole levels, so each pixel is off by
    /// at most 0.5 of 255, and the paper's fitted level by as much; an ink
    /// pixel's share (p − g)/p moves by at most (0.5 + 0.5)/(255 · p) with
    /// p ≥ 0.7 · 235/255 the darkest paper, 0.0061, and the full strength
    /// (a percentile of those shares) as much, so ink maps to at least
    /// 1 − 2 · 0.0061/0.9 of 255: 3.5 levels below 255. Paper maps to at
    /// most 1 level. Area averaging is a convex combination (no larger
    /// difference) and rounds once more: at most 5 levels apart.
    @Test func testDarkInkOnALitPageIsLaidOutAsLightInkOnBlack() throws {
        let mask = Glyph.seven.mask(height: 120)
        let light = try Self.page(width: 300, height: 260, glyphs: [(mask, 60, 70)], paper: 0, ink: 255)
        let dark = try Self.page(width: 420, height: 300, glyphs: [(mask, 170, 40)], paper: 235, ink: 20,
                                 light: { x, _ in 1 - 0.3 * Double(x) / 419 }, channels: 3)
        let p = DigitPreprocessing()
        let a = try p.digit(in: light, inputShape: Self.lenet5Input)
        let b = try p.digit(in: dark, inputShape: Self.lenet5Input)
        #expect(a.box == Self.box(mask, x: 60, y: 70))
        #expect(b.box == Self.box(mask, x: 170, y: 40))
        #expect(a.input.width == 32 && a.input.height == 32 && a.input.channels == 1)
        let worst = zip(a.input.pixels, b.input.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= 5, "light and dark versions differ by \(worst) levels")
    }

    /// The layout is MNIST's: the longer side of the ink fits 20 pixels,
    /// the centre of mass falls within half a pixel of (14, 14) of the
    /// 28×28 field, and the field sits 2 pixels in from the 32×32 input's
    /// edges (nothing outside it).
    @Test func testLayoutIsMNISTs() throws {
        let mask = Glyph.seven.mask(height: 90)
        let image = try Self.page(width: 400, height: 300, glyphs: [(mask, 200, 150)], paper: 240, ink: 30)
        let input = try DigitPreprocessing().digit(in: image, inputShape: Self.lenet5Input).input
        var mass = 0.0, mx = 0.0, my = 0.0
        var columns: [Int] = [], rows: [Int] = []
        for y in 0..<32 {
            for x in 0..<32 where input.pixels[y * 32 + x] > 0 {
                let v = Double(input.pixels[y * 32 + x])
                mass += v; mx += v * Double(x); my += v * Double(y)
                columns.append(x); rows.append(y)
            }
        }
        let height = rows.max()! - rows.min()! + 1
        #expect(height == 20, "the ink is \(height) rows high")
        #expect(abs(mx / mass - 16) <= 0.5 && abs(my / mass - 16) <= 0.5, "centre of mass (\(mx / mass), \(my / mass))")
        #expect(columns.min()! >= 2 && columns.max()! <= 29 && rows.min()! >= 2 && rows.max()! <= 29)
    }

    /// The box is found wherever the digit is, at any size, with noise on
    /// the paper; on a page past `analysisSide` the analysis is averaged
    /// down by a whole factor, so the box is good to that factor.
    @Test(arguments: [(400, 300, 20, 30, 60), (900, 700, 700, 500, 150), (3000, 2000, 1400, 900, 400)])
    func testBoxIsFoundAnywhere(width: Int, height: Int, x: Int, y: Int, size: Int) throws {
        let mask = Glyph.zero.mask(height: size)
        let image = try Self.page(width: width, height: height, glyphs: [(mask, x, y)], paper: 225, ink: 40,
                                  light: { px, py in 1 - 0.2 * Double(px + py) / Double(width + height) }, noise: 6)
        let found = try DigitPreprocessing().digit(in: image, inputShape: Self.lenet5Input).box
        let truth = Self.box(mask, x: x, y: y)
        let factor = (max(width, height) + 1023) / 1024
        for (f, t) in [(found.x, truth.x), (found.y, truth.y), (found.x + found.width, truth.x + truth.width),
                       (found.y + found.height, truth.y + truth.height)] {
            #expect(abs(f - t) <= factor, "found \(found), drew \(truth)")
        }
    }

    /// A "5"'s bar drawn apart from its body is part of the digit; a speck
    /// far off is not.
    @Test func testNearbyPiecesJoinAndSpecksDoNot() throws {
        let body = Glyph.zero.mask(height: 60), bar = [[Bool]](repeating: [Bool](repeating: true, count: 40), count: 8)
        let speck = [[Bool]](repeating: [Bool](repeating: true, count: 3), count: 3)
        let image = try Self.page(width: 400, height: 300, glyphs: [(body, 100, 100), (bar, 110, 86), (speck, 350, 250)],
                                  paper: 230, ink: 25)
        let box = try DigitPreprocessing().digit(in: image, inputShape: Self.lenet5Input).box
        #expect(box == PixelBox(x: 100, y: 86, width: 50, height: 74))
    }

    /// Images with no digit, and extreme sizes, end in an answer or one
    /// clear error, in bounded time.
    @Test func testHostileImagesEndInAnAnswerOrAClearError() throws {
        let p = DigitPreprocessing()
        func expectNoInk(_ image: PixelImage) {
            #expect(throws: DigitPreprocessing.noInk) { try p.digit(in: image, inputShape: Self.lenet5Input) }
        }
        expectNoInk(try PixelImage(width: 1, height: 1, channels: 1, pixels: [128]))
        expectNoInk(try PixelImage(width: 500, height: 400, channels: 3, pixels: [UInt8](repeating: 200, count: 500 * 400 * 3)))
        // A page of noise: every level equally likely.
        var random = SeededGenerator(seed: 7)
        let noise = try PixelImage(width: 400, height: 400, channels: 1, pixels: (0..<160_000).map { _ in UInt8.random(in: 0...255, using: &random) })
        // Its noise level (1.4826 × the median departure, about 0.37 of the
        // range) puts clear ink past 4 × 0.37 > 1, beyond any pixel.
        expectNoInk(noise)
        // One huge blot: a disk most of the page high.
        var disk = [[Bool]]()
        for y in 0..<300 { disk.append((0..<300).map { x in pow(Double(x) - 149.5, 2) + pow(Double(y) - 149.5, 2) <= 150 * 150 }) }
        let blot = try Self.page(width: 500, height: 400, glyphs: [(disk, 120, 50)], paper: 240, ink: 10)
        #expect(try p.digit(in: blot, inputShape: Self.lenet5Input).box == Self.box(disk, x: 120, y: 50), "the blot")
        // 10,000 pixels wide and 60 high, analysed at a tenth.
        let seven = Glyph.seven.mask(height: 40)
        let strip = try Self.page(width: 10_000, height: 60, glyphs: [(seven, 7000, 10)], paper: 230, ink: 20)
        let found = try p.digit(in: strip, inputShape: Self.lenet5Input).box
        let truth = Self.box(seven, x: 7000, y: 10)
        #expect(abs(found.x - truth.x) <= 10 && abs(found.x + found.width - truth.x - truth.width) <= 10, "\(found) for \(truth)")
        // A row of 150 separate marks is not a number.
        let dot = [[Bool]](repeating: [Bool](repeating: true, count: 4), count: 4)
        let dots = try Self.page(width: 1000, height: 100, glyphs: (0..<150).map { (dot, 6 * $0 + 20, 48) }, paper: 230, ink: 20)
        do {
            _ = try p.digits(in: dots, inputShape: Self.lenet5Input)
            Issue.record("150 marks were read as a number")
        } catch let error as LeNetError {
            #expect(error == LeNetError("found 150 separate marks; a number is one row of at most 100 digits", subject: "image"))
        }
        // An input too small for a digit is refused, naming it.
        #expect(throws: LeNetError("the network's input 1×3×3 is too small for a digit", subject: "digit preprocessing")) {
            try p.digit(in: blot, inputShape: FeatureShape(channels: 1, height: 3, width: 3))
        }
        var huge = DigitPreprocessing()
        huge.analysisSide = .max
        #expect(throws: LeNetError("analysisSide must be 16...16384, got \(Int.max)", subject: "digit preprocessing")) {
            try huge.digit(in: blot, inputShape: Self.lenet5Input)
        }
    }

    /// Dark strokes on a transparent sheet are ink (alpha composited over
    /// white when the opaque pixels are dark).
    @Test func testDarkStrokesOnTransparencyAreInk() throws {
        let mask = Glyph.seven.mask(height: 50)
        var pixels = [UInt8](repeating: 0, count: 200 * 150 * 2)  // (H, W, gray + alpha): transparent black
        for (dy, row) in mask.enumerated() {
            for (dx, on) in row.enumerated() where on { pixels[((40 + dy) * 200 + 70 + dx) * 2 + 1] = 255 }
        }
        let image = try PixelImage(width: 200, height: 150, channels: 2, pixels: pixels)
        #expect(try DigitPreprocessing().digit(in: image, inputShape: Self.lenet5Input).box == Self.box(mask, x: 70, y: 40))
    }

    // MARK: - A row of digits

    /// Without a classifier, the row's pieces are its digits: one each,
    /// left to right, a dot between them dropped.
    @Test func testARowSplitsIntoItsPieces() throws {
        let glyphs: [(mask: [[Bool]], x: Int, y: Int)] = [
            (Glyph.seven.mask(height: 80), 30, 40), (Glyph.one.mask(height: 80), 110, 40),
            ([[Bool]](repeating: [Bool](repeating: true, count: 6), count: 6), 140, 114),  // a dot on the baseline
            (Glyph.zero.mask(height: 80), 170, 40),
        ]
        let image = try Self.page(width: 320, height: 200, glyphs: glyphs, paper: 235, ink: 30, noise: 4)
        let found = try DigitPreprocessing().digits(in: image, inputShape: Self.lenet5Input)
        let truth = [0, 1, 3].map { Self.box(glyphs[$0].mask, x: glyphs[$0].x, y: glyphs[$0].y) }
        #expect(found.map(\.box) == truth)
    }

    /// Two touching "0"s are one piece of ink; a classifier that knows a
    /// "0" when it sees one (here: sure of an input whose middle row
    /// crosses two strokes, unsure of anything else) splits them, and
    /// leaves a lone "0" whole.
    @Test func testTouchingDigitsAreSplitWhereTheClassifierReadsThemBest() throws {
        let zero = Glyph.zero.mask(height: 80)
        let width = zero[0].count
        let glyphs: [(mask: [[Bool]], x: Int, y: Int)] = [(zero, 40, 40), (zero, 40 + width - 3, 40), (zero, 200, 40)]
        let image = try Self.page(width: 320, height: 180, glyphs: glyphs, paper: 235, ink: 30)
        let judge: ([PixelImage]) throws -> [ClassScore] = { inputs in
            inputs.map { input in
                let row = input.pixels[16 * input.width..<17 * input.width].map { $0 > 128 }
                let strokes = zip(row, [false] + row).filter { $0 && !$1 }.count
                return strokes == 2 ? ClassScore(index: 0, name: "0", probability: 0.9) : ClassScore(index: 8, name: "8", probability: 0.2)
            }
        }
        let found = try DigitPreprocessing().digits(in: image, inputShape: Self.lenet5Input, confidence: judge)
        let truth = glyphs.map { Self.box($0.mask, x: $0.x, y: $0.y) }
        #expect(found.count == 3, "read \(found.map(\.box))")
        if found.count == 3 {
            // The cut falls on a slice edge: within an eighth of the height (10 pixels) of where the rings meet.
            #expect(found[0].box.x == truth[0].x && abs(found[0].box.x + found[0].box.width - (truth[0].x + truth[0].width)) <= 10)
            #expect(abs(found[1].box.x - truth[1].x) <= 10 && found[1].box.x + found[1].box.width == truth[1].x + truth[1].width)
            #expect(found[2].box == truth[2])
        }
    }

    /// A bar much wider than it is high, against the right edge: cut
    /// evenly without a classifier (never more digits than columns, never
    /// past the edge); with one, the candidates classified stay bounded by
    /// `maximumSlices` however long the bar.
    @Test func testLongBarsAreCutWithinBounds() throws {
        let bar = [[Bool]](repeating: [Bool](repeating: true, count: 150), count: 3)
        let strip = try Self.page(width: 200, height: 40, glyphs: [(bar, 50, 20)], paper: 230, ink: 20)
        let pieces = try DigitPreprocessing().digits(in: strip, inputShape: Self.lenet5Input)
        #expect(!pieces.isEmpty && pieces.count <= 150)
        #expect(pieces.allSatisfy { $0.box.x >= 50 && $0.box.x + $0.box.width <= 200 }, "\(pieces.map(\.box))")

        let line = [[Bool]](repeating: [Bool](repeating: true, count: 1000), count: 12)
        let page = try Self.page(width: 1024, height: 200, glyphs: [(line, 12, 90)], paper: 230, ink: 20)
        var classified = 0
        _ = try DigitPreprocessing().digits(in: page, inputShape: Self.lenet5Input) { inputs in
            classified += inputs.count
            return inputs.map { _ in ClassScore(index: 1, name: "1", probability: 0.5) }
        }
        // Runs of at most 1.7 heights are at most 14 slices of an eighth of a height each.
        #expect(classified > 0 && classified <= DigitPreprocessing.maximumSlices * 14, "\(classified) candidates")
    }

    // MARK: - Checkpoints and the classifier

    /// Training on MNIST records `preprocessing: digit`; any other dataset
    /// `resize`; files from before the key go by their dataset's name; a
    /// bad value is refused naming the file.
    @Test func testCheckpointsSayHowImagesArePrepared() throws {
        #expect(Checkpoint.preprocessing(trainedOn: "MNIST train") == .digit)
        #expect(Checkpoint.preprocessing(trainedOn: "Fashion-MNIST train") == .resize)
        #expect(Checkpoint.preprocessing(trainedOn: "CIFAR-10 train") == .resize)
        #expect(try Checkpoint.preprocessing(metadata: ["dataset": "MNIST train"], subject: "f") == .digit)
        #expect(try Checkpoint.preprocessing(metadata: ["dataset": "MNIST train", "preprocessing": "resize"], subject: "f") == .resize)
        #expect(try Checkpoint.preprocessing(metadata: [:], subject: "f") == .resize)
        #expect(throws: LeNetError("metadata 'preprocessing' is 'crop'; expected 'resize' or 'digit'", subject: "w.safetensors")) {
            try Checkpoint.preprocessing(metadata: ["preprocessing": "crop"], subject: "w.safetensors")
        }
        let digits = try ImageDataset(name: "MNIST train", channels: 1, height: 32, width: 32,
                                      images: [UInt8](repeating: 0, count: 4 * 1024), labels: [0, 1, 2, 3],
                                      classNames: (0..<10).map(String.init))
        var options = TrainingOptions()
        options.batchSize = 2
        options.normalization = try Normalization(mean: [0.1307], std: [0.3081])
        let trainer = try Trainer(network: Models.lenet5(seed: 1), dataset: digits, options: options)
        #expect(trainer.metadata[Checkpoint.Key.preprocessing] == "digit")
    }

    /// A digit classifier reads a photographed digit by finding it: the
    /// box, and what the network saw, which `PredictionImages` writes as PNG.
    @Test func testClassifierFindsTheDigitAndShowsWhatTheNetworkSaw() throws {
        let network = try Models.lenet5(seed: 3)
        let classifier = try Classifier(network: network, normalization: Normalization(mean: [0.5], std: [0.5]),
                                        classNames: (0..<10).map(String.init), preprocessing: .digit)
        let mask = Glyph.seven.mask(height: 70)
        let photo = try Self.page(width: 320, height: 240, glyphs: [(mask, 90, 60)], paper: 230, ink: 25, channels: 3, noise: 3)
        let reading = try classifier.read([photo], top: 2)[0]
        #expect(reading.box == Self.box(mask, x: 90, y: 60))
        #expect(reading.scores.count == 2 && reading.scores[0].probability >= reading.scores[1].probability)
        #expect(reading.input == (try DigitPreprocessing().digit(in: photo, inputShape: network.inputShape).input))
        let dir = try temporaryDirectory()
        try PredictionImages.write([[reading]], of: ["a/seven.jpg"], number: false, to: dir.path)
        let written = try PixelImage.read(path: dir.appendingPathComponent("seven.png").path)
        #expect(written == reading.input)
        #expect(PredictionImages.names([[reading], [reading, reading]], of: ["x/a.jpg", "y/a.png"], number: true)
                == [["1-a-1.png"], ["2-a-1.png", "2-a-2.png"]])
        #expect(PredictionImages.names([[reading], [reading], [reading]], of: ["a.jpg", "a.png", "2-a.jpg"], number: false)
                == [["1-a.png"], ["2-a.png"], ["3-2-a.png"]])
        #expect(PredictionImages.names([[reading], [reading]], of: ["a.jpg", "b.jpg"], number: false) == [["a.png"], ["b.png"]])
        for top in [0, -1] {
            #expect(throws: LeNetError.self) { try classifier.read([photo], top: top) }
            #expect(throws: LeNetError.self) { try classifier.readNumber(photo, top: top) }
        }
    }

    /// `lenet predict` with a checkpoint trained on MNIST: the box in
    /// `--json`, what the network saw with `--show`, a row with `--number`,
    /// the whole image with `--preprocess resize`, and one clear error for
    /// a blank page and a bad flag value.
    @Test func testLenetPredictFindsDigits() throws {
        let dir = try temporaryDirectory()
        let weights = dir.appendingPathComponent("mnist.safetensors").path
        try Checkpoint.saveWeights(try Models.lenet5(seed: 2), to: weights, metadata: [
            Checkpoint.Key.dataset: "MNIST train", Checkpoint.Key.normalizationMean: "0.1307", Checkpoint.Key.normalizationStd: "0.3081",
        ])
        let seven = Glyph.seven.mask(height: 70), zero = Glyph.zero.mask(height: 70)
        let photo = dir.appendingPathComponent("seven.png").path
        try FileIO.writeAtomically(try PNG.encode(try Self.page(width: 300, height: 200, glyphs: [(seven, 120, 50)], paper: 230, ink: 30,
                                                                 channels: 3, noise: 3)), to: photo)
        let row = dir.appendingPathComponent("row.png").path
        try FileIO.writeAtomically(try PNG.encode(try Self.page(width: 400, height: 160, glyphs: [(zero, 40, 40), (seven, 150, 40), (zero, 260, 40)],
                                                                 paper: 230, ink: 30)), to: row)
        let shown = dir.appendingPathComponent("shown").path
        let run = try runLenet(["predict", "--weights", weights, "--json", "--show", shown, photo])
        #expect(run.status == 0, "\(run.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let prediction = try #require((object["predictions"] as? [[String: Any]])?.first)
        let box = try #require(prediction["box"] as? [String: Int])
        let truth = Self.box(seven, x: 120, y: 50)
        #expect(box == ["x": truth.x, "y": truth.y, "width": truth.width, "height": truth.height])
        #expect((prediction["top"] as? [[String: Any]])?.count == 3)
        let seen = try PixelImage.read(path: shown + "/seven.png")
        #expect(seen.width == 32 && seen.height == 32 && seen.channels == 1)

        let number = try runLenet(["predict", "--weights", weights, "--number", "--json", "--top", "1", row])
        #expect(number.status == 0, "\(number.stderr)")
        let read = try #require(((try JSONSerialization.jsonObject(with: Data(number.stdout.utf8)) as? [String: Any])?["predictions"]
            as? [[String: Any]])?.first)
        // Three marks well apart: three digits, whatever an untrained network calls them (a run
        // spanning a gap loses 2 per gap and is more than 1.67 times as wide as high).
        let digits = try #require(read["digits"] as? [[String: Any]])
        #expect((read["number"] as? String)?.count == 3 && digits.count == 3)
        let xs = digits.compactMap { ($0["box"] as? [String: Int])?["x"] }
        #expect(xs == [Self.box(zero, x: 40, y: 40).x, Self.box(seven, x: 150, y: 40).x, Self.box(zero, x: 260, y: 40).x], "\(digits)")

        let resized = try runLenet(["predict", "--weights", weights, "--json", "--preprocess", "resize", photo])
        #expect(resized.status == 0 && !resized.stdout.contains("\"box\""), "\(resized.stderr)")

        let blank = dir.appendingPathComponent("blank.png").path
        try FileIO.writeAtomically(try PNG.encode(try PixelImage(width: 50, height: 40, channels: 1,
                                                                  pixels: [UInt8](repeating: 240, count: 2000))), to: blank)
        for (arguments, parts) in [(["predict", "--weights", weights, photo, blank], ["blank.png", "found no ink"]),
                                   (["predict", "--weights", weights, "--preprocess", "crop", photo], ["--preprocess", "crop"])] {
            let failed = try runLenet(arguments)
            #expect(failed.status != 0 && failed.stdout.isEmpty)
            #expect(failed.stderr.split(separator: "\n").count == 1, "\(failed.stderr)")
            for part in parts { #expect(failed.stderr.contains(part), "\(failed.stderr)") }
        }
    }
}

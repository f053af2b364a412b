// A photographed or scanned digit brought to the form MNIST's digits have:
// a light digit on black, scaled to fit a 20×20 box, centred by its centre
// of mass in a 28×28 field. A network trained on MNIST sees only that form,
// so a photo of dark ink on uneven paper is read at chance without it.
//
// The steps, each bounded in time by the image's size:
// 1. gray, at most `analysisSide` pixels on a side (area average), so a
//    12-megapixel photo costs what a 1-megapixel one does after decoding;
// 2. the paper's level as a smooth surface (a quadratic fitted to block
//    medians, ink blocks rejected), so a lighting gradient is not ink;
// 3. ink as the departure from that surface (relative to it for dark ink,
//    which lighting scales), against the noise level measured on the paper;
// 4. connected pieces of ink; specks and paper texture are the small ones;
// 5. the digit's box cropped, scaled to fit 20×20 keeping its aspect ratio
//    (area average), centred by its centre of mass in 28×28, padded to the
//    network's input as `MNIST.load` pads.
import Foundation

/// A rectangle of an image's pixels: columns `x..<x + width`, rows
/// `y..<y + height`.
public struct PixelBox: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    /// The first column.
    public var x: Int
    /// The first row.
    public var y: Int
    /// Columns.
    public var width: Int
    /// Rows.
    public var height: Int

    /// - Parameters:
    ///   - x: the first column.
    ///   - y: the first row.
    ///   - width: columns.
    ///   - height: rows.
    init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }

    /// "W×H at (x, y)".
    public var description: String { "\(width)×\(height) at (\(x), \(y))" }
}

/// How a classifier brings an image to its network's input.
public enum ImagePreprocessing: String, Sendable, CaseIterable, Codable {
    /// The whole image resized to the input (`PixelImage.resized`): for
    /// images framed as the training images were (CIFAR-10, a folder of photos).
    case resize
    /// The digit found in the image, brought to MNIST's form (`DigitPreprocessing`).
    case digit
}

/// A digit found in an image, as a network trained on MNIST takes it.
struct FoundDigit: Sendable, Equatable {
    /// Where the digit's ink is, in the source image's pixels.
    var box: PixelBox
    /// What the network sees: a light digit on black, centred by its
    /// centre of mass, at the network's input size, 1 channel.
    var input: PixelImage
}

/// Finds handwritten digits in photos and scans, and brings each to the
/// form of MNIST's digits.
///
/// ```swift
/// let photo = try PixelImage.read(path: "seven.jpg")
/// let digit = try DigitPreprocessing().digit(in: photo, inputShape: FeatureShape(channels: 1, height: 32, width: 32))
/// print(digit.box)  // where the ink was
/// ```
struct DigitPreprocessing: Sendable, Equatable {
    /// The side of the field the digit is centred in (MNIST's 28).
    var field = 28
    /// The side of the box the digit is scaled to fit (MNIST's 20).
    var box = 20
    /// The longest side the image is analysed at; larger images are
    /// averaged down by a whole factor first.
    var analysisSide = 1024

    init() {}

    /// The one digit in `image`: the largest piece of ink, with the pieces
    /// near it that are more than specks (a broken stroke, a 4's or 5's
    /// separate bar).
    /// - Parameters:
    ///   - image: any size, 1 to 4 channels; dark ink on light paper or
    ///     light on dark.
    ///   - inputShape: the network's input; at least `box` on each side.
    /// - Throws: `LeNetError` (subject "image") when the image holds no ink
    ///   (blank, or of one tone) or the input is too small for a digit.
    func digit(in image: PixelImage, inputShape: FeatureShape) throws -> FoundDigit {
        let layout = try Layout(self, inputShape)
        let ink = try InkImage(image, analysisSide: analysisSide)
        let pieces = ink.pieces(minimumShare: 0)
        guard let main = pieces.max(by: { $0.mass < $1.mass }) else { throw Self.noInk }
        // Pieces near the main one that are more than specks join it.
        var members: Set<Int32> = [main.label]
        var area = main.box
        var grew = true
        while grew {
            grew = false
            let reach = max(area.maxX - area.minX, area.maxY - area.minY) / 4 + 1
            for p in pieces where !members.contains(p.label) && p.mass >= 0.05 * main.mass && area.gap(to: p.box) <= reach {
                members.insert(p.label)
                area = area.union(p.box)
                grew = true
            }
        }
        return try ink.digit(area: area, parts: [(members, area.minX...area.maxX)], layout: layout)
    }

    /// The digits of a written number (a zip code, an amount), left to right.
    ///
    /// The ink is split into pieces; pieces that share most of their
    /// columns are one digit (a broken stroke, a "5"'s bar), and pieces much
    /// lower than the others that share no columns with a digit are dropped
    /// (dots, commas, dashes). With `confidence`, the pieces are cut into
    /// more candidates than there are digits and the classifier chooses
    /// (`bestReading`: slices, runs of them, a dynamic program). Without
    /// it, a piece much wider than the typical digit is cut evenly into as
    /// many digits as its width holds, each cut at the column with the
    /// least ink near where it is expected.
    /// - Parameters:
    ///   - image: a row of digits, dark on light or light on dark.
    ///   - inputShape: the network's input.
    ///   - confidence: for digits laid out as the network takes them, how
    ///     sure a classifier is of each (its top probability, 0...1).
    /// - Throws: `LeNetError` when the image holds no ink; what `confidence` throws.
    func digits(in image: PixelImage, inputShape: FeatureShape,
                       confidence: (([PixelImage]) throws -> [ClassScore])? = nil) throws -> [FoundDigit] {
        let layout = try Layout(self, inputShape)
        let ink = try InkImage(image, analysisSide: analysisSide)
        let pieces = ink.pieces(minimumShare: 0.03)
        guard !pieces.isEmpty else { throw Self.noInk }
        // Pieces that share most of the narrower one's columns are one digit.
        var groups: [(labels: Set<Int32>, box: InkBox)] = []
        for p in pieces.sorted(by: { $0.mass > $1.mass }) {
            if let g = groups.firstIndex(where: { $0.box.columnOverlap(p.box) >= 0.7 * Double(min($0.box.width, p.box.width)) }) {
                groups[g].labels.insert(p.label)
                groups[g].box = groups[g].box.union(p.box)
            } else {
                groups.append(([p.label], p.box))
            }
        }
        let heights = groups.map(\.box.height).sorted()
        let typicalHeight = Double(heights[heights.count / 2])
        // A low piece that shares columns with a digit is part of it (a
        // "5"'s bar, a "4"'s arm); one that shares none is a dot, a comma
        // or a dash, and is dropped.
        let isLow = { (g: (labels: Set<Int32>, box: InkBox)) in Double(g.box.height) < 0.4 * typicalHeight }
        let low = groups.filter(isLow)
        groups.removeAll(where: isLow)
        for piece in low {
            let overlaps = groups.indices.map { groups[$0].box.columnOverlap(piece.box) }
            guard let g = overlaps.indices.max(by: { overlaps[$0] < overlaps[$1] }), overlaps[g] > 0,
                  piece.box.gap(to: groups[g].box) <= Int(0.25 * typicalHeight) else { continue }
            groups[g].labels.formUnion(piece.labels)
            groups[g].box = groups[g].box.union(piece.box)
        }
        groups.sort { $0.box.minX < $1.box.minX }
        // Each candidate digit is classified, so a page of marks is refused
        // rather than read for minutes.
        guard groups.count <= Self.maximumDigits else {
            throw LeNetError("found \(groups.count) separate marks; a number is one row of at most \(Self.maximumDigits) digits",
                             subject: "image")
        }
        guard let confidence else {
            let widths = groups.map(\.box.width).sorted()
            // A digit's expected width: the others' median when there are
            // enough of them to say, else MNIST's typical aspect.
            let expected = groups.count >= 3 ? Double(widths[widths.count / 2]) : 0.7 * typicalHeight
            var found: [FoundDigit] = []
            for g in groups {
                let full = ink.strength(of: g.labels, in: g.box)
                let width = Double(g.box.width)
                // (At most one digit per column.)
                let count = width >= 1.6 * expected && width > 0.9 * typicalHeight
                    ? min(max(2, Int((width / expected).rounded())), g.box.width) : 1
                found += try ink.cuts(of: g.box, labels: g.labels, into: count).compactMap { columns in
                    guard let area = ink.extent(of: g.labels, columns: columns, within: g.box) else { return nil }
                    return try ink.digit(area: area, parts: [(g.labels, columns)], layout: layout, full: full)
                }
            }
            guard !found.isEmpty else { throw Self.noInk }
            return found
        }
        let found = try Self.bestReading(of: groups, ink: ink, typicalHeight: typicalHeight, layout: layout, confidence: confidence)
        guard !found.isEmpty else { throw Self.noInk }
        return found
    }

    /// The reading of a row of ink as digits that scores best, found by
    /// over-segmenting and letting the classifier choose (the "heuristic
    /// over-segmentation" of LeCun, Bottou, Bengio and Haffner 1998, §V):
    /// each group of pieces wider than three quarters of a digit's height
    /// is cut into slices an eighth of that height wide; a candidate digit
    /// is any run of consecutive slices and groups up to 1.7 heights wide
    /// (past MNIST's widest "2"s and "5"s), at least `narrowestPart` wide
    /// when it cuts a group; each is scored (`partScores`), less
    /// `mergePenalty` for each gap between groups it spans; and a dynamic
    /// program picks the runs, left to right, whose scores sum highest.
    /// Summed log scores favour fewer digits, so a split must read clearly
    /// better than the whole; a merge across a gap must read better still.
    static func bestReading(of groups: [(labels: Set<Int32>, box: InkBox)], ink: InkImage, typicalHeight: Double,
                            layout: Layout, confidence: ([PixelImage]) throws -> [ClassScore]) throws -> [FoundDigit] {
        // Slices: (group, columns, ink extent), left to right.
        var slices: [(group: Int, columns: ClosedRange<Int>, extent: InkBox)] = []
        // An eighth of a digit's height, wider when the wide groups would
        // otherwise give more than `maximumSlices` (a ruled line across a page).
        let wide = groups.filter { Double($0.box.width) > Self.sliceWidth * typicalHeight }.map(\.box.width).reduce(0, +)
        let step = max(1, Int(typicalHeight / 8), (wide + Self.maximumSlices - 1) / Self.maximumSlices)
        for (index, g) in groups.enumerated() {
            var columns = [g.box.minX...g.box.maxX]
            if Double(g.box.width) > Self.sliceWidth * typicalHeight {
                columns = stride(from: g.box.minX, through: g.box.maxX, by: step).map { $0...min($0 + step - 1, g.box.maxX) }
            }
            for c in columns {
                if let extent = ink.extent(of: g.labels, columns: c, within: g.box) { slices.append((index, c, extent)) }
            }
        }
        let strengths = groups.map { ink.strength(of: $0.labels, in: $0.box) }
        let n = slices.count
        var candidates: [(i: Int, j: Int, spans: Int, digit: FoundDigit)] = []  // slices i..<j
        for i in 0..<n {
            var area = slices[i].extent
            for j in i + 1...n {
                if j > i + 1 { area = area.union(slices[j - 1].extent) }
                let run = slices[i..<j]
                let first = slices[i].group, last = slices[j - 1].group
                // A whole group is always a candidate; a part of one must be a digit's width.
                let whole = (i == 0 || slices[i - 1].group != first) && (j == n || slices[j].group != last)
                if Double(area.width) > 1.7 * typicalHeight && !(whole && first == last) { break }
                guard whole || Double(area.width) >= narrowestPart * typicalHeight else { continue }
                let parts = run.map { (groups[$0.group].labels, $0.columns) }
                let full = run.map { strengths[$0.group] }.max() ?? 1
                candidates.append((i, j, last - first, try ink.digit(area: area, parts: parts, layout: layout, full: full)))
            }
        }
        let scores = try partScores(candidates.map(\.digit), typicalHeight: typicalHeight * Double(ink.scale), confidence)
        // best[j]: the highest summed score of digits covering slices 0..<j.
        var best = [Double](repeating: -.infinity, count: n + 1)
        var from = [Int](repeating: -1, count: n + 1)
        best[0] = 0
        var byEnd = [[Int]](repeating: [], count: n + 1)
        for (index, c) in candidates.enumerated() { byEnd[c.j].append(index) }
        for j in 1...max(1, n) where j <= n {
            for index in byEnd[j] where best[candidates[index].i] > -.infinity {
                let total = best[candidates[index].i] + scores[index] - mergePenalty * Double(candidates[index].spans)
                if total > best[j] { best[j] = total; from[j] = index }
            }
        }
        guard n > 0, best[n] > -.infinity else { return [] }
        var result: [FoundDigit] = []
        var j = n
        while j > 0 {
            let index = from[j]
            result.append(candidates[index].digit)
            j = candidates[index].i
        }
        return result.reversed()
    }

    /// The most digits `digits(in:inputShape:confidence:)` reads in one image.
    static let maximumDigits = 100
    /// The most slices the wide groups of a row are cut into: with runs up
    /// to 1.7 heights (at most 14 slices) that bounds the candidates a
    /// row's reading classifies to a few thousand.
    static let maximumSlices = 200

    /// The narrowest part of a group tried, in digit heights: MNIST's
    /// narrowest "1"s are 0.2 as wide as high.
    static let narrowestPart = 0.22
    /// Groups wider than this share of a digit's height are sliced (MNIST's
    /// digits are 0.75 as wide as high at the median).
    static let sliceWidth = 0.75
    /// Parts lower than this share of the row's digits are penalized.
    static let lowestPart = 0.75
    /// The log score a digit spanning a gap between pieces gives up per gap.
    static let mergePenalty = 2.0

    /// Each digit's log confidence plus the log prior of its aspect ratio
    /// for the class it is read as (`logAspectPrior`), less a penalty when
    /// it is much lower than the row's digits (`typicalHeight`, source
    /// pixels): a digit's ink is as high as its neighbours' (MNIST's are
    /// scaled to 20 pixels high unless wider than high, and the widest,
    /// 1.67 times, are still 0.6 as high), so a short part is a sliver of
    /// a neighbour.
    static func partScores(_ digits: [FoundDigit], typicalHeight: Double,
                           _ confidence: ([PixelImage]) throws -> [ClassScore]) throws -> [Double] {
        guard !digits.isEmpty else { return [] }
        let p = try confidence(digits.map(\.input))
        return zip(digits, p).map { d, p in
            let height = Double(max(d.box.height, 1))
            let short = max(0, log(Self.lowestPart * typicalHeight / height)) / 0.15
            return log(max(p.probability, 1e-12)) + logAspectPrior(Double(d.box.width) / height, digit: Int(p.name)) - short * short
        }
    }

    /// How plausible it is that digit `digit` is `aspect` (width / height)
    /// wide, as a log weight: 0 within the range MNIST's training digits of
    /// that class span (`aspectRange`; for another class name, the widest
    /// range), falling as a Gaussian in log aspect (σ 0.15) outside. A
    /// classifier's confidence alone does not tell two touching digits read
    /// as one from the pair (it is as sure of a "42" being a "4" as of a
    /// "4"); a "4" 1.6 times as wide as it is high is not plausible.
    static func logAspectPrior(_ aspect: Double, digit: Int?) -> Double {
        let a = max(aspect, 1e-3)
        let (lo, hi) = digit.flatMap { aspectRange.indices.contains($0) ? aspectRange[$0] : nil } ?? (0.15, 1.67)
        let outside = a < lo ? log(lo / a) : a > hi ? log(a / hi) : 0
        return -(outside / 0.15) * (outside / 0.15)
    }

    /// Each digit's aspect ratio (ink box width / height), 0.5th and 99.5th
    /// percentiles over MNIST's 60,000 training digits (a "1" from 0.2,
    /// here 0.15 for a thin upright stroke).
    static let aspectRange: [(Double, Double)] = [(0.5, 1.43), (0.15, 1.0), (0.55, 1.67), (0.45, 1.25), (0.5, 1.25),
                                                  (0.5, 1.67), (0.4, 1.25), (0.5, 1.31), (0.45, 1.25), (0.4, 1.11)]

    static let noInk = LeNetError("found no ink: the image is blank, or of one tone, or only noise", subject: "image")

    /// Where the digit goes in the network's input.
    struct Layout {
        let shape: FeatureShape
        let field: Int
        let box: Int

        init(_ p: DigitPreprocessing, _ shape: FeatureShape) throws {
            guard p.box > 0, p.field >= p.box, p.field <= 4096 else {
                throw LeNetError("a digit box of \(p.box) in a field of \(p.field) is not a layout (0 < box ≤ field ≤ 4096)",
                                 subject: "digit preprocessing")
            }
            guard (16...16384).contains(p.analysisSide) else {
                throw LeNetError("analysisSide must be 16...16384, got \(p.analysisSide)", subject: "digit preprocessing")
            }
            // A smaller input keeps MNIST's proportions in the field it has.
            let field = min(p.field, shape.height, shape.width)
            let box = min(p.box, field * p.box / p.field)
            guard box >= 4 else {
                throw LeNetError("the network's input \(shape) is too small for a digit", subject: "digit preprocessing")
            }
            self.shape = shape
            self.field = field
            self.box = box
        }
    }
}

/// A box in analysis pixels, inclusive bounds.
struct InkBox: Equatable {
    var minX: Int, minY: Int, maxX: Int, maxY: Int
    var width: Int { maxX - minX + 1 }
    var height: Int { maxY - minY + 1 }

    func union(_ o: InkBox) -> InkBox {
        InkBox(minX: min(minX, o.minX), minY: min(minY, o.minY), maxX: max(maxX, o.maxX), maxY: max(maxY, o.maxY))
    }

    /// The larger of the horizontal and vertical gaps, 0 when they touch or overlap.
    func gap(to o: InkBox) -> Int {
        max(max(o.minX - maxX, minX - o.maxX, 0), max(o.minY - maxY, minY - o.maxY, 0))
    }

    /// How many columns the two share.
    func columnOverlap(_ o: InkBox) -> Double {
        Double(max(0, min(maxX, o.maxX) - max(minX, o.minX) + 1))
    }
}

/// A connected piece of ink.
struct InkPiece {
    var label: Int32
    var box: InkBox
    var area: Int
    /// The sum of its ink values: how much ink, not how many pixels.
    var mass: Float
}

/// An image's ink: how far each pixel departs from the paper toward the
/// ink, at analysis size, with the connected pieces of what is clearly ink.
struct InkImage {
    /// Analysis columns and rows.
    let width: Int, height: Int
    /// Source pixels per analysis pixel along each axis.
    let scale: Int
    /// The source's size, for boxes in its pixels.
    let sourceWidth: Int, sourceHeight: Int
    /// Departure from the paper toward the ink, 0 on clean paper; for dark
    /// ink a share of the paper's brightness, for light ink a level. (H, W)
    let ink: [Float]
    /// The noise's standard deviation on the paper, in `ink`'s units.
    let noise: Float
    /// The piece each pixel belongs to, -1 for none. (H, W)
    let labels: [Int32]
    /// The pieces, indexed by label.
    let allPieces: [InkPiece]

    init(_ image: PixelImage, analysisSide: Int) throws {
        let gray = Self.gray(image, side: max(analysisSide, 1))
        (width, height, scale) = (gray.width, gray.height, gray.scale)
        (sourceWidth, sourceHeight) = (image.width, image.height)
        let darkInk = Self.inkIsDark(gray.values)
        let paper = PaperSurface(gray.values, width: width, height: height, darkInk: darkInk)
        var ink = [Float](repeating: 0, count: width * height)  // (H, W)
        for y in 0..<height {
            for x in 0..<width {
                let g = gray.values[y * width + x], p = paper.level(x: x, y: y)
                // Lighting scales dark ink with the paper, so its share of
                // the paper's level is what stays put across a gradient.
                ink[y * width + x] = darkInk ? (p - g) / max(p, 0.05) : g - p
            }
        }
        noise = Self.noiseLevel(ink)
        // Clearly ink: well above the noise, and above what 8-bit steps and
        // faint paper texture make on a clean scan.
        let threshold = max(4 * noise, 0.08)
        (labels, allPieces) = Self.pieces(ink, width: width, height: height, threshold: threshold)
        self.ink = ink
    }

    /// Pieces with at least `minimumShare` of the largest one's ink.
    func pieces(minimumShare: Float) -> [InkPiece] {
        guard let largest = allPieces.map(\.mass).max() else { return [] }
        return allPieces.filter { $0.mass >= minimumShare * largest && $0.area >= 2 }
    }

    /// The box of `members`' pixels within `columns` (and inside `box`).
    func extent(of members: Set<Int32>, columns: ClosedRange<Int>, within box: InkBox) -> InkBox? {
        var result: InkBox?
        for y in box.minY...box.maxY {
            for x in columns where members.contains(labels[y * width + x]) {
                let b = InkBox(minX: x, minY: y, maxX: x, maxY: y)
                result = result.map { $0.union(b) } ?? b
            }
        }
        return result
    }

    /// `count` column ranges covering `box`, cut where the members' ink is
    /// thinnest within a third of a digit's width of each even cut.
    func cuts(of box: InkBox, labels members: Set<Int32>, into count: Int) -> [ClosedRange<Int>] {
        guard count > 1 else { return [box.minX...box.maxX] }
        var profile = [Float](repeating: 0, count: box.width)  // (W)
        for y in box.minY...box.maxY {
            for x in box.minX...box.maxX where members.contains(labels[y * width + x]) {
                profile[x - box.minX] += ink[y * width + x]
            }
        }
        let step = Double(box.width) / Double(count)
        var edges = [box.minX]
        for j in 1..<count {
            let nominal = Double(j) * step
            let lo = max(Int(nominal - step / 3), 1), hi = min(Int(nominal + step / 3), box.width - 1)
            var best = min(max(Int(nominal), 1), box.width - 1)
            var bestScore = Float.infinity
            if lo <= hi {
                for c in lo...hi {
                    // Three columns, so one thin column between strokes is not mistaken for a gap.
                    let score = profile[c - 1] + profile[c] + (c + 1 < box.width ? profile[c + 1] : 0)
                    if score < bestScore || (score == bestScore && abs(Double(c) - nominal) < abs(Double(best) - nominal)) {
                        best = c
                        bestScore = score
                    }
                }
            }
            edges.append(max(box.minX + best, edges[edges.count - 1] + 1))
        }
        edges.append(box.maxX + 1)
        var ranges: [ClosedRange<Int>] = []
        for j in 0..<count where edges[j] < edges[j + 1] {
            let last: Int = edges[j + 1] - 1
            ranges.append(edges[j]...last)
        }
        return ranges
    }

    /// The digit in `area`: the members' ink and the faint ink around it
    /// (other pieces blanked), scaled, centred and padded per `layout`.
    /// The ink's full strength in `members`: what most of their clear
    /// pixels reach (the 90th percentile).
    func strength(of members: Set<Int32>, in area: InkBox) -> Float {
        var strong: [Float] = []
        for y in area.minY...area.maxY {
            for x in area.minX...area.maxX where members.contains(labels[y * width + x]) { strong.append(ink[y * width + x]) }
        }
        strong.sort()
        return strong.isEmpty ? 1 : strong[min(strong.count - 1, strong.count * 9 / 10)]
    }

    /// The digit made of `parts` (pieces' labels, each within its columns)
    /// in `area`, with the faint ink in those columns that belongs to no
    /// piece; other pieces' pixels are blanked.
    func digit(area: InkBox, parts: [(members: Set<Int32>, columns: ClosedRange<Int>)], layout: DigitPreprocessing.Layout,
               full: Float? = nil) throws -> FoundDigit {
        let full = full ?? parts.map { strength(of: $0.members, in: area) }.max() ?? 1
        // Below a few noise levels is paper: it maps to 0, as MNIST's background is exactly 0.
        let floor = min(2.5 * noise, full / 2)
        var crop = [UInt8](repeating: 0, count: area.width * area.height)  // (h, w)
        for y in area.minY...area.maxY {
            for x in area.minX...area.maxX {
                let label = labels[y * width + x]
                guard parts.contains(where: { $0.columns.contains(x) && (label < 0 || $0.members.contains(label)) }) else { continue }
                let v = (ink[y * width + x] - floor) / max(full - floor, 1e-6)
                crop[(y - area.minY) * area.width + (x - area.minX)] = UInt8((min(max(v, 0), 1) * 255).rounded())
            }
        }
        let patch = try PixelImage(width: area.width, height: area.height, channels: 1, pixels: crop)
        // Fit the box, keeping the aspect ratio.
        let longer = max(area.width, area.height)
        let w = max(1, (area.width * layout.box + longer / 2) / longer)
        let h = max(1, (area.height * layout.box + longer / 2) / longer)
        let scaled = try patch.resized(width: w, height: h)
        let input = try Self.centred(scaled, layout: layout)
        let source = PixelBox(x: area.minX * scale, y: area.minY * scale,
                              width: min(area.width * scale, sourceWidth - area.minX * scale),
                              height: min(area.height * scale, sourceHeight - area.minY * scale))
        return FoundDigit(box: source, input: input)
    }

    /// `patch` placed so its centre of mass falls on the field's centre,
    /// the field centred in the input (as `MNIST.load` pads 28 to 32).
    static func centred(_ patch: PixelImage, layout: DigitPreprocessing.Layout) throws -> PixelImage {
        var mass = 0.0, mx = 0.0, my = 0.0
        for y in 0..<patch.height {
            for x in 0..<patch.width {
                let v = Double(patch.pixels[y * patch.width + x])
                mass += v
                mx += v * Double(x)
                my += v * Double(y)
            }
        }
        // MNIST's centres of mass sit on pixel (14, 14) of 28×28, counting
        // pixels from 0 (the test digits' mean is 14.01, 13.99).
        let half = Double(layout.field) / 2
        let (cx, cy) = mass > 0 ? (mx / mass, my / mass) : (Double(patch.width - 1) / 2, Double(patch.height - 1) / 2)
        let fieldX = (layout.shape.width - layout.field) / 2, fieldY = (layout.shape.height - layout.field) / 2
        let ox = fieldX + Int((half - cx).rounded()), oy = fieldY + Int((half - cy).rounded())
        var out = [UInt8](repeating: 0, count: layout.shape.height * layout.shape.width)  // (H, W)
        for y in 0..<patch.height {
            let ty = oy + y
            // What the centring pushes out of the field is lost, as in MNIST.
            guard ty >= fieldY, ty < fieldY + layout.field else { continue }
            for x in 0..<patch.width {
                let tx = ox + x
                guard tx >= fieldX, tx < fieldX + layout.field else { continue }
                out[ty * layout.shape.width + tx] = patch.pixels[y * patch.width + x]
            }
        }
        return try PixelImage(width: layout.shape.width, height: layout.shape.height, channels: 1, pixels: out)
    }

    // MARK: - Steps

    /// Gray levels 0...1, averaged down by a whole factor to at most `side`
    /// on the longer side. Alpha composites over the paper: white when the
    /// opaque pixels are dark (dark strokes on a transparent sheet), black
    /// otherwise.
    static func gray(_ image: PixelImage, side: Int) -> (values: [Float], width: Int, height: Int, scale: Int) {
        let scale = max(1, (max(image.width, image.height) + side - 1) / side)
        let w = (image.width + scale - 1) / scale, h = (image.height + scale - 1) / scale
        let C = image.channels
        let colour = C >= 3
        var background: Float = 0
        if image.hasAlpha {
            var sum = 0.0, count = 0
            image.pixels.withUnsafeBufferPointer { p in
                for i in stride(from: 0, to: p.count, by: C) where p[i + C - 1] >= 128 {
                    sum += Double(colour ? (299 * Int(p[i]) + 587 * Int(p[i + 1]) + 114 * Int(p[i + 2])) / 1000 : Int(p[i]))
                    count += 1
                }
            }
            background = count > 0 && sum / Double(count) < 128 ? 1 : 0
        }
        var sums = [Float](repeating: 0, count: w * h)  // (h, w)
        var counts = [Float](repeating: 0, count: w * h)  // (h, w)
        image.pixels.withUnsafeBufferPointer { p in
            for y in 0..<image.height {
                let row = (y / scale) * w
                for x in 0..<image.width {
                    let i = (y * image.width + x) * C
                    var v = colour ? (0.299 * Float(p[i]) + 0.587 * Float(p[i + 1]) + 0.114 * Float(p[i + 2])) / 255 : Float(p[i]) / 255
                    if image.hasAlpha {
                        let a = Float(p[i + C - 1]) / 255
                        v = a * v + (1 - a) * background
                    }
                    sums[row + x / scale] += v
                    counts[row + x / scale] += 1
                }
            }
        }
        for i in 0..<sums.count { sums[i] /= counts[i] }
        return (sums, w, h, scale)
    }

    /// Whether the ink is darker than the paper: the paper is most of the
    /// image, so the ink is the tail that reaches farther from the median.
    static func inkIsDark(_ gray: [Float]) -> Bool {
        var histogram = [Int](repeating: 0, count: 256)
        for v in gray { histogram[min(max(Int(v * 255 + 0.5), 0), 255)] += 1 }
        func quantile(_ q: Double) -> Float {
            let target = Int(Double(gray.count - 1) * q)
            var seen = 0
            for (level, n) in histogram.enumerated() {
                seen += n
                if seen > target { return Float(level) / 255 }
            }
            return 1
        }
        // Far tails, since a small digit on a large page is a small share of it.
        let median = quantile(0.5), low = quantile(0.0002), high = quantile(0.9998)
        return median - low >= high - median
    }

    /// A robust spread of `values` about 0: 1.4826 × the median absolute
    /// value over an even sample (the paper's pixels are most of them).
    static func noiseLevel(_ values: [Float]) -> Float {
        let stride = max(1, values.count / 100_000)
        var sample = Swift.stride(from: 0, to: values.count, by: stride).map { abs(values[$0]) }
        guard !sample.isEmpty else { return 0 }
        let k = sample.count / 2
        sample.sort()
        return 1.4826 * sample[k]
    }

    /// 8-connected pieces of the pixels above `threshold`.
    static func pieces(_ ink: [Float], width: Int, height: Int, threshold: Float) -> ([Int32], [InkPiece]) {
        var labels = [Int32](repeating: -1, count: width * height)  // (H, W)
        var pieces: [InkPiece] = []
        var stack: [Int] = []
        for start in 0..<ink.count where ink[start] > threshold && labels[start] < 0 {
            let label = Int32(pieces.count)
            var piece = InkPiece(label: label, box: InkBox(minX: start % width, minY: start / width, maxX: start % width, maxY: start / width),
                                 area: 0, mass: 0)
            labels[start] = label
            stack.append(start)
            while let i = stack.popLast() {
                let x = i % width, y = i / width
                piece.area += 1
                piece.mass += ink[i]
                piece.box = piece.box.union(InkBox(minX: x, minY: y, maxX: x, maxY: y))
                for ny in max(y - 1, 0)...min(y + 1, height - 1) {
                    for nx in max(x - 1, 0)...min(x + 1, width - 1) {
                        let j = ny * width + nx
                        if labels[j] < 0 && ink[j] > threshold {
                            labels[j] = label
                            stack.append(j)
                        }
                    }
                }
            }
            pieces.append(piece)
        }
        return (labels, pieces)
    }
}

/// The paper's gray level across the image: a quadratic surface fitted to
/// the medians of up to 48×48 blocks, refitted without the blocks that lie
/// well toward the ink (strokes) or far the other way (glare), so uneven
/// lighting is followed and the digit is not.
struct PaperSurface {
    /// Coefficients of 1, u, v, u², uv, v² (u, v in -1...1 across the image).
    var coefficients: [Double]
    let width: Int, height: Int

    init(_ gray: [Float], width: Int, height: Int, darkInk: Bool) {
        self.width = width
        self.height = height
        let side = max(1, (max(width, height) + 47) / 48)
        var points: [(u: Double, v: Double, level: Double)] = []
        var block: [Float] = []
        for by in stride(from: 0, to: height, by: side) {
            for bx in stride(from: 0, to: width, by: side) {
                block.removeAll(keepingCapacity: true)
                for y in by..<min(by + side, height) {
                    for x in bx..<min(bx + side, width) { block.append(gray[y * width + x]) }
                }
                block.sort()
                let cx = Double(bx) + Double(min(side, width - bx)) / 2, cy = Double(by) + Double(min(side, height - by)) / 2
                points.append((Self.u(cx, width), Self.u(cy, height), Double(block[block.count / 2])))
            }
        }
        let levels = points.map(\.level).sorted()
        coefficients = [levels[levels.count / 2], 0, 0, 0, 0, 0]
        guard points.count >= 12 else { return }
        // Blocks of ink are left out before the first fit, against the
        // median (the paper is most of the page), so a blot as large as a
        // third of the page is not taken for a dip in the lighting.
        let constant = coefficients
        let start = points.map { (darkInk ? 1 : -1) * (constant[0] - $0.level) }
        let spread = start.map(abs).sorted()
        let sigma0 = max(1.4826 * spread[spread.count / 2], 1.0 / 255)
        var kept = zip(points, start).filter { $0.1 < 2.5 * sigma0 }.map(\.0)
        if kept.count < 12 { kept = points }
        for _ in 0..<6 {
            guard let fit = Self.fit(kept) else { break }
            coefficients = fit
            let residuals = points.map { (darkInk ? 1 : -1) * (Self.evaluate(fit, $0.u, $0.v) - $0.level) }  // toward the ink
            var spread = residuals.map(abs).sorted()
            let sigma = max(1.4826 * spread[spread.count / 2], 1.0 / 255)
            spread.removeAll()
            let next = zip(points, residuals).filter { $0.1 < 2.5 * sigma && $0.1 > -6 * sigma }.map(\.0)
            if next.count < 12 || next.count == kept.count { break }
            kept = next
        }
    }

    static func u(_ position: Double, _ size: Int) -> Double { size > 1 ? 2 * position / Double(size) - 1 : 0 }

    static func evaluate(_ c: [Double], _ u: Double, _ v: Double) -> Double {
        c[0] + c[1] * u + c[2] * v + c[3] * u * u + c[4] * u * v + c[5] * v * v
    }

    /// Least squares by the normal equations (6×6, Gaussian elimination
    /// with partial pivoting); nil when they are singular.
    static func fit(_ points: [(u: Double, v: Double, level: Double)]) -> [Double]? {
        var a = [[Double]](repeating: [Double](repeating: 0, count: 7), count: 6)
        for p in points {
            let f = [1, p.u, p.v, p.u * p.u, p.u * p.v, p.v * p.v]
            for i in 0..<6 {
                for j in 0..<6 { a[i][j] += f[i] * f[j] }
                a[i][6] += f[i] * p.level
            }
        }
        for col in 0..<6 {
            guard let pivot = (col..<6).max(by: { abs(a[$0][col]) < abs(a[$1][col]) }), abs(a[pivot][col]) > 1e-9 else { return nil }
            a.swapAt(col, pivot)
            for row in 0..<6 where row != col {
                let factor = a[row][col] / a[col][col]
                for k in col..<7 { a[row][k] -= factor * a[col][k] }
            }
        }
        return (0..<6).map { a[$0][6] / a[$0][$0] }
    }

    func level(x: Int, y: Int) -> Float {
        Float(Self.evaluate(coefficients, Self.u(Double(x) + 0.5, width), Self.u(Double(y) + 0.5, height)))
    }
}

// The order a training run visits a dataset in. Each epoch's order depends
// only on the generator state at its start (the shuffle starts from 0..<N,
// not from the last epoch's order), so a checkpoint that saves that state and
// the batch position resumes the exact same sequence of batches.

/// A seeded order of the indices `0..<count`, cut into batches.
///
/// ```swift
/// var order = try BatchOrder(count: train.count, batchSize: 64, seed: 1)
/// for epoch in 0..<epochs {
///     order.shuffle()
///     for batch in order.batches {
///         train.fill(batch: batch, normalization: .half, into: x, labels: y)
///         ...
///     }
/// }
/// ```
///
/// Until the first `shuffle()` the order is `0..<count`, which suits evaluation.
/// To resume mid-epoch, save `epochStart.state` and the batch number; restore
/// with `init(count:batchSize:generator:dropLast:)`, call `shuffle()` once to
/// redraw that epoch, and skip the batches already done.
struct BatchOrder: Sendable {
    /// The number of indices (N).
    let count: Int
    /// Indices per batch; the last batch may hold fewer unless `dropLast`.
    let batchSize: Int
    /// Whether a last, smaller batch is left out.
    let dropLast: Bool
    /// The generator the next `shuffle()` draws from.
    var generator: SeededGenerator
    /// The generator as it was before the current order was drawn; saving
    /// its `state` is enough to redraw this epoch's order.
    private(set) var epochStart: SeededGenerator
    /// The current order, a permutation of `0..<count`. (N)
    private(set) var indices: [Int]

    /// An order over `0..<count` seeded with `seed`.
    ///
    /// - Parameters:
    ///   - count: the number of examples, > 0.
    ///   - batchSize: examples per batch, > 0.
    ///   - seed: fixes every epoch's order.
    ///   - dropLast: leave out a last batch smaller than `batchSize`.
    /// - Throws: `LeNetError` when `count` or `batchSize` is not positive, or
    ///   `dropLast` leaves no batch at all.
    init(count: Int, batchSize: Int, seed: UInt64, dropLast: Bool = false) throws {
        try self.init(count: count, batchSize: batchSize,
                      generator: SeededGenerator(seed: seed), dropLast: dropLast)
    }

    /// An order over `0..<count` that draws from `generator`, e.g. one restored
    /// from a checkpoint with `SeededGenerator(state:)`.
    ///
    /// - Throws: as `init(count:batchSize:seed:dropLast:)`.
    init(count: Int, batchSize: Int, generator: SeededGenerator, dropLast: Bool = false) throws {
        guard count > 0 else {
            throw LeNetError("needs at least one example, got \(count)", subject: "batch order")
        }
        guard batchSize > 0 else {
            throw LeNetError("batch size must be > 0, got \(batchSize)", subject: "batch size")
        }
        guard !(dropLast && batchSize > count) else {
            throw LeNetError(
                "batch size \(batchSize) is larger than the \(count) examples, and dropping "
                    + "the last partial batch would leave none",
                subject: "batch size")
        }
        self.count = count
        self.batchSize = batchSize
        self.dropLast = dropLast
        self.generator = generator
        self.epochStart = generator
        self.indices = Array(0..<count)
    }

    /// Draws a new order for the next epoch: a Fisher–Yates shuffle of
    /// `0..<count` with `generator`.
    mutating func shuffle() {
        epochStart = generator
        for i in 0..<count { indices[i] = i }
        var i = count - 1
        while i > 0 {
            let j = Int(Self.random(below: UInt64(i + 1), using: &generator))
            indices.swapAt(i, j)
            i -= 1
        }
    }

    /// The number of batches per epoch.
    var batchCount: Int {
        dropLast ? count / batchSize : (count + batchSize - 1) / batchSize
    }

    /// The indices of batch `b`, in `0..<batchCount`.
    subscript(batch b: Int) -> ArraySlice<Int> {
        let start = b * batchSize
        return indices[start..<min(start + batchSize, count)]
    }

    /// Every batch of the current order, first to last.
    var batches: LazyMapCollection<Range<Int>, ArraySlice<Int>> {
        (0..<batchCount).lazy.map { self[batch: $0] }
    }

    /// A uniform integer in `0..<bound` (bound > 0), by Lemire's multiply-and-reject
    /// method. Written out rather than taken from the standard library so the
    /// sequence, and so every saved run, stays the same across Swift versions.
    static func random(below bound: UInt64, using generator: inout SeededGenerator) -> UInt64 {
        var product = generator.next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold {
                product = generator.next().multipliedFullWidth(by: bound)
            }
        }
        return product.high
    }
}

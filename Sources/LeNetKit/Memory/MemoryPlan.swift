import Foundation

/// A run's memory, known before it allocates: what it will still allocate
/// (`remaining`, from the estimates) on top of what the process holds now.
/// `check` refuses, naming the setting to change, when that does not fit.
@_spi(CLI) public struct MemoryPlan: Sendable {
    /// What the run will still allocate.
    public let remaining: MemoryEstimate
    /// Resident bytes when the plan was made (the datasets are loaded by then).
    let resident: Int
    /// The peak resident memory the run should reach, as known when the
    /// plan was made: what it holds then plus what it will allocate (or an
    /// earlier peak, such as a whole training set read before a limit took
    /// its first images).
    public let estimatedPeak: Int
    /// The setting that asks for most of `remaining`, and its value.
    let culprit: (option: LeNetError.Option, value: Int)

    /// - Parameters:
    ///   - remaining: what the run will still allocate.
    ///   - culprit: the setting to name when it does not fit, and its value.
    init(remaining: MemoryEstimate, culprit: (option: LeNetError.Option, value: Int)) {
        self.remaining = remaining
        self.culprit = culprit
        resident = SystemMemory.residentBytes() ?? 0
        estimatedPeak = max(SystemMemory.peakResidentBytes() ?? 0, resident + remaining.bytes)
    }

    /// A plan for `needs(batch, threads)` bytes at `batchSize` and `threads`,
    /// naming whichever of the two a smaller value would save the most by:
    /// the batch size (down to `defaultBatchSize`), or the threads (down to
    /// the cores, and only when `threadsChosen`: the default is the cores).
    init(batchSize: Int, defaultBatchSize: Int, threads: Int, threadsChosen: Bool,
                needs: (_ batch: Int, _ threads: Int) -> MemoryEstimate) {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let remaining = needs(batchSize, threads), total = remaining.bytes
        let savedByBatch = total - needs(min(batchSize, defaultBatchSize), threads).bytes
        let savedByThreads = total - needs(batchSize, min(threads, cores)).bytes
        self.init(remaining: remaining, culprit: threadsChosen && savedByThreads > savedByBatch
            ? (.threads, threads) : (.batchSize, batchSize))
    }

    /// Throws, naming the culprit and both figures, when the run would need
    /// more than the machine can give (`SystemMemory.available`).
    public func check() throws {
        guard let available = SystemMemory.available(), remaining.bytes > available.bytes else { return }
        throw LeNetError("needs about \(ByteCount(remaining.bytes)), \(ByteCount(available.bytes)) available (\(available.source))",
                         option: culprit.option, value: "\(culprit.value)")
    }

    /// "peak memory 212.4 MB (estimated 215.0 MB)", for the last line of a run.
    public var report: String {
        "peak memory \(ByteCount(SystemMemory.peakResidentBytes() ?? 0)) (estimated \(ByteCount(estimatedPeak)))"
    }
}

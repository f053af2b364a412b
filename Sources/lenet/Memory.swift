import Foundation
import LeNetKit

/// A command's memory, known before it allocates: what it will still
/// allocate (`remaining`, from the library's estimates) on top of what the
/// process holds now. `check` refuses, naming a flag, when that does not fit.
struct MemoryPlan {
    /// What the command will still allocate.
    let remaining: MemoryEstimate
    /// Resident bytes when the plan was made (the datasets are loaded by then).
    let resident: Int
    /// The flag to name when it does not fit, with its value: `--batch-size 1000000`.
    let culprit: String

    /// - Parameters:
    ///   - remaining: what the command will still allocate.
    ///   - culprit: the flag that asks for most of it.
    init(remaining: MemoryEstimate, culprit: String) {
        self.remaining = remaining
        self.culprit = culprit
        resident = SystemMemory.residentBytes() ?? 0
        estimatedPeak = max(SystemMemory.peakResidentBytes() ?? 0, resident + remaining.bytes)
    }

    /// The peak resident memory the command should reach, as known when
    /// the plan was made: what it holds then plus what it will allocate (or
    /// an earlier peak, such as a whole training set read before `--limit`
    /// took its first images).
    let estimatedPeak: Int

    /// Throws, naming `culprit` and both figures, when the command would
    /// need more than the machine can give (`SystemMemory.available`).
    func check() throws {
        guard let available = SystemMemory.available(), remaining.bytes > available.bytes else { return }
        throw LeNetError("needs about \(ByteCount(remaining.bytes)), \(ByteCount(available.bytes)) available (\(available.source))",
                         subject: culprit)
    }

    /// "peak memory 212.4 MB (estimated 215.0 MB)", for the last line of a run.
    var report: String {
        "peak memory \(ByteCount(SystemMemory.peakResidentBytes() ?? 0)) (estimated \(ByteCount(estimatedPeak)))"
    }

    /// The flag whose default would save the most memory: `--batch-size N`
    /// or `--threads N`, judged by `needs(batch, threads)`.
    /// - Parameters:
    ///   - batchSize: the batch asked for, and the default.
    ///   - threads: the thread count asked for (nil: the default, every core).
    ///   - needs: bytes for a batch size and a thread count.
    static func culprit(batchSize: (value: Int, default: Int), threads: Int?, needs: (Int, Int) -> Int) -> String {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let asked = threads ?? cores, total = needs(batchSize.value, asked)
        let savedByBatch = total - needs(min(batchSize.value, batchSize.default), asked)
        let savedByThreads = total - needs(batchSize.value, min(asked, cores))
        if let threads, savedByThreads > savedByBatch { return "--threads \(threads)" }
        return "--batch-size \(batchSize.value)"
    }
}

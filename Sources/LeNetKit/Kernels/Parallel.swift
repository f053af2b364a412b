import CDispatchApply
import Dispatch
import Foundation
import Synchronization

/// How many threads LeNetKit's own batch-parallel loops use (im2col,
/// col2im, pooling, activations). `lenet --threads N` sets it together with
/// OpenBLAS's thread count. Set it before training, not during a step.
public enum Parallelism {
    nonisolated(unsafe) private static var _threads = ProcessInfo.processInfo.activeProcessorCount

    /// Threads for batch-parallel work (at least 1; default: the active cores).
    public static var threads: Int {
        get { _ = singleThreadedBLAS; return _threads }
        set { _ = singleThreadedBLAS; _threads = max(1, newValue) }
    }

    // LeNetKit's threads each call OpenBLAS; OpenBLAS's own threads would
    // compete with them, so it runs single-threaded from first use on.
    private static let singleThreadedBLAS: Void = BLASThreads.set(1)

    /// Sets LeNetKit's thread count. Training and evaluation split each
    /// batch across this many threads, one network replica each, so OpenBLAS
    /// itself runs single-threaded (its own threads would compete with ours).
    public static func setThreads(_ count: Int) {
        threads = count
        BLASThreads.set(1)
    }
}

/// Runs `body` over `0..<count` split into contiguous chunks, one per
/// thread, through Dispatch. Small jobs (`count < minimum`) run inline.
@inline(__always)
func parallelFor(_ count: Int, minimum: Int = 2, _ body: (Range<Int>) -> Void) {
    if count < minimum {
        body(0..<count)
        return
    }
    parallelForWorkers(count, maxWorkers: Int.max) { _, chunk in body(chunk) }
}

/// `parallelFor` that also tells each chunk which worker (0..<workers) runs
/// it, for per-worker scratch; at most `maxWorkers` workers.
@inline(__always)
func parallelForWorkers(_ count: Int, maxWorkers: Int, _ body: (Int, Range<Int>) -> Void) {
    if let team = WorkerTeam.current { return team.parallel(count, maxWorkers: maxWorkers, body) }
    let workers = min(Parallelism.threads, count, maxWorkers)
    if workers <= 1 || ParallelRegion.isInside {
        body(0, 0..<count)
        return
    }
    concurrentPerform(workers) { w in
        let lo = count * w / workers, hi = count * (w + 1) / workers
        if lo < hi { body(w, lo..<hi) }
    }
}

/// Runs `body(i)` for every `i` in `0..<iterations` on Dispatch's threads
/// (the calling thread takes part) and returns when all are done, like
/// `DispatchQueue.concurrentPerform`. That one wraps its closure in new heap
/// objects on every call (two or three per call, three calls a training
/// step); this one allocates only the small context (64 bytes) that
/// `withoutActuallyEscaping` makes. The iterations must touch disjoint
/// data: `body` is handed to the other threads as it is, which is safe only
/// because this returns after the last iteration.
@inline(never)
func concurrentPerform(_ iterations: Int, _ body: (Int) -> Void) {
    withoutActuallyEscaping(body) { body in
        var work = Work(body: body)
        withUnsafeMutablePointer(to: &work) { context in
            dispatch_apply_f(iterations, nil, context) { context, i in
                context?.assumingMemoryBound(to: Work.self).pointee.body(i)
            }
        }
    }
}

private struct Work {
    let body: (Int) -> Void
}

/// Marks the threads of a data-parallel region, so that the loops inside a
/// part run inline instead of fanning out again.
enum ParallelRegion {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static var isInside: Bool { pthread_getspecific(key) != nil }

    static func enter() { pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1)) }
    static func leave() { pthread_setspecific(key, nil) }
}

/// Runs `body(part)` for every part in `0..<parts` concurrently, each on its
/// own thread, with nested `parallelFor` loops inline.
func parallelRegion(_ parts: Int, _ body: (Int) -> Void) {
    concurrentPerform(parts) { part in
        ParallelRegion.enter()
        body(part)
        ParallelRegion.leave()
    }
}

/// A barrier for the parts of one `parallelRegion`, used once per region:
/// each part calls `started()` first and `arrive(parties:)` when its own
/// work is done, and no part gets past `arrive` before all have arrived.
/// Writes made before `arrive` are visible to every part after it.
///
/// Dispatch does not promise to run a region's parts at the same time: with
/// more parts than free threads it runs some after others have returned,
/// and a part waiting for those would wait forever. So a part that arrives
/// while some part has not even started gives the barrier up instead, and
/// then every part's `arrive` returns false: none gets past it, and the
/// caller does the work after the region instead.
///
/// The parts of a training step arrive within microseconds of each other,
/// so a waiting part spins instead of sleeping (waking a sleeping thread
/// takes tens of microseconds, each time); after 0.2 ms it naps between polls, so a
/// part slowed by another process on its core can move to this one.
final class PartBarrier: Sendable {
    private let begun = Atomic<Int>(0)
    // Parts arrived, or `abandoned` once given up.
    private let state = Atomic<Int>(0)
    private let generation = Atomic<Int>(0)
    private static let abandoned = Int.min

    /// Resets the barrier for a new region, before its parts start.
    func reset() {
        begun.store(0, ordering: .relaxed)
        state.store(0, ordering: .releasing)
    }

    /// Whether the parts got past the barrier (read after the region).
    var passed: Bool { state.load(ordering: .acquiring) != Self.abandoned }

    /// Marks the calling part as running.
    func started() {
        begun.wrappingAdd(1, ordering: .acquiringAndReleasing)
    }

    /// Waits until all `parties` parts have arrived and returns true; or
    /// returns false at once, on every part, when the barrier was given up.
    func arrive(parties: Int) -> Bool {
        guard parties > 1 else { return true }
        let current = generation.load(ordering: .acquiring)
        var seen = state.load(ordering: .acquiring)
        var next: Int
        repeat {
            if seen == Self.abandoned { return false }
            // Once every part has started none gives up, so a part that
            // waits below is sure to be joined.
            next = begun.load(ordering: .acquiring) < parties ? Self.abandoned : seen + 1
            let (exchanged, original) = state.compareExchange(expected: seen, desired: next, ordering: .acquiringAndReleasing)
            if exchanged { break }
            seen = original
        } while true
        if next == Self.abandoned { return false }
        if next == parties {
            generation.store(current &+ 1, ordering: .releasing)
            return true
        }
        // Spin for up to `spinTime`, then nap: a napping part leaves its
        // core idle, and Linux then moves a part that waits for a busy core
        // onto it.
        var polls = 0
        var spinUntil: UInt64 = 0
        while generation.load(ordering: .acquiring) == current {
            polls &+= 1
            guard polls & 255 == 0 else { continue }
            let now = DispatchTime.now().uptimeNanoseconds
            if spinUntil == 0 {
                spinUntil = now &+ Self.spinTime
            } else if now > spinUntil {
                usleep(50)
            }
        }
        return true
    }

    /// How long a part spins before it naps: longer than the parts of a
    /// step usually differ (tens of µs), shorter than a time slice.
    private static let spinTime: UInt64 = 200_000
}

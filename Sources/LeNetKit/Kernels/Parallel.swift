import CDispatchApply
import Dispatch
import Foundation
import Synchronization

/// How many threads the batch-parallel loops running on the calling thread
/// (`parallelFor`: im2col, col2im, pooling, activations, the inference
/// steps) may split their work across. It is a per-thread value set for the
/// length of one call (`with`), never a process-wide setting: a network's
/// passes set it to the network's `threads`, and each part of a
/// data-parallel region and each helper of a `WorkerTeam` to 1, so that the
/// loops inside run inline. Where none is set a loop runs inline on its
/// caller. So two networks, trainers or tests on different threads never
/// see each other's thread counts.
enum ThreadBudget {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The calling thread's budget: at least 1, and 1 where none is set.
    static var current: Int { max(1, Int(bitPattern: pthread_getspecific(key))) }

    /// `threads`, or the calling thread's budget where one is set and lower:
    /// an inner call may narrow the budget, never widen it.
    static func narrowed(_ threads: Int) -> Int {
        let outer = Int(bitPattern: pthread_getspecific(key))
        let threads = max(1, threads)
        return outer == 0 ? threads : min(outer, threads)
    }

    /// Runs `body` with the calling thread's budget set to `narrowed(threads)`,
    /// then restores the budget it had.
    @inline(__always)
    static func with<R>(_ threads: Int, _ body: () throws -> R) rethrows -> R {
        let outer = enter(threads)
        defer { leave(restoring: outer) }
        return try body()
    }

    /// Sets the calling thread's budget to `narrowed(threads)`; returns the
    /// budget it had, for `leave(restoring:)`.
    static func enter(_ threads: Int) -> UnsafeMutableRawPointer? {
        let outer = pthread_getspecific(key)
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: narrowed(threads)))
        return outer
    }

    /// Restores the budget `enter` returned.
    static func leave(restoring outer: UnsafeMutableRawPointer?) { pthread_setspecific(key, outer) }
}

/// LeNetKit's threads each call BLAS, so BLAS runs single-threaded (its own
/// threads would compete with them) from the first network made on. The
/// setting is the BLAS library's own (`openblas_set_num_threads`), made once.
enum SingleThreadedBLAS {
    static let ensured: Void = BLASThreads.set(1)
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
    let workers = min(ThreadBudget.current, count, maxWorkers)
    if workers <= 1 {
        body(0, 0..<count)
        return
    }
    concurrentPerform(workers) { w in
        let lo = count * w / workers, hi = count * (w + 1) / workers
        // A loop nested inside a chunk runs inline.
        if lo < hi { ThreadBudget.with(1) { body(w, lo..<hi) } }
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

/// Runs `body(part)` for every part in `0..<parts` concurrently, each on its
/// own thread with a budget of 1 (`ThreadBudget`): nested `parallelFor`
/// loops run inline.
func parallelRegion(_ parts: Int, _ body: (Int) -> Void) {
    concurrentPerform(parts) { part in
        ThreadBudget.with(1) { body(part) }
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

import CDispatchApply
import Dispatch
import Foundation

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

import Dispatch
import Foundation

/// How many threads LeNetKit's own batch-parallel loops use (im2col,
/// col2im, pooling, activations). `lenet --threads N` sets it together with
/// OpenBLAS's thread count. Set it before training, not during a step.
public enum Parallelism {
    nonisolated(unsafe) private static var _threads = ProcessInfo.processInfo.activeProcessorCount

    /// Threads for batch-parallel work (at least 1; default: the active cores).
    public static var threads: Int {
        get { _threads }
        set { _threads = max(1, newValue) }
    }

    /// Sets both LeNetKit's and OpenBLAS's thread counts.
    public static func setThreads(_ count: Int) {
        threads = count
        BLASThreads.set(count)
    }
}

/// Runs `body` over `0..<count` split into contiguous chunks, one per
/// thread, through Dispatch. Small jobs (`count < minimum`) run inline.
@inline(__always)
func parallelFor(_ count: Int, minimum: Int = 2, _ body: (Range<Int>) -> Void) {
    let workers = min(Parallelism.threads, count)
    if workers <= 1 || count < minimum {
        body(0..<count)
        return
    }
    // The chunks are disjoint and concurrentPerform returns only when all
    // are done, so handing the non-Sendable body to its workers is safe.
    withoutActuallyEscaping(body) { body in
        let shared = UncheckedSendable(body)
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let lo = count * w / workers, hi = count * (w + 1) / workers
            if lo < hi { shared.value(lo..<hi) }
        }
    }
}

struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

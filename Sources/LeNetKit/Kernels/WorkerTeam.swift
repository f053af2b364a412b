import Dispatch
import Foundation
import Synchronization

/// Threads that stay awake for the length of one call, so that a loop inside
/// it can hand part of its work to another thread in well under a
/// microsecond. `parallelForWorkers` hands work to a Dispatch thread that is
/// woken for it, tens of microseconds: more than half of what splitting one
/// image's convolution saves (docs/PERFORMANCE.md). Evaluation at batch 1 runs
/// its whole loop inside a team (`run`), and the inference steps split each
/// image between the team's threads.
///
/// The team lives only inside `run`: it is no process-wide pool. Its leader
/// (the thread that runs `body`) posts each job; the helpers spin, waiting
/// for one, and nap between polls after 0.2 ms without work, so a helper
/// whose core another process needs gives it up. Dispatch does not promise
/// to run a region's iterations at the same time; a helper that has not
/// started when a job is posted takes no share of it, and one that starts
/// before the leader gives up after 1 ms, so no job waits for a thread that
/// never comes.
final class WorkerTeam: @unchecked Sendable {
    private let size: Int
    // Bit i: helper i (1..<size) is ready; it waits on its mailbox until `finished`.
    private let ready = Atomic<Int>(0)
    // mailbox[i] = job number · 64 + the helper's part: written (releasing)
    // by the leader after `job`, so the helper reads `job` only after it.
    // A helper not given a part never reads `job`. (size)
    private let mailbox: UnsafeMutablePointer<Atomic<Int>>
    private let leaderStarted = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    private let done = Atomic<Int>(0)
    private var jobs = 0
    private var busy = false  // the leader is inside `parallel` (a nested loop runs inline)
    // The posted job: written by the leader before the mailboxes, cleared
    // after every part is done.
    private var job: Job?

    private struct Job {
        let body: (Int, Range<Int>) -> Void
        let count: Int
        let parties: Int  // the leader and its helpers
    }

    private init(size: Int) {
        self.size = min(size, 64)
        mailbox = .allocate(capacity: self.size)
        for i in 0..<self.size { (mailbox + i).initialize(to: Atomic<Int>(0)) }
    }

    deinit {
        mailbox.deinitialize(count: size)
        mailbox.deallocate()
    }

    /// The team the calling thread leads, if any.
    static var current: WorkerTeam? {
        guard let p = pthread_getspecific(key) else { return nil }
        return Unmanaged<WorkerTeam>.fromOpaque(p).takeUnretainedValue()
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The threads the team has, its leader included (some helpers may not
    /// have started).
    var threads: Int { size }

    /// Runs `body` on one thread with up to `threads − 1` helpers awake
    /// beside it (up to 63, and at most the calling thread's `ThreadBudget`
    /// where one is set; fewer when Dispatch cannot start them);
    /// `parallelForWorkers` calls inside `body` split their work across the team.
    static func run<T>(threads: Int, _ body: () throws -> T) throws -> T {
        let threads = ThreadBudget.narrowed(threads)
        guard threads > 1, current == nil else { return try body() }
        let team = WorkerTeam(size: threads)
        var result: Result<T, Error>?
        withoutActuallyEscaping(body) { body in
            concurrentPerform(team.size) { i in
                if i == 0 {
                    pthread_setspecific(key, Unmanaged.passUnretained(team).toOpaque())
                    team.leaderStarted.store(true, ordering: .releasing)
                    result = Result { try body() }
                    pthread_setspecific(key, nil)
                    team.finished.store(true, ordering: .releasing)
                } else {
                    ThreadBudget.with(1) { team.help(as: i) }  // a loop inside a helper's part runs inline
                }
            }
        }
        // concurrentPerform returned, so every iteration has: result is set.
        guard let result else { return try body() }
        return try result.get()
    }

    /// A helper's loop: wait for a part in its mailbox, run it, until the leader is done.
    private func help(as id: Int) {
        let start = DispatchTime.now().uptimeNanoseconds
        while !leaderStarted.load(ordering: .acquiring) {
            if DispatchTime.now().uptimeNanoseconds - start > 1_000_000 { return }
        }
        ready.bitwiseOr(1 << id, ordering: .releasing)
        var seen = 0, idleSince = DispatchTime.now().uptimeNanoseconds, polls = 0
        while true {
            let letter = (mailbox + id).pointee.load(ordering: .acquiring)
            if letter != seen {
                seen = letter
                if let job {
                    let part = letter & 63
                    let lo = job.count * part / job.parties, hi = job.count * (part + 1) / job.parties
                    if lo < hi { job.body(part, lo..<hi) }
                }
                done.add(1, ordering: .releasing)
                idleSince = DispatchTime.now().uptimeNanoseconds
                continue
            }
            if finished.load(ordering: .acquiring) { return }
            polls &+= 1
            if polls & 255 == 0, DispatchTime.now().uptimeNanoseconds - idleSince > 200_000 { usleep(50) }
        }
    }

    /// Splits `0..<count` into one contiguous range for the leader and each
    /// ready helper, at most `maxWorkers` in all, runs the leader's here and
    /// returns when every part is done. Called on the leader's thread only.
    func parallel(_ count: Int, maxWorkers: Int, _ body: (Int, Range<Int>) -> Void) {
        let limit = min(maxWorkers, count, size)
        // The helpers taking part, as bits (no array: nothing is allocated per call).
        var helpers = 0, taking = 0
        if !busy {
            let readyHelpers = ready.load(ordering: .acquiring)
            var id = 1
            while id < size && taking + 1 < limit {
                if readyHelpers & (1 << id) != 0 { helpers |= 1 << id; taking += 1 }
                id += 1
            }
        }
        guard taking > 0 else { return body(0, 0..<count) }
        busy = true
        defer { busy = false }
        let parties = taking + 1
        withoutActuallyEscaping(body) { body in
            job = Job(body: body, count: count, parties: parties)
            done.store(0, ordering: .relaxed)
            jobs &+= 1
            var part = 1
            for id in 1..<size where helpers & (1 << id) != 0 {
                (mailbox + id).pointee.store(jobs &* 64 &+ part, ordering: .releasing)
                part += 1
            }
            body(0, 0..<count / parties)
            while done.load(ordering: .acquiring) < taking {}
            job = nil
        }
    }
}

/// Runs a network's batches split across threads: each batch is cut into
/// contiguous parts, one per thread, and each part runs on its own network
/// (the network itself for part 0, then replicas that share its parameter
/// values but own their activations, gradients and scratch), so that every
/// gemm, im2col and pooling loop runs single-threaded on one core with no
/// hand-off between threads. `Trainer` and `evaluate` run their batches
/// through one; a custom training loop can too.
///
/// The thread count is this value's own: two runners, in one process or
/// one test run, never share or change each other's. The split depends only
/// on the batch size and `threads`, so results are the same for the same
/// thread count. A runner is used from one thread at a time.
///
/// ```swift
/// let parallel = try DataParallel(network: network, threads: 2)
/// try parallel.reserve(batch: 36)
/// try parallel.run(batch: 36) { part, net, range in
///     // fill net.input(batch: range.count) with the samples in `range`,
///     // then net.forward, the loss, net.backward
/// }
/// parallel.gatherGradients(parts: parallel.parts(batch: 36))
/// ```
final class DataParallel {
    /// The network whose batches are split; part 0 runs on it.
    let network: Network
    /// At most this many parts, and threads, per batch.
    let threads: Int
    /// Networks for parts 1, 2, …: made on first need, kept.
    private(set) var replicas: [Network] = []
    private var partErrors: [LeNetError?] = []
    private let barrier = PartBarrier()

    /// - Parameters:
    ///   - network: the network to run; its `fusesPooling` is followed by
    ///     every replica.
    ///   - threads: at most this many parts per batch (at least 1).
    /// - Throws: `LeNetError` when `threads` is below 1.
    init(network: Network, threads: Int) throws {
        guard threads > 0 else { throw LeNetError("must be > 0, got \(threads)", subject: "DataParallel.threads") }
        self.network = network
        self.threads = threads
    }

    /// The number of parts a batch of `n` is split into: one per thread, at
    /// most one per sample.
    func parts(batch n: Int) -> Int { Network.parts(batch: n, threads: threads) }

    /// The most samples a part of a batch of `n` gets (`partRange`'s
    /// longest): what each part's network and buffers are reserved for.
    func longestPart(batch n: Int) -> Int { Network.longestPart(batch: n, threads: threads) }

    /// The samples of part `part` when a batch of `n` is cut into `parts`.
    static func partRange(_ part: Int, of parts: Int, batch n: Int) -> Range<Int> {
        n * part / parts..<n * (part + 1) / parts
    }

    /// Reserves the network and the replicas a batch of `n` uses, each for
    /// its part: all of a pass's memory is had here, before the pass starts
    /// (and fails here, if it cannot be). The network's own layers keep
    /// scratch for `threads` workers (at batch 1, evaluation splits each
    /// image across them); a replica's, for the one thread it runs on.
    /// `Network.memoryEstimate(batch:threads:backward:)` says beforehand
    /// how much this takes.
    /// - Parameters:
    ///   - n: the batch size.
    ///   - backward: as in `Network.reserve(batch:backward:)`: false for
    ///     passes that only run forward (evaluation).
    /// - Throws: as `Network.reserve(batch:)`.
    func reserve(batch n: Int, backward: Bool = true) throws {
        let parts = parts(batch: n), largest = longestPart(batch: n)
        try network.reserve(batch: largest, backward: backward, workers: threads)
        try makeReplicas(parts)
        for replica in replicas.prefix(parts - 1) { try replica.reserve(batch: largest, backward: backward) }
    }

    /// Makes replicas until there are `parts` networks in all.
    private func makeReplicas(_ parts: Int) throws {
        while replicas.count < parts - 1 { replicas.append(try network.makeReplica(part: replicas.count + 1)) }
        for replica in replicas {
            if replica.fusesPooling != network.fusesPooling { replica.fusesPooling = network.fusesPooling }
            replica.allowsWinograd = network.allowsWinograd
        }
    }

    /// Splits a batch of `n` samples into `parts(batch: n)` contiguous parts
    /// and runs `body` on each concurrently, each part on its own thread
    /// with its own network.
    /// - Parameters:
    ///   - n: the batch size.
    ///   - body: (part index, its network, its range of the batch). A part's
    ///     network reserves its own buffers on first use when `reserve` was
    ///     not called for the batch.
    /// - Throws: the first part's error, after every part has finished.
    func run(batch n: Int, _ body: (Int, Network, Range<Int>) throws -> Void) throws {
        try run(batch: n, collective: false, body, thenEachPart: { _, _ in })
    }

    /// `run(batch:_:)` followed, once every part's `body` has finished, by
    /// `thenEachPart(part, parts)` on every part in the same region: for
    /// work that needs all the parts' results and is itself split across
    /// the parts, like a training step's parameter update
    /// (`PartitionedOptimizer`). The parts wait for each other at a
    /// barrier, with no second round of thread hand-offs.
    ///
    /// When Dispatch cannot run all the parts at once (more parts than free
    /// threads) or a part's `body` throws, no part runs `thenEachPart` and
    /// this returns false: the caller then does that work itself.
    /// - Parameters:
    ///   - n: the batch size.
    ///   - body: (part index, its network, its range of the batch).
    ///   - thenEachPart: (part index, number of parts).
    /// - Returns: whether every part ran `thenEachPart`.
    /// - Throws: the first part's error, after every part has finished.
    @discardableResult
    func run(batch n: Int, _ body: (Int, Network, Range<Int>) throws -> Void,
                    thenEachPart: (Int, Int) -> Void) throws -> Bool {
        try run(batch: n, collective: true, body, thenEachPart: thenEachPart)
    }

    @discardableResult
    private func run(batch n: Int, collective: Bool, _ body: (Int, Network, Range<Int>) throws -> Void,
                     thenEachPart: (Int, Int) -> Void) throws -> Bool {
        let parts = parts(batch: n)
        try makeReplicas(parts)
        if parts == 1 {
            // One part runs on the calling thread, its loops inline as in a region's part.
            let outer = ThreadBudget.enter(1)
            defer { ThreadBudget.leave(restoring: outer) }
            try body(0, network, 0..<n)
            if collective { thenEachPart(0, 1) }
            return collective
        }
        if partErrors.count < parts { partErrors = [LeNetError?](repeating: nil, count: parts) }
        let network = network, replicas = replicas
        // Runs one part's body; its error, as a LeNetError, or nil.
        func runPart(_ part: Int) -> LeNetError? {
            do {
                try body(part, part == 0 ? network : replicas[part - 1], Self.partRange(part, of: parts, batch: n))
                return nil
            } catch let error as LeNetError {
                return error
            } catch {
                return LeNetError("\(error)")
            }
        }
        let barrier = barrier
        barrier.reset()
        // One part, then (collective) the barrier and its share of the update.
        func runPartThenUpdate(_ part: Int, _ errors: UnsafeMutableBufferPointer<LeNetError?>) {
            barrier.started()
            errors[part] = runPart(part)
            guard collective, barrier.arrive(parties: parts) else { return }
            // Every part sees every part's error here, so all skip together.
            guard !errors[0..<parts].contains(where: { $0 != nil }) else { return }
            thenEachPart(part, parts)
        }
        partErrors.withUnsafeMutableBufferPointer { errors in
            if let team = WorkerTeam.current, team.threads >= parts {
                // Inside a team (an evaluation's, or a training epoch's), its
                // helpers are awake: handing them the parts costs no thread
                // wake-up, which at batch 16 took a quarter of each batch's
                // time through Dispatch. A helper that is not ready leaves its
                // part to the leader; the barrier then gives up, as in a region.
                team.parallel(parts, maxWorkers: parts) { _, chunk in
                    for part in chunk { runPartThenUpdate(part, errors) }
                }
            } else {
                parallelRegion(parts) { part in runPartThenUpdate(part, errors) }
            }
        }
        if let error = partErrors.prefix(parts).compactMap({ $0 }).first { throw error }
        return !collective || barrier.passed
    }

    /// Adds the gradients of the first `parts - 1` replicas into the
    /// network's, in part order (after a `run` whose parts ran backward),
    /// split across `threads`.
    func gatherGradients(parts: Int) {
        guard parts > 1 else { return }
        let count = network.parameters.gradients.count, block = 16_384
        ThreadBudget.with(threads) {
            parallelFor((count + block - 1) / block) { blocks in
                gatherGradients(parts: parts, range: blocks.lowerBound * block..<min(blocks.upperBound * block, count))
            }
        }
    }

    /// `gatherGradients(parts:)` for the parameters in `range` only, on the
    /// calling thread: an optimizer's update calls it block by block, so
    /// the sum is made while the block is in cache.
    /// - Parameters:
    ///   - parts: the parts of the last `run`.
    ///   - range: indices into the parameter store.
    func gatherGradients(parts: Int, range: Range<Int>) {
        guard parts > 1 else { return }
        let g = network.parameters.gradients
        for other in replicas.prefix(parts - 1) {
            let o = other.parameters.gradients
            for i in range { g[i] += o[i] }
        }
    }
}

import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Stopping training part way through an epoch (Ctrl-C) and crashing while
/// a checkpoint is written: in every case the run resumes to bitwise the
/// weights of an uninterrupted one.
struct CrashSafetyTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    func options(_ optimizer: TrainingOptions.OptimizerKind = .adam, epochs: Int = 2, batch: Int = 16) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs
        o.batchSize = batch
        o.seed = 3
        o.optimizer = optimizer
        o.learningRate = optimizer == .sgd ? 0.01 : 1e-3
        o.weightDecay = 1e-4
        return o
    }

    /// A `shouldStop` that lets `steps` steps run, then stops.
    func stopAfter(_ steps: Int) -> () -> Bool {
        var asked = 0
        return {
            asked += 1
            return asked > steps
        }
    }

    /// 90 images in batches of 16: 6 steps per epoch, the last one of 10 images.
    @Test func testStoppingMidEpochAndResumingGivesTheSameWeights() throws {
        let dir = try temporaryDirectory()
        let data = try TrainingTests.squares(count: 90, seed: 1)
        for optimizer in [TrainingOptions.OptimizerKind.adam, .sgd] {
            let straight = try TrainingTests.smallNetwork()
            let t1 = try Trainer(network: straight, dataset: data, options: options(optimizer))
            let epochs = [try t1.trainEpoch(), try t1.trainEpoch()]

            // Stopped in the first epoch (before any step, after one, before the
            // last) and in the second, saved, and resumed in new objects.
            for (stopEpoch, k) in [(0, 0), (0, 1), (0, 5), (1, 3)] {
                let path = dir.appendingPathComponent("ck-\(optimizer)-\(stopEpoch)-\(k).safetensors").path
                let first = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options(optimizer))
                if stopEpoch == 1 { _ = try first.trainEpoch() }
                let partial = try first.trainEpoch(shouldStop: stopAfter(k))
                #expect(!partial.isComplete)
                #expect(partial.epoch == stopEpoch + 1)
                #expect(partial.images == 16 * k)
                #expect(first.stepInEpoch == k)
                #expect(first.epoch == stopEpoch)
                #expect(first.imagesSeen == 90 * stopEpoch + 16 * k)
                try first.saveCheckpoint(to: path)
                let weights = try SafetensorsFile.read(path: path)
                #expect(weights.metadata["epoch"] == "\(stopEpoch)")
                #expect(weights.metadata["epoch_step"] == (k > 0 ? "\(k)" : nil))

                let resumed = try TrainingTests.smallNetwork(seed: 99)  // all of it must come from the file
                let t2 = try Trainer(network: resumed, dataset: data, options: options(optimizer))
                try t2.resume(from: path)
                #expect(t2.epoch == stopEpoch)
                #expect(t2.stepInEpoch == k)
                #expect(t2.optimizer.stepCount == 6 * stopEpoch + k)
                var last = try t2.trainEpoch()
                if stopEpoch == 0 { last = try t2.trainEpoch() }
                #expect(last.isComplete)
                #expect(t2.epoch == 2)
                #expect(t2.stepInEpoch == 0)
                #expect(t2.imagesSeen == 180)
                #expect(Array(resumed.parameters.values) == Array(straight.parameters.values), "\(optimizer), stopped in epoch \(stopEpoch + 1) after \(k) steps")
                // The interrupted epoch's figures cover all its steps, before and after the stop.
                #expect(last.loss == epochs[1].loss, "\(optimizer) \(stopEpoch) \(k)")
                #expect(last.images == 90)
                #expect(last.correct == epochs[1].correct)
            }
        }
    }

    /// Stopping and going on in the same trainer, without a checkpoint, also
    /// changes nothing.
    @Test func testStoppingAndContinuingInPlaceChangesNothing() throws {
        let data = try TrainingTests.squares(count: 90, seed: 1)
        let straight = try TrainingTests.smallNetwork()
        let t1 = try Trainer(network: straight, dataset: data, options: options())
        let whole = try t1.trainEpoch()
        let net = try TrainingTests.smallNetwork()
        let t2 = try Trainer(network: net, dataset: data, options: options())
        #expect(try !t2.trainEpoch(shouldStop: stopAfter(2)).isComplete)
        #expect(try !t2.trainEpoch(shouldStop: stopAfter(0)).isComplete)
        #expect(t2.stepInEpoch == 2)
        #expect(try !t2.trainEpoch(shouldStop: stopAfter(1)).isComplete)
        let rest = try t2.trainEpoch()
        #expect(rest.isComplete)
        #expect(Array(net.parameters.values) == Array(straight.parameters.values))
        #expect(rest.loss == whole.loss)
        #expect(t2.imagesSeen == 90)
    }

    /// What a SIGKILL between writing the state and writing the weights
    /// leaves: the state one epoch ahead. The previous state, kept as
    /// `.state.prev`, belongs with the weights, and resuming from it is exact.
    @Test func testCrashBetweenStateAndWeightsStillResumesExactly() throws {
        let dir = try temporaryDirectory()
        let data = try TrainingTests.squares(count: 90, seed: 1)
        let path = dir.appendingPathComponent("ck.safetensors").path
        let state = Checkpoint.statePath(for: path), previous = Checkpoint.previousStatePath(for: path)
        #expect(previous == path + ".state.prev")

        let straight = try TrainingTests.smallNetwork()
        let t1 = try Trainer(network: straight, dataset: data, options: options(epochs: 3))
        for _ in 0..<3 { _ = try t1.trainEpoch() }

        let t2 = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options(epochs: 3))
        _ = try t2.trainEpoch()
        try t2.saveCheckpoint(to: path)
        #expect(!FileManager.default.fileExists(atPath: previous))
        let weightsAfterEpoch1 = try Data(contentsOf: URL(fileURLWithPath: path))
        let stateAfterEpoch1 = try Data(contentsOf: URL(fileURLWithPath: state))
        _ = try t2.trainEpoch()
        try t2.saveCheckpoint(to: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: previous)) == stateAfterEpoch1)
        #expect(try trainingState(ofCheckpoint: path).epoch == 2)

        func resumeAndFinish() throws -> [Float] {
            let net = try TrainingTests.smallNetwork(seed: 99)
            let t = try Trainer(network: net, dataset: data, options: options(epochs: 3))
            try t.resume(from: path)
            #expect(t.epoch == 1)
            while t.epoch < 3 { _ = try t.trainEpoch() }
            return Array(net.parameters.values)
        }
        // The crash: the epoch-2 state is on disk, the weights are still epoch 1's.
        try weightsAfterEpoch1.write(to: URL(fileURLWithPath: path))
        #expect(try resumeAndFinish() == Array(straight.parameters.values))

        // A crash between renaming the old state and writing the new one: no
        // `.state` at all, and `.state.prev` goes with the weights.
        try FileManager.default.removeItem(atPath: state)
        #expect(try resumeAndFinish() == Array(straight.parameters.values))

        // Neither state file matching the weights is an error naming the state file.
        try FileManager.default.removeItem(atPath: previous)
        assertError("ck.safetensors.state", "No such file") {
            try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options(epochs: 3)).resume(from: path)
        }
    }

    /// A checkpoint that cannot be written (here: `.state.prev` is taken by a
    /// directory; a full disk behaves the same) is an error that says the
    /// previous checkpoint is still there, and it is, and it resumes.
    @Test func testFailedSaveKeepsThePreviousCheckpoint() throws {
        let dir = try temporaryDirectory()
        let data = try TrainingTests.squares(count: 40, seed: 1)
        let path = dir.appendingPathComponent("ck.safetensors").path
        let trainer = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options())
        _ = try trainer.trainEpoch()
        try trainer.saveCheckpoint(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        try FileManager.default.createDirectory(atPath: Checkpoint.previousStatePath(for: path) + "/taken",
                                                withIntermediateDirectories: true)
        _ = try trainer.trainEpoch()
        assertError("ck.safetensors.state", "cannot rename", "ck.safetensors still holds the previous checkpoint") {
            try trainer.saveCheckpoint(to: path)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        let fresh = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options())
        try fresh.resume(from: path)
        #expect(fresh.epoch == 1)
    }

    /// `--output` naming a missing directory, an unwritable place or a
    /// directory fails before any training, naming the flag.
    @Test func testOutputThatCannotBeWrittenFailsBeforeTraining() throws {
        let dir = try temporaryDirectory()
        try CLITests.makeCIFAR(dir, train: 20, test: 10)
        var cases = [(dir.path + "/missing/ck.safetensors", "does not exist"), (dir.path, "is a directory; expected a file name")]
        #if os(Linux)
        // Writable by access(2) for root, yet no file can be created there.
        cases.append(("/proc/ck.safetensors", "is not writable"))
        #endif
        for (output, message) in cases {
            let run = try runLenet(["train", "--data", dir.path, "--epochs", "1", "--output", output])
            #expect(run.status == 1, "\(run.stderr)")
            #expect(run.stderr == "lenet: error: --output \(output): " + (message == "does not exist"
                ? "directory \(dir.path)/missing does not exist" : message == "is not writable"
                ? "directory /proc is not writable" : message) + "\n")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + ".state"))
    }

    /// A state file from the same epoch of another run (other weights) is
    /// not paired with these weights: the digest tells them apart.
    @Test func testStateOfOtherWeightsIsRefused() throws {
        let dir = try temporaryDirectory()
        let data = try TrainingTests.squares(count: 40, seed: 1)
        let a = dir.appendingPathComponent("a.safetensors").path, b = dir.appendingPathComponent("b.safetensors").path
        let ta = try Trainer(network: try TrainingTests.smallNetwork(seed: 1), dataset: data, options: options())
        let tb = try Trainer(network: try TrainingTests.smallNetwork(seed: 2), dataset: data, options: options())
        _ = try ta.trainEpoch()
        _ = try tb.trainEpoch()
        try ta.saveCheckpoint(to: a)
        try tb.saveCheckpoint(to: b)
        try FileManager.default.removeItem(atPath: Checkpoint.statePath(for: a))
        try FileManager.default.copyItem(atPath: Checkpoint.statePath(for: b), toPath: Checkpoint.statePath(for: a))
        let fresh = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options())
        assertError("a.safetensors.state", "was saved with other weights than", "epoch 1") { try fresh.resume(from: a) }
    }

    // MARK: Ctrl-C through the command line

    /// Starts `lenet` with `arguments`, sends SIGINT as soon as training has
    /// started, and returns what it printed.
    func interruptLenet(_ arguments: [String]) throws -> LenetRun {
        let executable = try lenetExecutable()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        // A child starts with its parent thread's signal mask, and Swift
        // Testing runs tests on Dispatch's worker threads, which block SIGINT
        // (XCTest ran them on the main thread): unblocked only while spawning,
        // or lenet would never see the Ctrl-C.
        var sigint = sigset_t(), previous = sigset_t()
        sigemptyset(&sigint)
        sigaddset(&sigint, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &sigint, &previous)
        let launched = Result { try process.run() }
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        try launched.get()
        var stderr = Data()
        // The "training ..." line comes once Ctrl-C is caught and just before the first step.
        while !String(decoding: stderr, as: UTF8.self).contains("training ") {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            stderr += chunk
        }
        process.interrupt()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        stderr += err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return LenetRun(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                        stderr: String(decoding: stderr, as: UTF8.self))
    }

    @Test func testCtrlCSavesAndPrintsTheCommandThatResumesExactly() throws {
        // A space and a quote in the paths: the printed command must quote them for a shell.
        let dir = try temporaryDirectory().appendingPathComponent("run 1's data")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try CLITests.makeCIFAR(dir, train: 300, test: 20)
        let ck = dir.appendingPathComponent("ck.safetensors").path
        let common = ["train", "--data", dir.path, "--epochs", "2", "--batch-size", "10", "--limit", "300", "--threads", "1"]

        let run = try interruptLenet(common + ["--output", ck])
        #expect(run.status == 130, "\(run.stderr)")
        let lines = run.stderr.split(separator: "\n").map(String.init)
        let said = try #require(lines.firstIndex { $0.hasPrefix("interrupted ") && $0.hasSuffix("To resume:") }, "\(run.stderr)")
        #expect(lines[said].contains("wrote \(ck) (and \(ck).state)"), "\(lines[said])")
        let command = try #require(lines.dropFirst(said + 1).first, "\(run.stderr)")
        let quoted = "'" + ck.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
        #expect(command.hasPrefix("  /"), "\(command)")
        #expect(command.hasSuffix(" --output \(quoted) --resume \(quoted)"), "\(command)")
        let saved = try SafetensorsFile.read(path: ck)
        let savedAt = (Int(saved.metadata["epoch"] ?? "") ?? -1) * 30 + (Int(saved.metadata["epoch_step"] ?? "0") ?? -1)
        #expect((0..<60).contains(savedAt), "stopped at \(saved.metadata)")
        #expect(saved.metadata["images_seen"] == "\(10 * savedAt)")

        // The printed command, run by a shell as printed, finishes the run.
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", command + " 2>/dev/null"]
        let out = Pipe()
        shell.standardOutput = out
        try shell.run()
        let printed = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 0, "\(command)")
        #expect(printed.contains("epoch 2/2"), "\(printed)")

        let straight = dir.appendingPathComponent("straight.safetensors").path
        let uninterrupted = try runLenet(common + ["--output", straight])
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        #expect(try SafetensorsFile.read(path: ck).tensors == SafetensorsFile.read(path: straight).tensors)
        #expect(try SafetensorsFile.read(path: ck).metadata["epoch"] == "2")

        // Without --output there is nothing to resume from, and lenet says so.
        let unsaved = try interruptLenet(common)
        #expect(unsaved.status == 130, "\(unsaved.stderr)")
        #expect(unsaved.stderr.contains("nothing was saved (no --output)"), "\(unsaved.stderr)")
    }

    /// An epoch stopped part way continues only with the same batches.
    @Test func testMidEpochResumeNeedsTheSameBatches() throws {
        let dir = try temporaryDirectory()
        let data = try TrainingTests.squares(count: 90, seed: 1)
        let path = dir.appendingPathComponent("ck.safetensors").path
        let trainer = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options())
        _ = try trainer.trainEpoch(shouldStop: stopAfter(2))
        try trainer.saveCheckpoint(to: path)
        let other = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data, options: options(batch: 10))
        assertError("ck.safetensors.state", "interrupted 2 steps into an epoch of batch size 16 over 90 images",
                    "TrainingOptions.batchSize", "this run: batch size 10, 90 images") { try other.resume(from: path) }
        let fewer = try Trainer(network: try TrainingTests.smallNetwork(), dataset: data.prefix(80), options: options())
        assertError("ck.safetensors.state", "over 90 images", "80 images") { try fewer.resume(from: path) }
    }
}

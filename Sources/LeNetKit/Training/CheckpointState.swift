// Pairing a weights file with its training state, so that a crash at any
// moment of `Trainer.saveCheckpoint` leaves something `Trainer.resume` can
// continue from exactly.
//
// A checkpoint is two files, each written atomically: `FILE.state` first,
// then `FILE`. Before the new state is written the old one is renamed to
// `FILE.state.prev`. A crash (SIGKILL, power loss) can then leave:
//
//     before the rename          FILE.state and FILE from epoch k       (a pair)
//     between rename and state   FILE.state.prev and FILE from epoch k  (a pair)
//     between state and weights  FILE.state from k+1, FILE and FILE.state.prev from k
//     after the weights          FILE.state and FILE from epoch k+1     (a pair)
//
// so one of the two state files always belongs to the weights on disk.
// Each state file records a digest of the weights it was saved with, and
// `resume` takes the one whose digest (and epoch and step) match.
import Foundation

extension Checkpoint.Key {
    /// Batches of the next epoch already trained when the checkpoint was
    /// written (by an interrupted run); absent at the end of an epoch.
    static let epochStep = "epoch_step"
    /// In the weights file of a run with weight averaging: the EMA decay
    /// (`TrainingOptions.ema`). The weights are then the average.
    static let ema = "ema"
}

extension Checkpoint {
    /// With weight averaging, the state file keeps the trained weights
    /// (the weights file has the average) under their names with this prefix.
    static let trainedPrefix = "training."

    /// The state file of the checkpoint written before the current one,
    /// kept so that a crash between writing the state and the weights of a
    /// new checkpoint leaves a state that matches the weights on disk.
    static func previousStatePath(for path: String) -> String { statePath(for: path) + ".prev" }

    /// A 64-bit FNV-1a hash of the tensors' Float bit patterns, in order, as
    /// 16 hex digits. Equal weights give equal digests on every platform.
    static func weightsDigest(_ tensors: [[Float]]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for values in tensors {
            for value in values {
                var bits = value.bitPattern
                for _ in 0..<4 {
                    hash = (hash ^ UInt64(bits & 0xFF)) &* 0x0000_0100_0000_01B3
                    bits >>= 8
                }
            }
        }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Renames the state file of `path`, if there is one, to
    /// `previousStatePath(for: path)`, replacing an older one.
    /// - Throws: `LeNetError` naming the state file when it exists but cannot be renamed.
    static func keepPreviousState(for path: String) throws {
        let current = statePath(for: path)
        guard rename(current, previousStatePath(for: path)) == 0 || errno == ENOENT else {
            throw LeNetError("cannot rename to \(previousStatePath(for: path)): \(String(cString: strerror(errno)))",
                             subject: current)
        }
    }

    /// The state file that belongs with the weights at `path`: `FILE.state`,
    /// or else `FILE.state.prev`, whichever was written with the same epoch,
    /// step and weights digest.
    ///
    /// - Parameters:
    ///   - path: the weights file.
    ///   - epoch: its `epoch` metadata.
    ///   - step: its `epoch_step` metadata (0 when absent).
    ///   - imagesSeen: its `images_seen` metadata, which a lenetkit-1 state
    ///     takes as its own.
    ///   - digest: `weightsDigest` of its tensors, in the network's parameter order.
    /// - Returns: the state file, the training state it holds, and its path.
    /// - Throws: `LeNetError` naming `FILE.state` when neither file matches:
    ///   why `FILE.state` does not (missing, damaged, another epoch, other weights).
    static func matchingState(for path: String, epoch: Int, step: Int, imagesSeen: Int, digest: String) throws
        -> (file: SafetensorsFile, state: TrainingState, path: String) {
        let primary = statePath(for: path)
        var problem: LeNetError?
        for candidate in [primary, previousStatePath(for: path)] {
            let file: SafetensorsFile, state: TrainingState
            do {
                file = try SafetensorsFile.read(path: candidate)
                state = try TrainingState(stateFile: file, imagesSeen: imagesSeen, source: candidate)
            } catch let error as LeNetError {
                if candidate == primary { problem = error }
                continue
            }
            // State files written before digests were recorded match on epoch and step alone.
            if state.epoch == epoch, state.epochStep == step, state.weightsDigest == nil || state.weightsDigest == digest {
                return (file, state, candidate)
            }
            guard candidate == primary else { continue }
            let position = { (e: Int, s: Int) in s > 0 ? "epoch \(e) (and \(s) steps of the next)" : "epoch \(e)" }
            if state.epoch != epoch || state.epochStep != step {
                problem = LeNetError("is from \(position(state.epoch, state.epochStep)), "
                    + "the weights from \(position(epoch, step))", subject: candidate)
            } else {
                problem = LeNetError("was saved with other weights than \(path) (both are from "
                    + "\(position(epoch, step))); was one of the two files replaced?", subject: candidate)
            }
        }
        throw problem ?? LeNetError("missing", subject: primary)
    }
}

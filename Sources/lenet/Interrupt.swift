import Foundation
import Synchronization

/// Ctrl-C during training. The first SIGINT sets a flag that the training
/// loop reads between steps (it then finishes the step, writes a checkpoint
/// and exits with status 130); a second ends the process at once, which
/// loses nothing on disk because checkpoints are written atomically. (Not a
/// Dispatch source: it registers late, and would miss an early SIGINT.)
struct Interrupt {
    /// Starts catching SIGINT: from now on Ctrl-C sets `isRequested`.
    init() {
        // The handler may only touch these; make sure they exist before it can run.
        _ = interruptRequested.load(ordering: .sequentiallyConsistent)
        _ = interruptMessage.count
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            // Only async-signal-safe calls here: an atomic exchange, write, signal, raise.
            if interruptRequested.exchange(true, ordering: .sequentiallyConsistent) {
                signal(SIGINT, SIG_DFL)
                raise(SIGINT)
                return
            }
            interruptMessage.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGINT, &action, nil)
    }

    /// Whether Ctrl-C has been pressed.
    var isRequested: Bool { interruptRequested.load(ordering: .sequentiallyConsistent) }
}

private let interruptRequested = Atomic<Bool>(false)
private let interruptMessage = Array(((isatty(STDERR_FILENO) != 0 ? "\r\u{1B}[2K" : "")  // over a progress bar
    + "interrupted: stopping after this step (Ctrl-C again to quit at once)\n").utf8)

/// This process's command line with `--resume FILE` in place of any
/// `--resume` it had, as one line a POSIX shell reads back as the same words.
func resumeCommand(output: String) -> String {
    var words: [String] = [], arguments = CommandLine.arguments[...]
    while let word = arguments.popFirst() {
        if word == "--resume" { _ = arguments.popFirst() } else if !word.hasPrefix("--resume=") { words.append(word) }
    }
    return (words + ["--resume", output]).map { word in
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy {
            CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_./=:,+@%".unicodeScalars.contains($0)
        }
        return plain ? word : "'" + word.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
    }.joined(separator: " ")
}

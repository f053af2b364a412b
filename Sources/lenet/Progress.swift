import Foundation
import LeNetKit

/// Progress on stderr while an epoch runs: a redrawn bar on a terminal, a
/// plain line every few seconds otherwise (logs, CI).
final class ProgressDisplay {
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private var lastDraw = 0.0

    func update(_ p: StepProgress) {
        let interval = isTerminal ? 0.1 : 10.0
        guard p.step == p.steps || p.secondsElapsed - lastDraw >= interval else { return }
        lastDraw = p.secondsElapsed
        let fraction = Double(p.step) / Double(max(p.steps, 1))
        let stats = String(format: "loss %.4f  %.0f img/s  ETA %@", p.runningLoss, p.imagesPerSecond, duration(p.secondsRemaining))
        if isTerminal {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            write("\r\u{1B}[2Kepoch \(p.epoch) [\(bar)] \(p.step)/\(p.steps)  \(stats)")
            if p.step == p.steps { write("\r\u{1B}[2K") }
        } else if p.step < p.steps {
            write(String(format: "epoch %d: %d/%d steps (%.0f%%)  ", p.epoch, p.step, p.steps, fraction * 100) + stats + "\n")
        }
        lastDraw = p.step == p.steps ? 0 : lastDraw
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

func duration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

import Foundation
@_spi(CLI) import LeNetKit

/// Progress on stderr: a line redrawn on a terminal at most ten times a
/// second, a plain line every ten seconds otherwise (logs, CI).
final class ProgressDisplay {
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let start = DispatchTime.now().uptimeNanoseconds
    private var lastDraw = 0.0

    /// Whether to draw now (`done`: always, to clear the line).
    private func due(_ done: Bool) -> Bool {
        let now = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        guard done || now - lastDraw >= (isTerminal ? 0.1 : 10) else { return false }
        lastDraw = now
        return true
    }

    /// An epoch's steps: a bar, the running loss, the speed and the time left.
    func update(_ p: EpochResult) {
        guard due(p.step == p.steps) else { return }
        let fraction = Double(p.step) / Double(max(p.steps, 1))
        let stats = String(format: "loss %.4f  %.0f img/s  ETA %@", p.loss, p.imagesPerSecond, p.remaining)
        let bar = String(repeating: "█", count: Int(fraction * 30)) + String(repeating: "·", count: 30 - Int(fraction * 30))
        draw("epoch \(p.epoch) [\(bar)] \(p.step)/\(p.steps)  \(stats)",
             plain: String(format: "epoch %d: %d/%d steps (%.0f%%)  ", p.epoch, p.step, p.steps, fraction * 100) + stats,
             done: p.step == p.steps)
    }

    /// An image folder's decoding: "decoding DIR/train: 1,024/10,000 images".
    func update(what: String, done: Int, total: Int) {
        guard due(done == total) else { return }
        let line = "decoding \(what): \(grouped(done))/\(grouped(total)) images"
        draw(line, plain: line, done: done == total)
    }

    private func draw(_ line: String, plain: String, done: Bool) {
        let text = isTerminal ? "\r\u{1B}[2K" + (done ? "" : line) : done ? "" : plain + "\n"
        FileHandle.standardError.write(Data(text.utf8))
    }
}

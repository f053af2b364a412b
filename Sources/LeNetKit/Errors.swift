/// An error a person can act on: what went wrong, and where (a file, a flag,
/// a tensor), in one line.
///
/// LeNetKit never traps on input that comes from a file or the command line;
/// it throws a `LeNetError` instead, and `lenet` prints its `description` on
/// stderr and exits non-zero.
public struct LeNetError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file, directory, flag or tensor the problem is in, if any.
    public var subject: String?
    /// What was expected and what was found.
    public var message: String

    /// - Parameters:
    ///   - message: what was expected and what was found.
    ///   - subject: the file, directory, flag or tensor it concerns.
    public init(_ message: String, subject: String? = nil) {
        self.subject = subject
        self.message = message
    }

    /// `subject: message`, or the message alone.
    public var description: String {
        if let subject { return "\(subject): \(message)" }
        return message
    }
}

/// Checked conversions of numbers read from files (optimizer states,
/// checkpoint metadata) into counts: each returns nil instead of trapping
/// on a value that is not finite, not whole, negative or too large, so the
/// reader can throw a `LeNetError` that names the file and the value.
enum WholeNumber {
    /// The largest step count or epoch a state may hold: far beyond any
    /// run, and small enough that counting on from it cannot overflow.
    static let maximumCount = 1_000_000_000
    /// The largest number of images seen a checkpoint may record.
    static let maximumImages = 1 << 50

    /// `value` as an Int when it is a whole number in 0...maximum.
    static func count(_ value: Float, maximum: Int = maximumCount) -> Int? {
        guard value.isFinite, value >= 0, value <= Float(maximum), let n = Int(exactly: value), n <= maximum else { return nil }
        return n
    }

    /// `text` (decimal digits) as an Int in 0...maximum.
    static func count(_ text: String, maximum: Int = maximumCount) -> Int? {
        guard let n = Int(text), n >= 0, n <= maximum else { return nil }
        return n
    }
}

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

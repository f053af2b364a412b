import Foundation

/// Whole-file reads and crash-safe writes, for every file LeNetKit writes
/// (checkpoints and their state, ONNX models, reports): a reader never sees
/// a half-written file, and a crash leaves the previous one.
enum FileIO {
    /// The reason for the current `errno`, e.g. "No such file or directory".
    static func reason() -> String {
        String(cString: strerror(errno))
    }

    /// All bytes of the regular file at `path`.
    static func readAll(path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LeNetError("cannot open: \(reason())", subject: path) }
        defer { close(fd) }

        var info = stat()
        guard fstat(fd, &info) == 0 else { throw LeNetError("cannot stat: \(reason())", subject: path) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw LeNetError("is not a regular file", subject: path)
        }
        let size = Int(info.st_size)
        return try [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            guard let base = buffer.baseAddress else { return }
            while initialized < size {
                let n = read(fd, base + initialized, size - initialized)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw LeNetError("cannot read: \(reason())", subject: path)
                }
                if n == 0 { break }  // The file shrank while we read it; parsing will say what is missing.
                initialized += n
            }
        }
    }

    /// Writes `bytes` to a temporary file next to `path`, fsyncs it and
    /// renames it over `path`; removes the temporary file on any failure.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        func failure(_ message: String) -> LeNetError { LeNetError(message, subject: path) }

        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !base.isEmpty else { throw failure("cannot write: the path names a directory, not a file") }

        // A hidden name in the same directory, so that rename() is atomic;
        // created with O_EXCL so that two writers never share one.
        var temporary = ""
        var fd: Int32 = -1
        for _ in 0..<10 {
            temporary = directory + "/." + base + ".tmp-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
            fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else {
            throw failure("cannot create a temporary file in directory '\(directory)': \(reason())")
        }

        var isOpen = true
        var renamed = false
        defer {
            if isOpen { close(fd) }
            if !renamed { unlink(temporary) }
        }

        try bytes.withUnsafeBytes { buffer in
            guard let start = buffer.baseAddress else { return }
            var written = 0
            while written < buffer.count {
                let n = write(fd, start + written, buffer.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("cannot write: \(reason())")
                }
                guard n > 0 else { throw failure("cannot write: the file system accepted no bytes") }
                written += n
            }
        }
        guard fsync(fd) == 0 else { throw failure("cannot flush to disk: \(reason())") }
        isOpen = false
        guard close(fd) == 0 else { throw failure("cannot close: \(reason())") }
        guard rename(temporary, path) == 0 else {
            throw failure("cannot replace with the new file: \(reason())")
        }
        renamed = true

        // Make the rename itself durable. Best effort: the new file is
        // complete and in place whether or not this succeeds.
        let directoryFD = open(directory, O_RDONLY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
    }
}

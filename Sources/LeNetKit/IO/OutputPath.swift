import Foundation

/// Checks of the files a run will write, made before the run starts, so
/// that a path that cannot be written fails at once, not after an epoch.
enum OutputPath {
    /// Fails when `path` cannot be created as a file: its directory is
    /// missing or not writable, or `path` is a directory.
    static func checkFile(_ path: String, option: LeNetError.Option) throws {
        try checkWritable(path, option: option)
        if DataFiles.isDirectory(path) {
            throw LeNetError("is a directory; expected a file name", option: option, value: path)
        }
    }

    /// Fails when `path` is a file, or cannot be made a directory that holds an index.html.
    static func checkDirectory(_ path: String, option: LeNetError.Option) throws {
        if DataFiles.isFile(path) {
            throw LeNetError("is a file; expected a directory for index.html", option: option, value: path)
        }
        try checkWritable(path, option: option)
    }

    /// Fails when the directory `path` would be created in is missing or not writable.
    static func checkWritable(_ path: String, option: LeNetError.Option) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard DataFiles.isDirectory(directory) else {
            throw LeNetError("directory \(directory) does not exist", option: option, value: path)
        }
        // access(2) says yes to root everywhere, even where no file can be
        // created (a read-only mount, /proc), so create one.
        let probe = (directory as NSString).appendingPathComponent(".lenet-write-check-\(getpid())")
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LeNetError("directory \(directory) is not writable", option: option, value: path) }
        close(fd)
        unlink(probe)
    }

    /// Appends `line` and a newline to the file at `path`, made when missing.
    static func appendLine(_ line: String, to path: String) throws {
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw LeNetError("cannot create the file", subject: path)
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw LeNetError("cannot open for writing", subject: path) }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data((line + "\n").utf8))
        } catch {
            throw LeNetError("cannot write: \(error.localizedDescription)", subject: path)
        }
    }
}

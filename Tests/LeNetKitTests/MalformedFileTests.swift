import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// Every file of `Fixtures/malformed/` (written by
/// Scripts/make_malformed_fixtures.py, listed in its manifest.json) given to
/// the reader it is meant for, in LeNetKit and through `lenet`: each gives an
/// error naming the file and saying what is wrong, and `lenet` exits 1 with
/// that one line. Inputs that crashed a fuzzer are kept here too.
struct MalformedFileTests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    struct Entry: Decodable {
        /// weights, cifar, mnist, idx, checkpoint or state (see the script).
        var kind: String
        /// The name the file takes in a dataset directory (cifar, mnist).
        var `as`: String?
        /// Fragments the error message must contain.
        var error: [String]
    }

    var corpus: URL {
        get throws {
            guard let url = Bundle.module.url(forResource: "malformed", withExtension: nil, subdirectory: "Fixtures") else {
                throw LeNetError("Fixtures/malformed is not in the test bundle")
            }
            return url
        }
    }

    func manifest() throws -> [String: Entry] {
        let data = try Data(contentsOf: try corpus.appendingPathComponent("manifest.json"))
        return try JSONDecoder().decode([String: Entry].self, from: data)
    }

    @Test func testEveryFileIsInTheManifest() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: try corpus.path).filter { $0 != "manifest.json" }
        let entries = try manifest()
        #expect(Set(files) == Set(entries.keys), "files and manifest.json disagree")
        #expect(entries.count >= 40)
        for kind in ["weights", "cifar", "mnist", "idx", "checkpoint", "state"] {
            #expect(entries.values.contains { $0.kind == kind }, "no \(kind) files")
        }
    }

    // MARK: Valid datasets for a malformed file to be put into

    /// A CIFAR-10 directory with 2 records in each batch file.
    func makeCIFAR(_ dir: URL) throws {
        let record = { (label: UInt8) in [label] + (0..<3072).map { UInt8(truncatingIfNeeded: $0 &* 7) } }
        for name in CIFAR10.fileNames(split: .train) + CIFAR10.fileNames(split: .test) {
            try Data(record(3) + record(7)).write(to: dir.appendingPathComponent(name))
        }
    }

    /// An MNIST directory with 2 images of 28x28 in each split.
    func makeMNIST(_ dir: URL) throws {
        func idx(_ magic: UInt8, _ dims: [UInt32], _ payload: [UInt8]) -> Data {
            Data([0, 0, 8, magic] + dims.flatMap { withUnsafeBytes(of: $0.bigEndian, Array.init) } + payload)
        }
        for split in [Split.train, .test] {
            let names = MNIST.fileNames(split: split)
            try idx(3, [2, 28, 28], [UInt8](repeating: 9, count: 2 * 784)).write(to: dir.appendingPathComponent(names.images))
            try idx(1, [2], [1, 8]).write(to: dir.appendingPathComponent(names.labels))
        }
    }

    /// The options `lenet train --optimizer sgd --momentum 0` trains with.
    var sgdOptions: TrainingOptions {
        var options = TrainingOptions()
        options.optimizer = .sgd
        options.momentum = 0
        return options
    }

    /// A checkpoint of one epoch on `makeCIFAR`'s images, trained with
    /// `sgdOptions`, with `state` (a fixture) in place of its own FILE.state.
    /// - Returns: the checkpoint's path, the state's path, and the data directory.
    func checkpoint(withState state: URL) throws -> (weights: String, state: String, data: URL) {
        let dir = try temporaryDirectory()
        try makeCIFAR(dir)
        let trainer = try Trainer(network: Models.cifarLeNet(),
                                  dataset: try CIFAR10.load(directory: dir.path, split: .train), options: sgdOptions)
        _ = try trainer.trainEpoch()
        let weights = dir.appendingPathComponent("ckpt.safetensors").path
        try trainer.saveCheckpoint(to: weights)
        let statePath = Checkpoint.statePath(for: weights)
        try FileManager.default.removeItem(atPath: statePath)
        try FileManager.default.copyItem(atPath: state.path, toPath: statePath)
        return (weights, statePath, dir)
    }

    /// A trainer like `lenet train --optimizer sgd --momentum 0` on `makeCIFAR`'s images.
    func sgdTrainer() throws -> Trainer {
        let dir = try temporaryDirectory()
        try makeCIFAR(dir)
        return try Trainer(network: Models.cifarLeNet(),
                           dataset: try CIFAR10.load(directory: dir.path, split: .train), options: sgdOptions)
    }

    /// A dataset directory holding `file` as `name` in place of the valid
    /// file of that name (plain or gzip).
    func directory(kind: String, with file: URL, as name: String) throws -> URL {
        let dir = try temporaryDirectory()
        if kind == "cifar" { try makeCIFAR(dir) } else { try makeMNIST(dir) }
        let plain = dir.appendingPathComponent(name.hasSuffix(".gz") ? String(name.dropLast(3)) : name)
        try? FileManager.default.removeItem(at: plain)
        try FileManager.default.copyItem(at: file, to: dir.appendingPathComponent(name))
        return dir
    }

    // MARK: The readers

    @Test func testEveryFileGivesAClearErrorInLeNetKit() throws {
        for (name, entry) in try manifest().sorted(by: { $0.key < $1.key }) {
            let file = try corpus.appendingPathComponent(name)
            let bytes = [UInt8](try Data(contentsOf: file))
            switch entry.kind {
            case "weights":
                assertError(file.path, entry.error) { try Checkpoint.loadNetwork(path: file.path) }
            case "idx":
                assertError(file.path, entry.error) { try IDX.read(path: file.path) }
                assertError(name, entry.error) { try IDX.parse(bytes, subject: name) }
            case "cifar":
                assertError(name, entry.error) { try CIFAR10.parse(bytes, source: name) }
                let target = try #require(entry.as, "\(name)")
                let dir = try directory(kind: "cifar", with: file, as: target)
                let split: Split = target.hasPrefix("test") ? .test : .train
                assertError(dir.appendingPathComponent(target).path, entry.error) {
                    try CIFAR10.load(directory: dir.path, split: split)
                }
            case "mnist":
                let target = try #require(entry.as, "\(name)")
                let dir = try directory(kind: "mnist", with: file, as: target)
                let split: Split = target.hasPrefix("t10k") ? .test : .train
                assertError(dir.appendingPathComponent(target).path, entry.error) {
                    try MNIST.load(directory: dir.path, split: split)
                }
            case "checkpoint":
                let trainer = try sgdTrainer()
                assertError(file.path, entry.error) { try trainer.resume(from: file.path) }
            case "state":
                let (weights, state, _) = try checkpoint(withState: file)
                let trainer = try sgdTrainer()
                assertError(state, entry.error) { try trainer.resume(from: weights) }
            default:
                Issue.record("\(name): unknown kind \(entry.kind)")
            }
        }
    }

    /// `assertError` with the fragments as an array, naming the fixture on failure.
    func assertError<T>(_ subject: String, _ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation,
                        _ body: () throws -> T) {
        do {
            _ = try body()
            Issue.record("\(subject): expected an error mentioning \(fragments)", sourceLocation: sourceLocation)
        } catch let error as LeNetError {
            #expect(error.subject == subject, "\(error)", sourceLocation: sourceLocation)
            for part in fragments where !error.message.contains(part) {
                Issue.record("\(subject): error \"\(error.message)\" does not mention \"\(part)\"", sourceLocation: sourceLocation)
            }
        } catch {
            Issue.record("\(subject): expected a LeNetError, got \(error)", sourceLocation: sourceLocation)
        }
    }

    // MARK: Through the command line

    @Test func testEveryFileMakesLenetExitWithOneLine() throws {
        let valid = try temporaryDirectory()
        try makeCIFAR(valid)
        for (name, entry) in try manifest().sorted(by: { $0.key < $1.key }) where entry.kind != "idx" {
            let file = try corpus.appendingPathComponent(name)
            let arguments: [String], subject: String
            switch entry.kind {
            case "weights":
                arguments = ["eval", "--weights", file.path, "--data", valid.path]
                subject = file.path
            case "checkpoint", "state":
                let resume: String
                if entry.kind == "state" {
                    let made = try checkpoint(withState: file)
                    (resume, subject) = (made.weights, made.state)
                } else {
                    (resume, subject) = (file.path, file.path)
                }
                arguments = ["train", "--data", valid.path, "--resume", resume, "--epochs", "2", "--threads", "1",
                             "--optimizer", "sgd", "--momentum", "0"]
            default:
                let target = try #require(entry.as, "\(name)")
                let dir = try directory(kind: entry.kind, with: file, as: target)
                arguments = ["train", "--data", dir.path, "--epochs", "1", "--threads", "1"]
                    + (entry.kind == "mnist" ? ["--dataset", "mnist"] : [])
                subject = dir.appendingPathComponent(target).path
            }
            let run = try runLenet(arguments)
            #expect(run.status == 1, "\(name): lenet \(arguments.joined(separator: " ")): \(run.stderr)")
            #expect(run.stderr.split(separator: "\n").count == 1, "\(name): \(run.stderr)")
            #expect(run.stderr.hasPrefix("lenet: error: \(subject): "), "\(name): \(run.stderr)")
            for part in entry.error where !run.stderr.contains(part) {
                Issue.record("\(name): '\(run.stderr)' does not mention '\(part)'")
            }
        }
    }

    // MARK: Valid files a fuzzer found

    /// FuzzSafetensors stopped on this file, whose empty tensors share an
    /// offset: their order is not kept through writing and reading (ties are
    /// sorted by name), which broke the fuzzer's own check, not the reader.
    @Test func testEmptyTensorsAtOneOffsetParseAndRoundTrip() throws {
        guard let url = Bundle.module.url(forResource: "safetensors-empty-tensors-at-one-offset",
                                          withExtension: "safetensors", subdirectory: "Fixtures/fuzz") else {
            throw LeNetError("Fixtures/fuzz is not in the test bundle")
        }
        let file = try SafetensorsFile.read(path: url.path)
        #expect(file.tensors.map(\.name) == ["a", "b", "c", "#"])
        #expect(file.tensors.map(\.shape) == [[2], [3], [0, 2], [0, 2]])
        #expect(file["a"]?.values.count == 2)
        let again = try SafetensorsFile.parse(try file.encoded(), source: "again")
        #expect(again.tensors.map(\.name) == ["a", "b", "#", "c"])
        #expect(again["a"]?.values.map(\.bitPattern) == file["a"]?.values.map(\.bitPattern))
        #expect(again["b"]?.values.map(\.bitPattern) == file["b"]?.values.map(\.bitPattern))
    }
}

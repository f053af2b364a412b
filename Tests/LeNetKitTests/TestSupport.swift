import Foundation
import XCTest
@testable import LeNetKit

/// The integer hash that Scripts/make_reference.py uses to generate the
/// fixtures' weights and inputs, so neither has to be stored.
enum FixedValues {
    static func mix(_ i: Int, _ salt: Int) -> UInt32 {
        var x = UInt32(truncatingIfNeeded: i) &* 0x9E37_79B1 &+ UInt32(truncatingIfNeeded: salt) &* 0x85EB_CA77
        x ^= x >> 16
        x = x &* 0x85EB_CA6B
        x ^= x >> 13
        x = x &* 0xC2B2_AE35
        x ^= x >> 16
        return x
    }

    /// bound·(2u − 1), u = mix(i, salt)/2³², in Double, rounded to Float.
    static func values(_ count: Int, salt: Int, bound: Double) -> [Float] {
        (0..<count).map { i in
            let u = Double(mix(i, salt)) / 4_294_967_296.0
            return Float(bound * (2.0 * u - 1.0))
        }
    }

    static func labels(_ count: Int, salt: Int, classes: Int) -> [Int32] {
        (0..<count).map { Int32(mix($0, salt) % UInt32(classes)) }
    }

    /// Parameter k gets salt k + 1 and bound 1/√fan_in (a bias: its weight's fan-in).
    static func fill(_ store: ParameterStore) throws {
        var fanIn = 1
        for (k, e) in store.entries.enumerated() {
            if e.shape.count > 1 { fanIn = e.shape.dropFirst().reduce(1, *) }
            try store.setValues(values(e.count, salt: k + 1, bound: 1.0 / Double(fanIn).squareRoot()), of: e.name)
        }
    }
}

/// Compares two tensors elementwise: |a − e| ≤ atol + rtol·|e|. On failure,
/// says the tensor's name, the max abs difference, where it is, and the first values.
@discardableResult
func assertClose(_ actual: [Float], _ expected: [Float], _ name: String,
                 atol: Float = 1e-5, rtol: Float = 1e-4,
                 file: StaticString = #filePath, line: UInt = #line) -> Float {
    guard actual.count == expected.count else {
        XCTFail("\(name): \(actual.count) values, expected \(expected.count)", file: file, line: line)
        return .infinity
    }
    var maxDiff: Float = 0, worst = 0, bad = 0
    for i in actual.indices {
        let d = abs(actual[i] - expected[i])
        if !(d <= atol + rtol * abs(expected[i])) { bad += 1 }
        if d > maxDiff || d.isNaN { maxDiff = d; worst = i }
    }
    if bad > 0 {
        let show = min(5, actual.count)
        XCTFail("""
            \(name): \(bad) of \(actual.count) values differ; max abs difference \(maxDiff) at [\(worst)] \
            (\(actual[worst]) vs \(expected[worst])); first values \(Array(actual.prefix(show))) vs \(Array(expected.prefix(show)))
            """, file: file, line: line)
    }
    return maxDiff
}

/// Random values in [low, high) from a seeded generator.
func randomValues(_ count: Int, seed: UInt64, _ low: Float = -1, _ high: Float = 1) -> [Float] {
    var rng = SeededGenerator(seed: seed)
    return (0..<count).map { _ in rng.uniform(low, high) }
}

/// Loads a fixture from the test bundle.
func loadFixture(_ name: String) throws -> SafetensorsFile {
    guard let url = Bundle.module.url(forResource: name, withExtension: "safetensors", subdirectory: "Fixtures") else {
        throw LeNetError("fixture \(name).safetensors is not in the test bundle")
    }
    return try SafetensorsFile.read(path: url.path)
}

func tensor(_ file: SafetensorsFile, _ name: String) throws -> [Float] {
    guard let t = file[name] else { throw LeNetError("the fixture has no tensor '\(name)'") }
    return t.values
}

/// A temporary directory, removed when the test ends.
func temporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("lenetkit-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Asserts that `body` throws a `LeNetError` whose description mentions every one of `parts`.
func assertError<T>(
    _ parts: String..., file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> T
) {
    do {
        _ = try body()
        XCTFail("expected an error mentioning \(parts)", file: file, line: line)
    } catch let error as LeNetError {
        for part in parts where !error.description.contains(part) {
            XCTFail("error \"\(error)\" does not mention \"\(part)\"", file: file, line: line)
        }
    } catch {
        XCTFail("expected a LeNetError, got \(error)", file: file, line: line)
    }
}

/// What `lenet` printed and returned.
struct LenetRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// The `lenet` executable from the same build as the tests (`swift test` builds it too).
func lenetExecutable() throws -> URL {
    final class Marker {}
    let bundle = Bundle(for: Marker.self).bundleURL
    guard let executable = [bundle, bundle.deletingLastPathComponent()].map({ $0.appendingPathComponent("lenet") })
        .first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw LeNetError("lenet is not built beside \(bundle.path)")
    }
    return executable
}

/// Runs `lenet` with `arguments` (in `directory`, if given) and waits for it.
func runLenet(_ arguments: [String], in directory: URL? = nil) throws -> LenetRun {
    let process = Process()
    process.executableURL = try lenetExecutable()
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return LenetRun(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                    stderr: String(decoding: errData, as: UTF8.self))
}

import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

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
                 sourceLocation: SourceLocation = #_sourceLocation) -> Float {
    guard actual.count == expected.count else {
        Issue.record("\(name): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
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
        Issue.record("""
            \(name): \(bad) of \(actual.count) values differ; max abs difference \(maxDiff) at [\(worst)] \
            (\(actual[worst]) vs \(expected[worst])); first values \(Array(actual.prefix(show))) vs \(Array(expected.prefix(show)))
            """, sourceLocation: sourceLocation)
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

/// The temporary directories of one test, removed when it ends. A suite
/// holds one as a stored property: Swift Testing makes a new instance of the
/// suite for every test and drops it when the test returns, so each test,
/// however many run at once, gets its own directories and their cleanup.
final class TemporaryDirectories {
    private var urls: [URL] = []

    func make() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("lenetkit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        urls.append(url)
        return url
    }

    deinit {
        for url in urls { try? FileManager.default.removeItem(at: url) }
    }
}

/// A suite whose tests write files: `temporaryDirectory()` gives each test
/// a fresh directory (a new one on every call).
protocol UsesTemporaryDirectories {
    var temporaries: TemporaryDirectories { get }
}

extension UsesTemporaryDirectories {
    /// A new, empty directory, removed when the test ends.
    func temporaryDirectory() throws -> URL {
        try temporaries.make()
    }
}

/// Asserts that `body` throws a `LeNetError` whose description mentions every one of `parts`.
func assertError<T>(
    _ parts: String..., sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> T
) {
    do {
        _ = try body()
        Issue.record("expected an error mentioning \(parts)", sourceLocation: sourceLocation)
    } catch let error as LeNetError {
        for part in parts where !error.description.contains(part) {
            Issue.record("error \"\(error)\" does not mention \"\(part)\"", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected a LeNetError, got \(error)", sourceLocation: sourceLocation)
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

/// Tolerances for comparing two float32 computations of the same quantity
/// that round differently (another kernel, another split of a sum, another
/// batch position, another library), each from an error bound.
///
/// A float32 sum of K terms has |fl(s) − s| ≤ γ_K·Σ|terms|, γ_K = K·u/(1 − K·u)
/// with u = 2⁻²⁴ (Higham, *Accuracy and Stability of Numerical Algorithms*,
/// §3.1). Two such sums, each rounded its own way, differ by at most twice
/// that: about K·ε·Σ|terms| with ε = `Float.ulpOfOne` = 2u. Through a chain of
/// layers the relative errors add, so K is the sum of the chain's reduction
/// lengths. The magnitude stands for Σ|terms|; the tests take the largest
/// |value| of the reference tensor, which holds for LeNet's layers, whose
/// activations and gradients keep their scale from layer to layer.
enum ErrorBound {
    static let epsilon = Float.ulpOfOne

    /// K·ε·magnitude: two roundings of a chain of sums of total length K.
    static func reduction(_ K: Int, magnitude: Float) -> Float {
        Float(K) * epsilon * magnitude
    }

    /// `reduction(K, magnitude: max |expected|)`.
    static func reduction(_ K: Int, of expected: [Float]) -> Float {
        reduction(K, magnitude: expected.reduce(0) { max($0, abs($1)) })
    }

    /// Per-entry bounds for two roundings of the same sums of K terms, from
    /// each entry's Σ|terms| (the same computation on absolute values, in
    /// float32: its own rounding, a relative K·u, is far inside the factor 2
    /// that ε = 2u leaves).
    static func sums(_ K: Int, absolute: [Float]) -> [Float] {
        absolute.map { Float(K) * epsilon * $0 }
    }

    /// Softmax probabilities move by at most half the largest logit change:
    /// |∂pᵢ/∂zⱼ| summed over j is 2·pᵢ(1 − pᵢ) ≤ 1/2.
    static func probability(fromLogitBound bound: Float) -> Double {
        Double(bound) / 2
    }
}

/// Compares two tensors elementwise against one absolute bound, and says
/// which bound it is when they differ.
@discardableResult
func assertWithin(_ actual: [Float], _ expected: [Float], _ name: String, bound: Float, _ why: String,
                  sourceLocation: SourceLocation = #_sourceLocation) -> Float {
    assertClose(actual, expected, name + " (bound \(bound): \(why))", atol: bound, rtol: 0, sourceLocation: sourceLocation)
}

/// `assertWithin` with a bound for each entry.
@discardableResult
func assertWithin(_ actual: [Float], _ expected: [Float], _ name: String, bounds: [Float], _ why: String,
                  sourceLocation: SourceLocation = #_sourceLocation) -> Float {
    guard actual.count == expected.count, bounds.count == expected.count else {
        Issue.record("\(name): \(actual.count) values and \(bounds.count) bounds, expected \(expected.count)", sourceLocation: sourceLocation)
        return .infinity
    }
    var maxDiff: Float = 0, bad = 0, worst = 0
    for i in actual.indices {
        let d = abs(actual[i] - expected[i])
        if !(d <= bounds[i]) {
            if bad == 0 || d > abs(actual[worst] - expected[worst]) { worst = i }
            bad += 1
        }
        if d > maxDiff || d.isNaN { maxDiff = d }
    }
    if bad > 0 {
        Issue.record("""
            \(name): \(bad) of \(actual.count) values exceed their bound (\(why)); worst at [\(worst)]: \
            \(actual[worst]) vs \(expected[worst]), bound \(bounds[worst])
            """, sourceLocation: sourceLocation)
    }
    return maxDiff
}

/// How far one Adam step may move two copies of the same weights apart when
/// their gradients so far differed by at most a known bound.
///
/// Adam steps by lr·r with r = m̂/√v̂, |r| ≤ 1.01 in its first steps (β1 0.9,
/// β2 0.999: at step 1 r = sign(g); Cauchy–Schwarz bounds it after), so two
/// steps differ by at most 2.02·lr. Where the gradients are well above
/// their difference, r moves by at most Σₛ 3·δₛ/|gₛ| (|∂r/∂gₛ| ≤ 2/|gₛ| in the
/// first steps), which makes a weight's bound tight where the gradient is
/// clear and lr-sized where it is about 0. Each weight also rounds once and
/// the step a few times: ε·|w| + 16·ε·lr, for each of the two.
struct AdamStepBound {
    let learningRate: Float
    private var sensitivity: [Float]  // Σₛ 3·δₛ/|gₛ|, per weight

    init(learningRate: Float, count: Int) {
        self.learningRate = learningRate
        sensitivity = [Float](repeating: 0, count: count)
    }

    /// Adds a step's gradients (one run's) and their difference bound.
    mutating func add(gradients g: [Float], bound: Float) {
        for i in sensitivity.indices { sensitivity[i] += g[i] == 0 ? .infinity : 3 * bound / abs(g[i]) }
    }

    /// The bound for each weight after this step, both runs starting from `weights`.
    func bounds(weights: [Float]) -> [Float] {
        let e = ErrorBound.epsilon, lr = learningRate
        return weights.indices.map { i in
            lr * min(2.02, sensitivity[i]) + 2 * (e * abs(weights[i]) + 16 * e * lr)
        }
    }
}

/// Disables a test that measures the memory of a `lenet` process, or limits
/// its address space, under Scripts/sanitizers: a sanitized process keeps
/// shadow memory (ASan reserves terabytes of address space; TSan doubles
/// what is resident), which is neither what LeNetKit allocates nor what a
/// user's build holds.
extension Trait where Self == ConditionTrait {
    static var disabledUnderSanitizers: Self {
        .disabled(if: runsUnderSanitizers, "a sanitized process's memory is not the estimate's")
    }
}

var runsUnderSanitizers: Bool {
    let environment = ProcessInfo.processInfo.environment
    return environment["ASAN_OPTIONS"] != nil || environment["TSAN_OPTIONS"] != nil
}

/// The gradient-check harness GradientCheckTests and LeNet5Tests share:
/// central finite differences at random points against the hand-written
/// backward passes. A suite that uses it conforms.
protocol GradientCheckHarness {}

extension GradientCheckHarness {

    func network(_ shape: FeatureShape, _ layers: [any Layer], seed: UInt64 = 3) throws -> Network {
        let net = try Network(inputShape: shape, layers: layers)
        var rng = SeededGenerator(seed: seed)
        net.parameters.initialize(using: &rng)
        return net
    }

    /// Σ r·y for fixed random r (`weights`), or the mean cross-entropy in
    /// Double (`labels`): the Float loss would round away the differences.
    func value(_ net: Network, _ x: [Float], _ n: Int, weights: [Float]? = nil, labels: [Int32]? = nil) throws -> Double {
        _ = try net.input(batch: n).update(fromContentsOf: x)
        let y = net.forward(batch: n)
        if let labels {
            let K = net.outputShape.count
            var total = 0.0
            for s in 0..<n {
                let z = (0..<K).map { Double(y[s * K + $0]) }
                let zmax = z.max() ?? 0
                total += log(z.reduce(0) { $0 + exp($1 - zmax) }) + zmax - z[Int(labels[s])]
            }
            return total / Double(n)
        }
        let r = weights ?? []
        var sum = 0.0
        for i in r.indices { sum += Double(r[i]) * Double(y[i]) }
        return sum
    }

    /// Zeroes the gradients and runs one forward and backward pass (input
    /// gradient included) for the objective of `value`.
    func backwardOnce(_ net: Network, _ x: [Float], batch n: Int, labels: [Int32]? = nil, seed: UInt64 = 0) throws {
        net.parameters.zeroGradients()
        _ = try net.input(batch: n).update(fromContentsOf: x)
        let logits = net.forward(batch: n)
        if let labels {
            let loss = SoftmaxCrossEntropy(classes: net.outputShape.count)
            _ = try loss.forward(logits, labels, batch: n)
            loss.backward(try net.outputGradient(batch: n))
        } else {
            _ = try net.outputGradient(batch: n).update(fromContentsOf: randomValues(n * net.outputShape.count, seed: seed))
        }
        net.backward(batch: n, inputGradient: true)
    }

    /// Central differences at `samples` random parameters (each tensor its
    /// share) and `samples` random inputs against the analytic gradients.
    func check(_ net: Network, input x: [Float], batch n: Int, labels: [Int32]? = nil,
               eps: Float = 1e-2, tolerance: Double = 1e-2, samples: Int = 40, seed: UInt64 = 7,
               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let weights = labels == nil ? randomValues(n * net.outputShape.count, seed: seed &+ 1) : nil
        try backwardOnce(net, x, batch: n, labels: labels, seed: seed &+ 1)
        let analyticParams = Array(net.parameters.gradients)
        let analyticInput = Array(UnsafeBufferPointer(start: net.inputGradient, count: x.count))

        var rng = SeededGenerator(seed: seed)
        var worst = 0.0
        func compare(_ analytic: Float, _ numeric: Double, _ what: String) {
            let err = abs(Double(analytic) - numeric) / max(1e-3, abs(numeric) + abs(Double(analytic)))
            worst = max(worst, err)
            if err > tolerance {
                Issue.record("\(what): analytic \(analytic), numeric \(numeric), relative error \(err)", sourceLocation: sourceLocation)
            }
        }
        let p = net.parameters.values
        for entry in net.parameters.entries {
            for _ in 0..<max(2, samples / max(1, net.parameters.entries.count)) {
                let i = entry.offset + Int(rng.next() % UInt64(entry.count))
                let saved = p[i]
                p[i] = saved + eps
                let plus = try value(net, x, n, weights: weights, labels: labels)
                p[i] = saved - eps
                let minus = try value(net, x, n, weights: weights, labels: labels)
                p[i] = saved
                compare(analyticParams[i], (plus - minus) / Double(2 * eps), "\(entry.name)[\(i - entry.offset)]")
            }
        }
        var xx = x
        for _ in 0..<samples {
            let i = Int(rng.next() % UInt64(x.count))
            xx[i] = x[i] + eps
            let plus = try value(net, xx, n, weights: weights, labels: labels)
            xx[i] = x[i] - eps
            let minus = try value(net, xx, n, weights: weights, labels: labels)
            xx[i] = x[i]
            compare(analyticInput[i], (plus - minus) / Double(2 * eps), "input[\(i)]")
        }
        #expect(worst < tolerance, sourceLocation: sourceLocation)
    }
}

/// Runs an inference step on what the network's last `forward` left in its
/// activations: the step's input, the output its layers' own forwards
/// wrote (the reference), and the step's own output.
func runStep(_ step: any InferenceStep, of net: Network, batch n: Int) -> (input: [Float], expected: [Float], output: [Float]) {
    let i = step.layers.lowerBound, o = step.layers.upperBound
    let input = Array(UnsafeBufferPointer(start: net.activations[i].pointer, count: n * net.activations[i].perSample))
    let expected = Array(UnsafeBufferPointer(start: net.activations[o].pointer, count: n * net.activations[o].perSample))
    var y = [Float](repeating: .nan, count: expected.count)
    step.prepare()
    step.forward(&y, input, batch: n)
    return (input, expected, y)
}

// MARK: Checkpoint state files

/// The `training_state` JSON of a checkpoint's (lenetkit-2) state file.
func trainingStateJSON(ofCheckpoint path: String) throws -> String {
    let state = Checkpoint.statePath(for: path)
    guard let json = try SafetensorsFile.read(path: state).metadata[TrainingState.metadataKey] else {
        throw LeNetError("has no \(TrainingState.metadataKey) metadata", subject: state)
    }
    return json
}

/// The training state a checkpoint's (lenetkit-2) state file holds.
func trainingState(ofCheckpoint path: String) throws -> TrainingState {
    try TrainingState.decode(json: try trainingStateJSON(ofCheckpoint: path), source: Checkpoint.statePath(for: path))
}

/// Replaces the `training_state` JSON of a checkpoint's state file with
/// `change(json)`, keeping its tensors and other metadata.
func rewriteTrainingState(ofCheckpoint path: String, _ change: (String) throws -> String) throws {
    let statePath = Checkpoint.statePath(for: path)
    var file = try SafetensorsFile.read(path: statePath)
    file.metadata[TrainingState.metadataKey] = try change(try trainingStateJSON(ofCheckpoint: path))
    try file.write(path: statePath)
}

// gemm throughput, GFLOP/s: LeNetKit's wrapper over OpenBLAS, raw
// cblas_sgemm, a naive Swift triple loop, and a cache-blocked SIMD Swift gemm;
// on every gemm that training the CIFAR LeNet runs, and on squares.
import Benchmark
import CBLASBench
import Dispatch
import Foundation
@_spi(Benchmarks) import LeNetKit

/// BLIS's cblas_sgemm, loaded at run time beside OpenBLAS (both export the
/// same symbol, so one binary cannot link both): Debian's libblis-dev.
struct BLIS: @unchecked Sendable {
    typealias Sgemm = @convention(c) (Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<Float>?, Int32,
                                      UnsafePointer<Float>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32) -> Void
    typealias SetThreads = @convention(c) (Int64) -> Void
    let sgemm: Sgemm
    let setThreads: SetThreads

    static let shared: BLIS? = {
        guard let handle = dlopen("libblis.so.4", RTLD_NOW | RTLD_LOCAL),
              let f = dlsym(handle, "cblas_sgemm"), let t = dlsym(handle, "bli_thread_set_num_threads") else { return nil }
        return BLIS(sgemm: unsafeBitCast(f, to: Sgemm.self), setThreads: unsafeBitCast(t, to: SetThreads.self))
    }()
}

struct Shape: Sendable {
    var name: String
    var ta: Transpose, tb: Transpose
    var m: Int, n: Int, k: Int
    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }
}

/// The gemms of one training step of the CIFAR LeNet, as LeNetKit's layers
/// call them (conv1's input gradient is never needed). Each thread trains
/// its part of the batch (`part` samples: the batch over the threads) on its
/// own replica; its convolutions run one gemm per sample (the sample's
/// columns stay in cache) and its fully connected layers one gemm per part.
func lenetShapes(part b: Int) -> [Shape] {
    [
        Shape(name: "fc1.fwd", ta: .none, tb: .transposed, m: b, n: 120, k: 800),
        Shape(name: "fc1.wgrad", ta: .transposed, tb: .none, m: 120, n: 800, k: b),
        Shape(name: "fc1.dgrad", ta: .none, tb: .none, m: b, n: 800, k: 120),
        Shape(name: "fc2.fwd", ta: .none, tb: .transposed, m: b, n: 84, k: 120),
        Shape(name: "fc2.wgrad", ta: .transposed, tb: .none, m: 84, n: 120, k: b),
        Shape(name: "fc2.dgrad", ta: .none, tb: .none, m: b, n: 120, k: 84),
        Shape(name: "fc3.fwd", ta: .none, tb: .transposed, m: b, n: 10, k: 84),
        Shape(name: "fc3.wgrad", ta: .transposed, tb: .none, m: 10, n: 84, k: b),
        Shape(name: "fc3.dgrad", ta: .none, tb: .none, m: b, n: 84, k: 10),
    ].map { var s = $0; s.name = "part\(b) " + s.name; return s }
}

/// The convolutions' gemms for `b` samples side by side as gemm columns:
/// one sample (what LeNetKit runs), or a whole batch (the orientation it
/// measured and left: its columns no longer fit in cache). For one sample,
/// the gemms LeNetKit runs come with the alternatives it measured and left:
/// conv2's forward and input gradient run as two column halves ("/2",
/// inside OpenBLAS's small-matrix kernels), and the weight gradients as
/// dWᵀ = cols · dyᵀ ("wgradT") instead of dW = dy · colsᵀ.
func convolutionShapes(samples b: Int) -> [Shape] {
    var shapes = [
        Shape(name: "conv1.fwd", ta: .none, tb: .none, m: 16, n: b * 784, k: 75),
        Shape(name: "conv1.wgrad", ta: .none, tb: .transposed, m: 16, n: 75, k: b * 784),
        Shape(name: "conv2.fwd", ta: .none, tb: .none, m: 32, n: b * 100, k: 400),
        Shape(name: "conv2.wgrad", ta: .none, tb: .transposed, m: 32, n: 400, k: b * 100),
        Shape(name: "conv2.dgrad", ta: .transposed, tb: .none, m: 400, n: b * 100, k: 32),
    ]
    if b == 1 {
        shapes += [
            Shape(name: "conv1.wgradT", ta: .none, tb: .transposed, m: 75, n: 16, k: 784),
            Shape(name: "conv2.fwd/2", ta: .none, tb: .none, m: 32, n: 50, k: 400),
            Shape(name: "conv2.wgradT", ta: .none, tb: .transposed, m: 400, n: 32, k: 100),
            Shape(name: "conv2.dgrad/2", ta: .transposed, tb: .none, m: 400, n: 50, k: 32),
        ]
    }
    return shapes.map { var s = $0; s.name = (b == 1 ? "sample " : "b\(b) ") + s.name; return s }
}

let squares = [64, 128, 256, 512, 1024, 2048].map { Shape(name: "square \($0)", ta: .none, tb: .none, m: $0, n: $0, k: $0) }

typealias Kernel = @Sendable (Shape, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void

let kernels: [(String, Kernel)] = [
    ("lenetkit", { s, a, b, c in gemm(s.ta, s.tb, m: s.m, n: s.n, k: s.k, a, b, c) }),
    ("cblas", { s, a, b, c in
        cblas_sgemm(CblasRowMajor, s.ta == .none ? CblasNoTrans : CblasTrans, s.tb == .none ? CblasNoTrans : CblasTrans,
                    Int32(s.m), Int32(s.n), Int32(s.k), 1, a, Int32(s.ta == .none ? s.k : s.m),
                    b, Int32(s.tb == .none ? s.n : s.k), 0, c, Int32(s.n))
    }),
    ("blis", { s, a, b, c in
        // CBLAS enum values: row-major 101, no-trans 111, trans 112.
        BLIS.shared?.sgemm(101, s.ta == .none ? 111 : 112, s.tb == .none ? 111 : 112, Int32(s.m), Int32(s.n), Int32(s.k), 1,
                           a, Int32(s.ta == .none ? s.k : s.m), b, Int32(s.tb == .none ? s.n : s.k), 0, c, Int32(s.n))
    }),
    ("swift-blocked", { s, a, b, c in gemmSwift(s.ta, s.tb, m: s.m, n: s.n, k: s.k, a, b, c) }),
    ("naive", { s, a, b, c in gemmNaive(s.ta, s.tb, m: s.m, n: s.n, k: s.k, a, b, c) }),
]

let gflops = BenchmarkMetric.custom("GFLOP/s", polarity: .prefersLarger, useScalingFactor: false)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [gflops], maxDuration: .milliseconds(600), maxIterations: 200)
    let shapes = convolutionShapes(samples: 1) + [36, 18, 256, 128].flatMap { lenetShapes(part: $0) }
        + convolutionShapes(samples: 36) + squares
    for shape in shapes {
        for (kernelName, kernel) in kernels {
            // The naive loop at ~1 GFLOP/s would take minutes on the large squares.
            if kernelName == "naive" && shape.flops > 3e8 { continue }
            if kernelName == "blis" && BLIS.shared == nil { continue }
            for threads in [1, 2] {
                if threads == 2 && (kernelName == "naive" || kernelName == "swift-blocked") { continue }
                Benchmark("\(shape.name) \(shape.m)×\(shape.n)×\(shape.k) \(kernelName) t\(threads)") { benchmark in
                    // OpenBLAS's own threads, for one large gemm (training
                    // instead runs one single-threaded gemm per thread).
                    BLASThreads.set(threads)
                    BLIS.shared?.setThreads(Int64(threads))
                    let a = UnsafeMutablePointer<Float>.allocate(capacity: shape.m * shape.k)
                    let b = UnsafeMutablePointer<Float>.allocate(capacity: shape.k * shape.n)
                    let c = UnsafeMutablePointer<Float>.allocate(capacity: shape.m * shape.n)
                    defer { a.deallocate(); b.deallocate(); c.deallocate() }
                    a.initialize(repeating: 0.5, count: shape.m * shape.k)
                    b.initialize(repeating: 0.25, count: shape.k * shape.n)
                    c.initialize(repeating: 0, count: shape.m * shape.n)
                    kernel(shape, a, b, c)  // warm-up
                    // Enough calls for ~5 ms per sample, so timer noise stays small.
                    let reps = max(1, Int(5e6 / max(shape.flops / 20, 1)))
                    for _ in benchmark.scaledIterations {
                        let start = DispatchTime.now().uptimeNanoseconds
                        for _ in 0..<reps { kernel(shape, a, b, c) }
                        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        benchmark.measurement(gflops, Int(shape.flops * Double(reps) / seconds / 1e9))
                    }
                }
            }
        }
    }
}

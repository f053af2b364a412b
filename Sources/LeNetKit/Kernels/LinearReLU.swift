// The inference path's fully connected kernel (CKernels, Linear.c; its
// AVX-512 twin gives the same bits): the
// weights in their own (OUT, IN) layout, nothing packed per call, with the
// following ReLU applied as each output is stored. `linearReLUNaive` (in the tests) is the
// reference; Linear's sgemm forward and the ReLU layer are the portable path.

import CKernels

/// Whether the fused fully connected kernel can run (a CPU with AVX2/FMA).
var linearReLUFits: Bool { CPUFeatures.avx2FMA }

/// y[s·ldy + o] = b[o] + Σ_k x[s·ldx + k]·w[o·IN + k] for s < n, o < OUT; then
/// max(·, 0) when `relu`. `w`, `b` and `y` may start at an output other than
/// the first (a slice of the outputs).
@inline(__always)
func linearReLU(_ y: UnsafeMutablePointer<Float>, ldy: Int, _ x: UnsafePointer<Float>, ldx: Int,
                _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>, batch n: Int, inputs: Int, outputs: Int, relu: Bool) {
    if CPUFeatures.avx512F {
        lenet_linear_avx512(y, ldy, x, ldx, w, b, n, inputs, outputs, relu ? 1 : 0)
    } else {
        lenet_linear_avx2(y, ldy, x, ldx, w, b, n, inputs, outputs, relu ? 1 : 0)
    }
}

// Winograd's F(2×2, 5×5) for a 5×5 convolution followed by a 2×2 max pool
// and a ReLU (CKernels, Winograd.c and WinogradBody.h): each 2×2 block of
// outputs, one pooling window, from a 6×6 input tile with 36
// multiplications per channel pair instead of 100, at the cost of the
// tiles' transforms and more rounding (docs/WINOGRAD.md derives the bound;
// `WinogradTests` holds the kernels to it). The direct kernel
// (Kernels/ConvPoolReLU.swift) is the path without it, and `winogradNaive`
// (in the tests) the reference of the transforms.

import CKernels

/// Where the Winograd kernel beats the direct one, for its vector width.
/// The input transform costs per input channel and the output transform
/// per output channel, while the products they save cost per pair; the
/// direct kernels gain more from 16 lanes than the transforms do. Measured
/// at batch 256 on one thread (docs/PERFORMANCE.md):
/// - 16 lanes (AVX-512): 3 → 16 (the CIFAR LeNet's conv1) and 6 → 16
///   (LeNet-5's C3 without its table) run 2–3 times slower by Winograd;
///   8 → 32 and 16 → 16 (256 pairs) break even; 12 → 32 (384 pairs) runs
///   1.26 times and 16 → 32 (conv2) 1.5 times faster. At least 8 input
///   channels and 384 pairs.
/// - 8 lanes (AVX2): 3 → 16 breaks even; 6 → 16 runs 1.25 times and
///   16 → 32 2.1 times faster. At least 6 input channels.
func winogradWorthIt(channels C: Int, outChannels OC: Int) -> Bool {
    winogradVectorWidth(outChannels: OC) == 16 ? C >= 8 && C * OC >= 384 : C >= 6
}

/// Whether the Winograd kernel takes a convolution of this geometry with
/// `outChannels` outputs followed by a 2×2 pool: 5×5, stride 1, no padding,
/// output channels a multiple of 8, an output of at least 2×2, a CPU with
/// AVX2/FMA, channels enough that it wins (`winogradWorthIt`), and input
/// planes small enough that the kernel's gather offsets (15 planes, in
/// 32-bit lanes) cannot overflow.
func winogradFits(_ g: ConvGeometry, outChannels: Int) -> Bool {
    convPoolReLUFits(g, outChannels: outChannels) && winogradWorthIt(channels: g.channels, outChannels: outChannels)
        && g.height.multipliedReportingOverflow(by: g.width).partialValue < Int(Int32.max) / 16
}

/// The vector width the kernel runs with for `outChannels`: 16 with AVX-512
/// when the channels fill its vectors, else 8.
func winogradVectorWidth(outChannels: Int) -> Int {
    CPUFeatures.avx512F && outChannels % 16 == 0 ? 16 : 8
}

/// Floats of the transformed weights: (36, C, OC).
func winogradWeightFloats(_ g: ConvGeometry, outChannels: Int) -> Int { 36 * g.channels * outChannels }

/// Floats of one worker's scratch for a call over up to all of a sample's
/// pooled rows: the input rows channels-last, the transformed tiles of one
/// pooled row, their products, and the row's column pass.
func winogradScratchFloats(_ g: ConvGeometry, outChannels OC: Int) -> Int {
    let VW = winogradVectorWidth(outChannels: OC), Cp = (g.channels + VW - 1) / VW * VW, PW = g.outW / 2
    return g.height * g.width * Cp + 36 * PW * (Cp + OC) + 6 * g.width * Cp
}

/// U (36, C, OC) from w (OC, C, 5, 5): each kernel's G g Gᵀ, in double.
func winogradWeights(_ U: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, channels C: Int, outChannels OC: Int) {
    lenet_winograd_f2x5_weights(U, w, C, OC)
}

/// Rows `pooledRows` of one sample's y (OC, PH, PW) = relu(maxpool2x2(w ⋆ x + b))
/// by F(2×2, 5×5), x (C, H, W), U from `winogradWeights`, scratch of
/// `winogradScratchFloats`.
@inline(__always)
func winogradPoolReLU(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, transformed U: UnsafePointer<Float>,
                      _ b: UnsafePointer<Float>, _ g: ConvGeometry, outChannels OC: Int, pooledRows: Range<Int>,
                      scratch: UnsafeMutablePointer<Float>) {
    if winogradVectorWidth(outChannels: OC) == 16 {
        lenet_winograd_f2x5_pool_relu_avx512(y, x, U, b, g.channels, g.height, g.width, OC,
                                             pooledRows.lowerBound, pooledRows.upperBound, scratch)
    } else {
        lenet_winograd_f2x5_pool_relu_avx2(y, x, U, b, g.channels, g.height, g.width, OC,
                                           pooledRows.lowerBound, pooledRows.upperBound, scratch)
    }
}

// Winograd's F(2×2, 5×5) for a 5×5 convolution followed by a 2×2 max pool
// and a ReLU (CKernels, Winograd.c and WinogradBody.h): each 2×2 block of
// outputs, one pooling window, from a 6×6 input tile with 36
// multiplications per channel pair instead of 100, at the cost of the
// tiles' transforms and more rounding (docs/WINOGRAD.md derives the bound;
// `WinogradTests` holds the kernels to it). The direct kernel
// (Kernels/ConvPoolReLU.swift) is the path without it, and `winogradNaive`
// (in the tests) the reference of the transforms.

import CKernels

/// The fewest input channels for which the Winograd kernel beats the direct
/// one. The input transform costs per input channel and the output
/// transform per output channel, while the products they save cost per
/// pair: with the CIFAR LeNet's conv1 (3 → 16) the transforms cost more
/// than the products saved, with conv2 (16 → 32) they are a fraction
/// (docs/PERFORMANCE.md).
let winogradMinimumChannels = 8

/// Whether the Winograd kernel takes a convolution of this geometry with
/// `outChannels` outputs followed by a 2×2 pool: 5×5, stride 1, no padding,
/// output channels a multiple of 8, at least `winogradMinimumChannels`
/// input channels, an output of at least 2×2, and a CPU with AVX2/FMA.
func winogradFits(_ g: ConvGeometry, outChannels: Int) -> Bool {
    convPoolReLUFits(g, outChannels: outChannels) && g.channels >= winogradMinimumChannels
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

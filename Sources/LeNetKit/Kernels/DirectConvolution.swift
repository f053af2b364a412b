// Direct 5×5 convolutions for the layers where im2col + sgemm measures
// slower: the AVX2/FMA kernels in CKernels (DirectConvolution.c) run a
// vector along each output row, so a layer with few output channels (C1
// of LeNet-5 has 6) keeps its lanes full, and no im2col columns are made.
// Conv2D picks them per layer (`Conv2D.directKernel`); the im2col + sgemm
// path is the portable one, and `conv5x5Naive` (in the tests) the reference.

import CKernels

/// Whether the direct kernels take a convolution of this geometry: 5×5,
/// stride 1, no padding, output rows of at most 32, and a CPU with AVX2/FMA.
func directConvolutionFits(_ g: ConvGeometry) -> Bool {
    CPUFeatures.avx2FMA && g.kernelH == 5 && g.kernelW == 5 && g.stride == 1 && g.padding == 0 && g.outW <= 32
}

/// One sample: y (OC, OH, OW) = w (OC, C, 5, 5) ⋆ x (C, H, W) + b.
@inline(__always)
func conv5x5(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
             _ b: UnsafePointer<Float>, _ g: ConvGeometry, outChannels: Int) {
    if CPUFeatures.avx512F {
        lenet_conv5x5_avx512(y, x, w, b, g.channels, g.height, g.width, outChannels)
    } else {
        lenet_conv5x5_avx2(y, x, w, b, g.channels, g.height, g.width, outChannels)
    }
}

/// One sample's weight gradient: dw (OC, C, 5, 5) += Σ dy[oc, i, j]·x[c, i + kh, j + kw].
@inline(__always)
func conv5x5WeightGradient(_ dw: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                           _ g: ConvGeometry, outChannels: Int) {
    if CPUFeatures.avx512F {
        lenet_conv5x5_weight_gradient_avx512(dw, dy, x, g.channels, g.height, g.width, outChannels)
    } else {
        lenet_conv5x5_weight_gradient_avx2(dw, dy, x, g.channels, g.height, g.width, outChannels)
    }
}

/// Whether `conv5x5Backward` takes a convolution of this geometry: 5×5,
/// stride 1, no padding, and a CPU with AVX-512F.
func directBackwardFits(_ g: ConvGeometry) -> Bool {
    CPUFeatures.avx512F && g.kernelH == 5 && g.kernelW == 5 && g.stride == 1 && g.padding == 0
}

/// The Floats `conv5x5Backward` needs: the transposed weight gradient it
/// sums into across a batch, and its scratch.
func conv5x5BackwardSizes(_ g: ConvGeometry, outChannels OC: Int) -> (weightGradient: Int, scratch: Int) {
    let OCp = (OC + 15) / 16 * 16, Hr = (g.height + 6) / 7 * 7  // whole blocks of the kernel's 7 rows
    return (g.channels * 25 * OCp, g.positions * OCp + OC * (Hr + 4) * (g.width + 4) + 16)
}

/// One sample's backward pass: dwT (C·25, OCp) += the weight gradient
/// transposed (OCp = OC rounded up to 16), and dx (C, H, W) = the input
/// gradient over the pairs `connected` marks (nil: all), when dx is not nil.
@inline(__always)
func conv5x5Backward(_ dwT: UnsafeMutablePointer<Float>, _ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                     _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ g: ConvGeometry, outChannels: Int,
                     connected: UnsafePointer<UInt8>?, scratch: UnsafeMutablePointer<Float>) {
    lenet_conv5x5_backward_avx512(dwT, dx, dy, x, w, g.channels, g.height, g.width, outChannels, connected, scratch)
}

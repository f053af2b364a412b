// The forward-only kernel for a convolution followed by a 2×2 max pool and a
// ReLU (in either order: they commute), the CIFAR LeNet's conv1 and conv2
// stages. The AVX2/FMA kernel (CKernels, ConvPoolReLU.c) runs a vector across
// output channels over weights packed channels-last, and pools each pair of
// output rows while it is in L1; `convPoolReLUNaive` (in the tests) is the reference, and
// the unfused layers (im2col + sgemm, pool, ReLU) are the portable path.
// Measurements: docs/PERFORMANCE.md.

import CKernels

/// Whether the fused kernel takes a convolution of this geometry with `outChannels`
/// outputs: 5×5, stride 1, no padding, output channels a multiple of 8, an
/// output of at least 2×2, and a CPU with AVX2/FMA. (The kernel size is a
/// constant in the kernel so that its innermost loop unrolls.)
func convPoolReLUFits(_ g: ConvGeometry, outChannels: Int) -> Bool {
    conv5x5ChannelsLastFits(g) && outChannels % 8 == 0 && outChannels > 0 && g.outH >= 2 && g.outW >= 2
}

/// Floats of the row scratch `convPoolReLU` needs: two output rows of the
/// pooled width, (2, 2·PW, OC).
func convPoolReLURowFloats(_ g: ConvGeometry, outChannels: Int) -> Int {
    2 * 2 * (g.outW / 2) * outChannels
}

/// packed (C·KH·KW, OC) = w (OC, C·KH·KW) transposed: each reduction step's
/// output-channel weights contiguous. OC a multiple of 8 (`convPoolReLUFits`).
@inline(__always)
func packChannelsLast(_ packed: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, outChannels OC: Int, patch K: Int) {
    lenet_pack_channels_last_avx2(packed, w, OC, K)
}

/// packed (C·KH·KW, OCp) from w (OC, C·KH·KW), OCp = OC rounded up to a
/// multiple of 8, the extra columns 0: the weights of `conv5x5ChannelsLast`.
func packChannelsLastPadded(_ packed: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, outChannels OC: Int, patch K: Int) {
    let OCp = paddedChannels(OC)
    if OCp == OC { return packChannelsLast(packed, w, outChannels: OC, patch: K) }
    for k in 0..<K {
        let row = packed + k &* OCp
        for oc in 0..<OC { row[oc] = w[oc &* K &+ k] }
        for oc in OC..<OCp { row[oc] = 0 }
    }
}

/// OC rounded up to a multiple of 8, the vector width.
func paddedChannels(_ OC: Int) -> Int { (OC + 7) / 8 * 8 }

/// Whether `conv5x5ChannelsLast` takes a convolution of this geometry: 5×5,
/// stride 1, no padding, and a CPU with AVX2/FMA.
func conv5x5ChannelsLastFits(_ g: ConvGeometry) -> Bool {
    CPUFeatures.avx2FMA && g.stride == 1 && g.padding == 0 && g.kernelH == 5 && g.kernelW == 5
}

/// Rows `outputRows` (all by default) of one sample's y (OC, OH, OW) = w ⋆ x + b,
/// x (C, H, W), `packed` from `packChannelsLastPadded`, `scratch` of OW·OCp
/// floats. The reference is `conv5x5Naive` (Tests/LeNetKitTests/NaiveReferences.swift).
@inline(__always)
func conv5x5ChannelsLast(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, packed: UnsafePointer<Float>,
                         _ b: UnsafePointer<Float>, _ g: ConvGeometry, outChannels: Int, outputRows: Range<Int>? = nil,
                         scratch: UnsafeMutablePointer<Float>) {
    let rows = outputRows ?? 0..<g.outH
    if CPUFeatures.avx512F {
        lenet_conv5x5_channels_last_avx512(y, x, packed, b, g.channels, g.height, g.width, outChannels,
                                           paddedChannels(outChannels), rows.lowerBound, rows.upperBound, scratch)
    } else {
        lenet_conv5x5_channels_last_avx2(y, x, packed, b, g.channels, g.height, g.width, outChannels,
                                         paddedChannels(outChannels), rows.lowerBound, rows.upperBound, scratch)
    }
}

/// Rows `pooledRows` of one sample's y (OC, PH, PW) = relu(maxpool2x2(w ⋆ x + b)),
/// x (C, H, W), `packed` from `packChannelsLast`, `scratch` of `convPoolReLURowFloats`.
@inline(__always)
func convPoolReLU(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, packed: UnsafePointer<Float>,
                  _ b: UnsafePointer<Float>, _ g: ConvGeometry, outChannels: Int, pooledRows: Range<Int>,
                  scratch: UnsafeMutablePointer<Float>) {
    if CPUFeatures.avx512F {
        lenet_conv5x5_pool_relu_avx512(y, x, packed, b, g.channels, g.height, g.width, outChannels,
                                       pooledRows.lowerBound, pooledRows.upperBound, scratch)
    } else {
        lenet_conv5x5_pool_relu_avx2(y, x, packed, b, g.channels, g.height, g.width, outChannels,
                                     pooledRows.lowerBound, pooledRows.upperBound, scratch)
    }
}

/// The geometry of a 2-D convolution or pooling window over one sample.
struct ConvGeometry: Sendable, Equatable {
    /// The input sample's shape (C, H, W).
    var channels: Int, height: Int, width: Int
    /// The window's rows and columns (KH, KW).
    var kernelH: Int, kernelW: Int
    /// The step between windows, and the zeros added on each side.
    var stride: Int, padding: Int

    /// - Parameters:
    ///   - channels: C.
    ///   - height: H.
    ///   - width: W.
    ///   - kernelH: KH.
    ///   - kernelW: KW.
    ///   - stride: the step between windows (> 0).
    ///   - padding: zeros added on each side (≥ 0).
    init(channels: Int, height: Int, width: Int,
         kernelH: Int, kernelW: Int, stride: Int = 1, padding: Int = 0) {
        self.channels = channels
        self.height = height
        self.width = width
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.stride = stride
        self.padding = padding
    }

    /// Output rows: (H + 2·padding − KH) / stride + 1.
    var outH: Int { (height + 2 * padding - kernelH) / stride + 1 }
    /// Output columns: (W + 2·padding − KW) / stride + 1.
    var outW: Int { (width + 2 * padding - kernelW) / stride + 1 }
    /// Output positions per channel: OH·OW.
    var positions: Int { outH * outW }
    /// Rows of the column matrix: C·KH·KW.
    var patch: Int { channels * kernelH * kernelW }
}

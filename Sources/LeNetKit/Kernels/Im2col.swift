// im2col / col2im: the data movement that turns a convolution into a gemm.

/// Unfolds one sample into columns.
///
/// ```
/// cols[(c·KH + kh)·KW + kw, oh·OW + ow] = x[c, oh·s − p + kh, ow·s − p + kw]   (0 outside)
/// ```
/// - Parameters:
///   - cols: (C·KH·KW, OH·OW), rows `ld` apart (default OH·OW; a batch
///     laid side by side as (C·KH·KW, N·OH·OW) uses ld = N·OH·OW).
///   - x: (C, H, W)
func im2col(_ cols: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ g: ConvGeometry, ld: Int? = nil) {
    let oh = g.outH, ow = g.outW, P = ld ?? oh * ow
    if g.stride == 1 && g.padding == 0 {
        im2colUnitStride(cols, x, g, ld: P)
        return
    }
    var row = 0
    for c in 0..<g.channels {
        let plane = x + c * g.height * g.width
        for kh in 0..<g.kernelH {
            for kw in 0..<g.kernelW {
                let dst = cols + row * P
                for i in 0..<oh {
                    let ih = i * g.stride - g.padding + kh
                    let line = dst + i * ow
                    if ih < 0 || ih >= g.height {
                        line.update(repeating: 0, count: ow)
                        continue
                    }
                    let src = plane + ih * g.width
                    for j in 0..<ow {
                        let iw = j * g.stride - g.padding + kw
                        line[j] = (iw >= 0 && iw < g.width) ? src[iw] : 0
                    }
                }
                row += 1
            }
        }
    }
}

/// `im2col` for stride 1 and no padding, LeNet's case: every row of the
/// columns is a window of whole input lines. The lines are short (28 or 10
/// floats), so they are copied with vector loads and stores (`copyShort`);
/// a `memmove` call per line cost more than the copy. For LeNet's line
/// widths the width is a constant in the loop, so each line is a fixed run
/// of moves, which unfolded both convolutions' inputs in about half the
/// time of a variable width (docs/PERFORMANCE.md).
@inline(__always)
func im2colUnitStride(_ cols: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ g: ConvGeometry, ld P: Int) {
    switch g.outW {
    case 28: im2colLines(cols, x, g, ld: P, width: 28)
    case 10: im2colLines(cols, x, g, ld: P, width: 10)
    default: im2colLines(cols, x, g, ld: P, width: g.outW)
    }
}

@inline(__always)
private func im2colLines(_ cols: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ g: ConvGeometry,
                         ld P: Int, width ow: Int) {
    let oh = g.outH, H = g.height, W = g.width, KH = g.kernelH, KW = g.kernelW
    var row = cols  // row (c·KH + kh)·KW + kw of the columns
    for c in 0..<g.channels {
        let plane = x + c &* H &* W
        for kh in 0..<KH {
            for kw in 0..<KW {
                var src = plane + (kh &* W &+ kw), line = row
                for _ in 0..<oh {
                    copyShort(line, src, count: ow)
                    src += W
                    line += ow
                }
                row += P
            }
        }
    }
}

/// Folds columns back into a sample, adding overlapping contributions: the
/// adjoint of `im2col`. Overwrites `x`.
/// - Parameters:
///   - x: (C, H, W)
///   - cols: (C·KH·KW, OH·OW), rows `ld` apart (default OH·OW).
func col2im(_ x: UnsafeMutablePointer<Float>, _ cols: UnsafePointer<Float>, _ g: ConvGeometry, ld: Int? = nil) {
    x.update(repeating: 0, count: g.channels * g.height * g.width)
    let oh = g.outH, ow = g.outW, P = ld ?? oh * ow
    if g.stride == 1 && g.padding == 0 {
        col2imUnitStride(x, cols, g, ld: P)
        return
    }
    var row = 0
    for c in 0..<g.channels {
        let plane = x + c * g.height * g.width
        for kh in 0..<g.kernelH {
            for kw in 0..<g.kernelW {
                let src = cols + row * P
                for i in 0..<oh {
                    let ih = i * g.stride - g.padding + kh
                    if ih < 0 || ih >= g.height { continue }
                    let dst = plane + ih * g.width
                    let line = src + i * ow
                    for j in 0..<ow {
                        let iw = j * g.stride - g.padding + kw
                        if iw >= 0 && iw < g.width { dst[iw] += line[j] }
                    }
                }
                row += 1
            }
        }
    }
}

/// `col2im` for stride 1 and no padding into a zeroed `x`: each column row
/// adds whole short lines, with explicit vector adds (the compiler's loop
/// checks at run time whether the two lines overlap, on every 10-float
/// line), the width a constant for LeNet's widths as in `im2colUnitStride`.
@inline(__always)
func col2imUnitStride(_ x: UnsafeMutablePointer<Float>, _ cols: UnsafePointer<Float>, _ g: ConvGeometry, ld P: Int) {
    switch g.outW {
    case 28: col2imLines(x, cols, g, ld: P, width: 28)
    case 10: col2imLines(x, cols, g, ld: P, width: 10)
    default: col2imLines(x, cols, g, ld: P, width: g.outW)
    }
}

@inline(__always)
private func col2imLines(_ x: UnsafeMutablePointer<Float>, _ cols: UnsafePointer<Float>, _ g: ConvGeometry,
                         ld P: Int, width ow: Int) {
    let oh = g.outH, H = g.height, W = g.width, KH = g.kernelH, KW = g.kernelW
    var row = cols  // row (c·KH + kh)·KW + kw of the columns
    for c in 0..<g.channels {
        let plane = x + c &* H &* W
        for kh in 0..<KH {
            for kw in 0..<KW {
                var dst = plane + (kh &* W &+ kw), line = row
                for _ in 0..<oh {
                    addShort(dst, line, count: ow)
                    dst += W
                    line += ow
                }
                row += P
            }
        }
    }
}

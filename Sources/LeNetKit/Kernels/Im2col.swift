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

// MARK: - Reference: direct convolution

/// The reference for `Conv2D`: a direct convolution of a batch.
/// - Parameters:
///   - y: (N, OC, OH, OW)
///   - x: (N, C, H, W)
///   - w: (OC, C, KH, KW)
///   - b: (OC)
func conv2dForwardNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>,
                               _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                               batch: Int, outChannels OC: Int, _ g: ConvGeometry) {
    let C = g.channels, H = g.height, W = g.width, OH = g.outH, OW = g.outW
    for n in 0..<batch {
        for oc in 0..<OC {
            for i in 0..<OH {
                for j in 0..<OW {
                    var sum = Double(b[oc])
                    for c in 0..<C {
                        for kh in 0..<g.kernelH {
                            for kw in 0..<g.kernelW {
                                let ih = i * g.stride - g.padding + kh
                                let iw = j * g.stride - g.padding + kw
                                if ih < 0 || ih >= H || iw < 0 || iw >= W { continue }
                                sum += Double(x[((n * C + c) * H + ih) * W + iw])
                                    * Double(w[((oc * C + c) * g.kernelH + kh) * g.kernelW + kw])
                            }
                        }
                    }
                    y[((n * OC + oc) * OH + i) * OW + j] = Float(sum)
                }
            }
        }
    }
}

/// The reference for `Conv2D`'s backward pass: overwrites dx, dw and db.
/// - Parameters:
///   - dx: (N, C, H, W)
///   - dw: (OC, C, KH, KW)
///   - db: (OC)
///   - dy: (N, OC, OH, OW)
///   - x: (N, C, H, W)
///   - w: (OC, C, KH, KW)
func conv2dBackwardNaive(_ dx: UnsafeMutablePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                                _ db: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                                batch: Int, outChannels OC: Int, _ g: ConvGeometry) {
    let C = g.channels, H = g.height, W = g.width, OH = g.outH, OW = g.outW
    let KH = g.kernelH, KW = g.kernelW
    var dxAcc = [Double](repeating: 0, count: batch * C * H * W)
    var dwAcc = [Double](repeating: 0, count: OC * C * KH * KW)
    var dbAcc = [Double](repeating: 0, count: OC)
    for n in 0..<batch {
        for oc in 0..<OC {
            for i in 0..<OH {
                for j in 0..<OW {
                    let g0 = Double(dy[((n * OC + oc) * OH + i) * OW + j])
                    dbAcc[oc] += g0
                    for c in 0..<C {
                        for kh in 0..<KH {
                            for kw in 0..<KW {
                                let ih = i * g.stride - g.padding + kh
                                let iw = j * g.stride - g.padding + kw
                                if ih < 0 || ih >= H || iw < 0 || iw >= W { continue }
                                let xi = ((n * C + c) * H + ih) * W + iw
                                let wi = ((oc * C + c) * KH + kh) * KW + kw
                                dwAcc[wi] += g0 * Double(x[xi])
                                dxAcc[xi] += g0 * Double(w[wi])
                            }
                        }
                    }
                }
            }
        }
    }
    for i in 0..<dxAcc.count { dx[i] = Float(dxAcc[i]) }
    for i in 0..<dwAcc.count { dw[i] = Float(dwAcc[i]) }
    for i in 0..<dbAcc.count { db[i] = Float(dbAcc[i]) }
}

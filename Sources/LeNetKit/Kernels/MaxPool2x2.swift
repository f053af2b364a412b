// The 2×2, stride-2 max pool's kernels, one plane at a time: forward,
// backward and the routes the fused convolution backward reads
// (Layers/MaxPool2D.swift is the layer; its general window is the reference).

/// One plane of 2×2, stride-2 max pooling: the maxima only, four windows
/// at a time in vector lanes.
/// - Parameters:
///   - y: (OH, OW)
///   - x: (H, W), H ≥ 2·OH, W ≥ 2·OW
@inline(__always)
func maxPool2x2(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, W: Int, OH: Int, OW: Int) {
    for i in 0..<OH {
        let r0 = x + 2 &* i &* W, r1 = r0 + W, out = y + i &* OW
        var j = 0
        while j &+ 4 <= OW {
            let w = PoolWindows(r0 + 2 &* j, r1 + 2 &* j)
            UnsafeMutableRawPointer(out + j).storeBytes(of: w.maxima, as: SIMD4<Float>.self)
            j &+= 4
        }
        while j < OW {
            let a = r0[2 &* j], b = r0[2 &* j &+ 1], c = r1[2 &* j], d = r1[2 &* j &+ 1]
            let top = b > a ? b : a, bottom = d > c ? d : c
            out[j] = bottom > top ? bottom : top
            j &+= 1
        }
    }
}

/// The gradient of `maxPool2x2` for rows 0..<2·OH of a plane: each window's
/// gradient goes to its argmax, found again from the input, the first
/// maximum in scan order as in PyTorch; its other three inputs get 0. Four
/// windows at a time in vector lanes, each window's two rows written whole
/// (no scattered stores, no zeroing pass): faster than a scalar argmax
/// and a scatter (docs/PERFORMANCE.md).
/// - Parameters:
///   - dx: (H, W); rows 0..<2·OH are overwritten
///   - dy: (OH, OW)
///   - x: (H, W)
@inline(__always)
func maxPool2x2Backward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                        W: Int, OH: Int, OW: Int) {
    let zero = SIMD4<Float>(repeating: 0)
    for i in 0..<OH {
        let r0 = x + 2 &* i &* W, r1 = r0 + W, grad = dy + i &* OW
        let d0 = dx + 2 &* i &* W, d1 = d0 + W
        var j = 0
        while j &+ 4 <= OW {
            let w = PoolWindows(r0 + 2 &* j, r1 + 2 &* j)
            let g = UnsafeRawPointer(grad + j).loadUnaligned(as: SIMD4<Float>.self)
            let top = .!w.bottomWins, bottom = w.bottomWins
            // Each input's share: the gradient where it is its window's argmax.
            let a = zero.replacing(with: g, where: top .& .!w.bWins), b = zero.replacing(with: g, where: top .& w.bWins)
            let c = zero.replacing(with: g, where: bottom .& .!w.dWins), d = zero.replacing(with: g, where: bottom .& w.dWins)
            UnsafeMutableRawPointer(d0 + 2 &* j).storeBytes(of: interleave(a, b), as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(d1 + 2 &* j).storeBytes(of: interleave(c, d), as: SIMD8<Float>.self)
            j &+= 4
        }
        while j < OW {
            let (bottom, right) = windowWinner(r0 + 2 &* j, r1 + 2 &* j), g = grad[j]
            d0[2 &* j] = !bottom && !right ? g : 0
            d0[2 &* j &+ 1] = !bottom && right ? g : 0
            d1[2 &* j] = bottom && !right ? g : 0
            d1[2 &* j &+ 1] = bottom && right ? g : 0
            j &+= 1
        }
        // An odd last column is in no window.
        for k in 2 &* OW..<W {
            d0[k] = 0
            d1[k] = 0
        }
    }
}

/// Where each window of 2×2, stride-2 max pooling takes its maximum: the
/// index into the plane of the input that `maxPool2x2Backward` gives the
/// window's gradient to (the first maximum in scan order). A convolution
/// followed by this pooling computes its backward pass from these routes
/// and the pooled gradient alone (`ConvMaxPoolBackward`).
/// - Parameters:
///   - route: (OH, OW) indices into the plane
///   - x: (H, W), H ≥ 2·OH, W ≥ 2·OW
@inline(__always)
func maxPool2x2Routes(_ route: UnsafeMutablePointer<Int32>, _ x: UnsafePointer<Float>, W: Int, OH: Int, OW: Int) {
    let one = SIMD4<Int32>(repeating: 1), zero = SIMD4<Int32>(repeating: 0)
    let rowStep = SIMD4<Int32>(repeating: Int32(W)), lanes = SIMD4<Int32>(0, 2, 4, 6)
    for i in 0..<OH {
        let r0 = x + 2 &* i &* W, r1 = r0 + W, out = route + i &* OW
        var j = 0
        while j &+ 4 <= OW {
            let w = PoolWindows(r0 + 2 &* j, r1 + 2 &* j)
            let right = (w.bottomWins .& w.dWins) .| (.!w.bottomWins .& w.bWins)
            let start = SIMD4<Int32>(repeating: Int32(2 &* i &* W &+ 2 &* j)) &+ lanes
            let at = start &+ zero.replacing(with: rowStep, where: w.bottomWins) &+ zero.replacing(with: one, where: right)
            UnsafeMutableRawPointer(out + j).storeBytes(of: at, as: SIMD4<Int32>.self)
            j &+= 4
        }
        while j < OW {
            let (bottom, right) = windowWinner(r0 + 2 &* j, r1 + 2 &* j)
            out[j] = Int32(2 &* i &* W &+ 2 &* j &+ (bottom ? W : 0) &+ (right ? 1 : 0))
            j &+= 1
        }
    }
}

/// Which input of one 2×2 window wins, one window at a time (the rows'
/// tails that `PoolWindows` does not cover): the bottom row or the top,
/// the right column or the left. Strict comparisons: ties go to the first
/// input in scan order.
/// - Parameters:
///   - top: the window's top row, (a, b).
///   - bottom: its bottom row, (c, d).
@inline(__always)
private func windowWinner(_ top: UnsafePointer<Float>, _ bottom: UnsafePointer<Float>) -> (bottom: Bool, right: Bool) {
    let a = top[0], b = top[1], c = bottom[0], d = bottom[1]
    let bWins = b > a, dWins = d > c
    let lower = (dWins ? d : c) > (bWins ? b : a)
    return (lower, lower ? dWins : bWins)
}

/// Four neighbouring 2×2 windows: which input of each wins, and the maxima.
/// Comparisons are strict, so ties go to the first input in scan order.
private struct PoolWindows {
    /// Per window: b beats a (top row), d beats c (bottom row), and the
    /// bottom row's winner beats the top row's.
    let bWins: SIMDMask<SIMD4<Int32>>, dWins: SIMDMask<SIMD4<Int32>>, bottomWins: SIMDMask<SIMD4<Int32>>
    let maxima: SIMD4<Float>

    /// - Parameters:
    ///   - top: 8 floats of the windows' top row, (a, b) per window.
    ///   - bottom: the 8 floats below them, (c, d) per window.
    @inline(__always)
    init(_ top: UnsafePointer<Float>, _ bottom: UnsafePointer<Float>) {
        let t = UnsafeRawPointer(top).loadUnaligned(as: SIMD8<Float>.self)
        let u = UnsafeRawPointer(bottom).loadUnaligned(as: SIMD8<Float>.self)
        let a = t.evenHalf, b = t.oddHalf, c = u.evenHalf, d = u.oddHalf
        bWins = b .> a
        dWins = d .> c
        let upper = a.replacing(with: b, where: bWins), lower = c.replacing(with: d, where: dWins)
        bottomWins = lower .> upper
        maxima = upper.replacing(with: lower, where: bottomWins)
    }
}

/// (a0, b0, a1, b1, a2, b2, a3, b3).
@inline(__always)
func interleave(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD8<Float> {
    SIMD8(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3])
}

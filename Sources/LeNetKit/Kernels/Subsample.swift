// LeNet-5's 2×2 subsampling (S2, S4) four windows at a time. A window's sum
// is (a + c) + (b + d) for its rows (a, b) over (c, d): the two rows are
// added as vectors, then the even and odd lanes. The scalar tail adds in the
// same order, so a window's bits do not depend on where it sits. The
// layer's generic loops (any window size) are the reference.

/// y = w·s + b for every 2×2 window sum s of one plane.
/// - Parameters:
///   - y: (OH, OW)
///   - x: (2·OH, W), W = 2·OW
@inline(__always)
func subsample2x2(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, W: Int, OH: Int, OW: Int,
                  weight w: Float, bias b: Float) {
    for i in 0..<OH {
        let r0 = x + 2 &* i &* W, r1 = r0 + W, out = y + i &* OW
        var j = 0
        while j &+ 4 <= OW {
            UnsafeMutableRawPointer(out + j).storeBytes(of: w * windowSums(r0 + 2 &* j, r1 + 2 &* j) + b, as: SIMD4<Float>.self)
            j &+= 4
        }
        while j < OW {
            out[j] = w * windowSum(r0 + 2 &* j, r1 + 2 &* j) + b
            j &+= 1
        }
    }
}

/// The backward pass of `subsample2x2` for one plane.
/// - Parameters:
///   - dx: (2·OH, W), overwritten with w·dy over each window, or nil.
///   - dy: (OH, OW)
///   - x: (2·OH, W)
/// - Returns: (Σ dy·s, Σ dy) over the plane: its share of dw and db.
@inline(__always)
func subsample2x2Backward(_ dx: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                          W: Int, OH: Int, OW: Int, weight w: Float) -> (weight: Float, bias: Float) {
    var dw = SIMD4<Float>(repeating: 0), db = SIMD4<Float>(repeating: 0)
    var dwTail: Float = 0, dbTail: Float = 0
    for i in 0..<OH {
        let r0 = x + 2 &* i &* W, r1 = r0 + W, grad = dy + i &* OW
        var j = 0
        while j &+ 4 <= OW {
            let g = UnsafeRawPointer(grad + j).loadUnaligned(as: SIMD4<Float>.self)
            dw += g * windowSums(r0 + 2 &* j, r1 + 2 &* j)
            db += g
            if let dx {
                let v = w * g, spread = interleave(v, v)
                let d0 = dx + 2 &* i &* W + 2 &* j
                UnsafeMutableRawPointer(d0).storeBytes(of: spread, as: SIMD8<Float>.self)
                UnsafeMutableRawPointer(d0 + W).storeBytes(of: spread, as: SIMD8<Float>.self)
            }
            j &+= 4
        }
        while j < OW {
            let g = grad[j]
            dwTail += g * windowSum(r0 + 2 &* j, r1 + 2 &* j)
            dbTail += g
            if let dx {
                let v = w * g, d0 = dx + 2 &* i &* W + 2 &* j
                d0[0] = v; d0[1] = v; d0[W] = v; d0[W &+ 1] = v
            }
            j &+= 1
        }
    }
    return (dw.sum() + dwTail, db.sum() + dbTail)
}

/// The sums of four 2×2 windows: 8 floats of a row pair.
@inline(__always)
private func windowSums(_ top: UnsafePointer<Float>, _ bottom: UnsafePointer<Float>) -> SIMD4<Float> {
    let columns = UnsafeRawPointer(top).loadUnaligned(as: SIMD8<Float>.self)
        + UnsafeRawPointer(bottom).loadUnaligned(as: SIMD8<Float>.self)
    return columns.evenHalf + columns.oddHalf
}

/// One window's sum, in `windowSums`' order.
@inline(__always)
private func windowSum(_ top: UnsafePointer<Float>, _ bottom: UnsafePointer<Float>) -> Float {
    (top[0] + bottom[0]) + (top[1] + bottom[1])
}

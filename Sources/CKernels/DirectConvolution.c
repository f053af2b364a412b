// Direct 5×5 convolutions (stride 1, no padding) with AVX2/FMA, for the
// small layers where im2col + sgemm wastes its vector lanes: an sgemm with
// as few output channels as LeNet-5's C1 (6) runs its 16- or 32-row
// register tiles mostly empty. Here a vector runs along an output row
// (8 positions), so the channel count does not matter. See
// Kernels/DirectConvolution.swift for when Conv2D uses them, measured.
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "AVX2.h"

// Lanes 0..<valid of a vector at p (valid in 1...8); the rest read as 0.
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE __m256 load_part(const float *p, __m256i mask, int full) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

// One output row of two output channels (or one, when pair is 0), NV
// vectors wide; the last vector holds OW − 8·(NV − 1) positions.
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
forward_row(float *y0, float *y1, const float *x, const float *w0, const float *w1, float b0, float b1,
            long C, long H, long W, long OW, int pair, const int NV) {
    __m256 a0[4], a1[4];
    const long tail = OW - 8 * (NV - 1);
    const __m256i mask = lane_mask(tail);
    const int full = tail == 8;
    for (int v = 0; v < NV; v++) { a0[v] = _mm256_set1_ps(b0); a1[v] = _mm256_set1_ps(b1); }
    for (long c = 0; c < C; c++) {
        for (int kh = 0; kh < 5; kh++) {
            const float *row = x + (c * H + kh) * W;
            const float *k0 = w0 + (c * 5 + kh) * 5, *k1 = w1 + (c * 5 + kh) * 5;
            for (int kw = 0; kw < 5; kw++) {
                const __m256 b = _mm256_broadcast_ss(k0 + kw);
                const __m256 d = _mm256_broadcast_ss(k1 + kw);
                for (int v = 0; v < NV; v++) {
                    const __m256 xv = v == NV - 1 ? load_part(row + kw + 8 * v, mask, full) : _mm256_loadu_ps(row + kw + 8 * v);
                    a0[v] = _mm256_fmadd_ps(b, xv, a0[v]);
                    if (pair) a1[v] = _mm256_fmadd_ps(d, xv, a1[v]);
                }
            }
        }
    }
    for (int v = 0; v < NV - 1; v++) {
        _mm256_storeu_ps(y0 + 8 * v, a0[v]);
        if (pair) _mm256_storeu_ps(y1 + 8 * v, a1[v]);
    }
    if (full) {
        _mm256_storeu_ps(y0 + 8 * (NV - 1), a0[NV - 1]);
        if (pair) _mm256_storeu_ps(y1 + 8 * (NV - 1), a1[NV - 1]);
    } else {
        _mm256_maskstore_ps(y0 + 8 * (NV - 1), mask, a0[NV - 1]);
        if (pair) _mm256_maskstore_ps(y1 + 8 * (NV - 1), mask, a1[NV - 1]);
    }
}

__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
forward_all(float *y, const float *x, const float *w, const float *b, long C, long H, long W, long OC, const int NV) {
    const long OH = H - 4, OW = W - 4;
    for (long oc = 0; oc < OC; oc += 2) {
        const int pair = oc + 1 < OC;
        const float *w0 = w + oc * C * 25, *w1 = pair ? w0 + C * 25 : w0;
        for (long i = 0; i < OH; i++) {
            float *y0 = y + (oc * OH + i) * OW;
            forward_row(y0, y0 + OH * OW, x + i * W, w0, w1, b[oc], pair ? b[oc + 1] : 0, C, H, W, OW, pair, NV);
        }
    }
}

__attribute__((target("avx2,fma")))
void lenet_conv5x5_avx2(float *y, const float *x, const float *w, const float *b, long C, long H, long W, long OC) {
    switch ((W - 4 + 7) / 8) {
    case 1: forward_all(y, x, w, b, C, H, W, OC, 1); break;
    case 2: forward_all(y, x, w, b, C, H, W, OC, 2); break;
    case 3: forward_all(y, x, w, b, C, H, W, OC, 3); break;
    case 4: forward_all(y, x, w, b, C, H, W, OC, 4); break;
    default: break;  // the caller checks OW ≤ 32
    }
}

// dw[oc, c, kh, 0..<5] += Σ_{i,j} dy[oc, i, j]·x[c, i + kh, j + kw] for two
// output channels (or one) and one (c, kh): ten sums in ten registers.
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
weight_gradient_row(float *dw0, float *dw1, const float *dy0, const float *dy1, const float *x,
                    long H, long W, long OH, long OW, int pair, const int NV) {
    __m256 a0[5], a1[5];
    for (int k = 0; k < 5; k++) { a0[k] = _mm256_setzero_ps(); a1[k] = _mm256_setzero_ps(); }
    const long tail = OW - 8 * (NV - 1);
    const __m256i mask = lane_mask(tail);
    const int full = tail == 8;
    for (long i = 0; i < OH; i++) {
        const float *row = x + i * W, *g0 = dy0 + i * OW, *g1 = dy1 + i * OW;
        for (int v = 0; v < NV; v++) {
            const int last = v == NV - 1;
            // The gradient's missing lanes are 0, so x's lanes past the row add nothing.
            const __m256 d0 = last ? load_part(g0 + 8 * v, mask, full) : _mm256_loadu_ps(g0 + 8 * v);
            const __m256 d1 = pair ? (last ? load_part(g1 + 8 * v, mask, full) : _mm256_loadu_ps(g1 + 8 * v)) : d0;
            for (int kw = 0; kw < 5; kw++) {
                const __m256 xv = last ? load_part(row + kw + 8 * v, mask, full) : _mm256_loadu_ps(row + kw + 8 * v);
                a0[kw] = _mm256_fmadd_ps(d0, xv, a0[kw]);
                if (pair) a1[kw] = _mm256_fmadd_ps(d1, xv, a1[kw]);
            }
        }
    }
    for (int kw = 0; kw < 5; kw++) {
        dw0[kw] += horizontal_sum(a0[kw]);
        if (pair) dw1[kw] += horizontal_sum(a1[kw]);
    }
    (void)H;
}

__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
weight_gradient_all(float *dw, const float *dy, const float *x, long C, long H, long W, long OC, const int NV) {
    const long OH = H - 4, OW = W - 4;
    for (long oc = 0; oc < OC; oc += 2) {
        const int pair = oc + 1 < OC;
        const float *dy0 = dy + oc * OH * OW;
        for (long c = 0; c < C; c++) {
            for (int kh = 0; kh < 5; kh++) {
                float *dw0 = dw + ((oc * C + c) * 5 + kh) * 5;
                weight_gradient_row(dw0, pair ? dw0 + C * 25 : dw0, dy0, pair ? dy0 + OH * OW : dy0,
                                    x + (c * H + kh) * W, H, W, OH, OW, pair, NV);
            }
        }
    }
}

__attribute__((target("avx2,fma")))
void lenet_conv5x5_weight_gradient_avx2(float *dw, const float *dy, const float *x, long C, long H, long W, long OC) {
    switch ((W - 4 + 7) / 8) {
    case 1: weight_gradient_all(dw, dy, x, C, H, W, OC, 1); break;
    case 2: weight_gradient_all(dw, dy, x, C, H, W, OC, 2); break;
    case 3: weight_gradient_all(dw, dy, x, C, H, W, OC, 3); break;
    case 4: weight_gradient_all(dw, dy, x, C, H, W, OC, 4); break;
    default: break;
    }
}

// The AVX-512 twin of forward_row: 16 positions a vector, every output's
// chain of FMAs the same as there (bias, then c, kh, kw in order), so the
// same bits; LeNet-5's C1 rows of 28 take two vectors instead of four.
__attribute__((target("avx512f,avx2,fma"))) static ALWAYS_INLINE void
forward_row16(float *y0, float *y1, const float *x, const float *w0, const float *w1, float b0, float b1,
              long C, long H, long W, long OW, int pair, const int NV) {
    __m512 a0[2], a1[2];
    const long tail = OW - 16 * (NV - 1);
    const __mmask16 mask = (__mmask16)((1u << tail) - 1);
    for (int v = 0; v < NV; v++) { a0[v] = _mm512_set1_ps(b0); a1[v] = _mm512_set1_ps(b1); }
    for (long c = 0; c < C; c++) {
        for (int kh = 0; kh < 5; kh++) {
            const float *row = x + (c * H + kh) * W;
            const float *k0 = w0 + (c * 5 + kh) * 5, *k1 = w1 + (c * 5 + kh) * 5;
            for (int kw = 0; kw < 5; kw++) {
                const __m512 b = _mm512_set1_ps(k0[kw]);
                const __m512 d = _mm512_set1_ps(k1[kw]);
                for (int v = 0; v < NV; v++) {
                    const __m512 xv = v == NV - 1 ? _mm512_maskz_loadu_ps(mask, row + kw + 16 * v)
                                                  : _mm512_loadu_ps(row + kw + 16 * v);
                    a0[v] = _mm512_fmadd_ps(b, xv, a0[v]);
                    if (pair) a1[v] = _mm512_fmadd_ps(d, xv, a1[v]);
                }
            }
        }
    }
    for (int v = 0; v < NV; v++) {
        const __mmask16 m = v == NV - 1 ? mask : (__mmask16)0xffff;
        _mm512_mask_storeu_ps(y0 + 16 * v, m, a0[v]);
        if (pair) _mm512_mask_storeu_ps(y1 + 16 * v, m, a1[v]);
    }
    (void)H;
}

__attribute__((target("avx512f,avx2,fma"))) static ALWAYS_INLINE void
forward_all16(float *y, const float *x, const float *w, const float *b, long C, long H, long W, long OC, const int NV) {
    const long OH = H - 4, OW = W - 4;
    for (long oc = 0; oc < OC; oc += 2) {
        const int pair = oc + 1 < OC;
        const float *w0 = w + oc * C * 25, *w1 = pair ? w0 + C * 25 : w0;
        for (long i = 0; i < OH; i++) {
            float *y0 = y + (oc * OH + i) * OW;
            forward_row16(y0, y0 + OH * OW, x + i * W, w0, w1, b[oc], pair ? b[oc + 1] : 0, C, H, W, OW, pair, NV);
        }
    }
}

__attribute__((target("avx512f,avx2,fma")))
void lenet_conv5x5_avx512(float *y, const float *x, const float *w, const float *b, long C, long H, long W, long OC) {
    switch ((W - 4 + 15) / 16) {
    case 1: forward_all16(y, x, w, b, C, H, W, OC, 1); break;
    case 2: forward_all16(y, x, w, b, C, H, W, OC, 2); break;
    default: break;  // the caller checks OW ≤ 32
    }
}

// The AVX-512 weight gradient: weight_gradient_row with 16 positions a
// vector. Its sums run in 16 lanes, not 8, so its bits are its own
// (DirectConvolutionTests bounds both against the definition).
__attribute__((target("avx512f,avx2,fma"))) static ALWAYS_INLINE void
weight_gradient_row16(float *dw0, float *dw1, const float *dy0, const float *dy1, const float *x,
                      long W, long OH, long OW, int pair, const int NV) {
    __m512 a0[5], a1[5];
    for (int k = 0; k < 5; k++) { a0[k] = _mm512_setzero_ps(); a1[k] = _mm512_setzero_ps(); }
    const long tail = OW - 16 * (NV - 1);
    const __mmask16 mask = (__mmask16)((1u << tail) - 1);
    for (long i = 0; i < OH; i++) {
        const float *row = x + i * W, *g0 = dy0 + i * OW, *g1 = dy1 + i * OW;
        for (int v = 0; v < NV; v++) {
            const __mmask16 m = v == NV - 1 ? mask : (__mmask16)0xffff;
            // The gradient's missing lanes are 0, so x's lanes past the row add nothing.
            const __m512 d0 = _mm512_maskz_loadu_ps(m, g0 + 16 * v);
            const __m512 d1 = pair ? _mm512_maskz_loadu_ps(m, g1 + 16 * v) : d0;
            for (int kw = 0; kw < 5; kw++) {
                const __m512 xv = _mm512_maskz_loadu_ps(m, row + kw + 16 * v);
                a0[kw] = _mm512_fmadd_ps(d0, xv, a0[kw]);
                if (pair) a1[kw] = _mm512_fmadd_ps(d1, xv, a1[kw]);
            }
        }
    }
    for (int kw = 0; kw < 5; kw++) {
        dw0[kw] += _mm512_reduce_add_ps(a0[kw]);
        if (pair) dw1[kw] += _mm512_reduce_add_ps(a1[kw]);
    }
}

__attribute__((target("avx512f,avx2,fma"))) static ALWAYS_INLINE void
weight_gradient_all16(float *dw, const float *dy, const float *x, long C, long H, long W, long OC, const int NV) {
    const long OH = H - 4, OW = W - 4;
    for (long oc = 0; oc < OC; oc += 2) {
        const int pair = oc + 1 < OC;
        const float *dy0 = dy + oc * OH * OW;
        for (long c = 0; c < C; c++) {
            for (int kh = 0; kh < 5; kh++) {
                float *dw0 = dw + ((oc * C + c) * 5 + kh) * 5;
                weight_gradient_row16(dw0, pair ? dw0 + C * 25 : dw0, dy0, pair ? dy0 + OH * OW : dy0,
                                      x + (c * H + kh) * W, W, OH, OW, pair, NV);
            }
        }
    }
}

__attribute__((target("avx512f,avx2,fma")))
void lenet_conv5x5_weight_gradient_avx512(float *dw, const float *dy, const float *x, long C, long H, long W, long OC) {
    switch ((W - 4 + 15) / 16) {
    case 1: weight_gradient_all16(dw, dy, x, C, H, W, OC, 1); break;
    case 2: weight_gradient_all16(dw, dy, x, C, H, W, OC, 2); break;
    default: break;
    }
}
#else
void lenet_conv5x5_weight_gradient_avx512(float *dw, const float *dy, const float *x, long C, long H, long W, long OC) {
    (void)dw; (void)dy; (void)x; (void)C; (void)H; (void)W; (void)OC;
}
void lenet_conv5x5_avx512(float *y, const float *x, const float *w, const float *b, long C, long H, long W, long OC) {
    (void)y; (void)x; (void)w; (void)b; (void)C; (void)H; (void)W; (void)OC;
}
void lenet_conv5x5_avx2(float *y, const float *x, const float *w, const float *b, long C, long H, long W, long OC) {
    (void)y; (void)x; (void)w; (void)b; (void)C; (void)H; (void)W; (void)OC;
}
void lenet_conv5x5_weight_gradient_avx2(float *dw, const float *dy, const float *x, long C, long H, long W, long OC) {
    (void)dw; (void)dy; (void)x; (void)C; (void)H; (void)W; (void)OC;
}
#endif

// The AVX-512 twin of ConvPoolReLU.c: the same 5×5 convolution + bias +
// 2×2 max pool + ReLU for one sample, a vector of 16 output channels at a
// time instead of 8. Each output value is the same chain of FMAs in the same
// order (over c, then ky, then kx) as in the AVX2 kernel, and the pooling
// the same max and add, so the two give the same bits: a CPU with AVX-512
// classifies exactly as one without it. With 32 registers a tile holds 10
// positions × 32 channels (20 accumulators) or 14 positions × 16 channels,
// and the CIFAR LeNet's rows (28 and 10 output positions) split into whole
// tiles.
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "AVX2.h"
#include "ConvRows.h"
#define TILE2 10  // positions per tile with two vectors of channels
#define TILE1 14  // with one
#define TARGET __attribute__((target("avx512f,avx2,fma")))

// out[t·ldo + 0..<16·NV] = Σ_{c, ky, kx} w[((c·5 + ky)·5 + kx)·ldw + 0..<16·NV] · x[(c·H + ky)·W + kx + t]
TARGET static ALWAYS_INLINE void
conv_tile512(float *out, long ldo, const float *x, const float *w, long ldw, long C, long H, long W,
             const int T, const int NV) {
    __m512 a0[TILE1], a1[TILE2];
    for (int t = 0; t < T; t++) a0[t] = _mm512_setzero_ps();
    for (int t = 0; t < T && NV > 1; t++) a1[t] = _mm512_setzero_ps();
    for (long c = 0; c < C; c++) {
        for (long ky = 0; ky < K5; ky++) {
            const float *row = x + (c * H + ky) * W;
            const float *wr = w + (c * K5 + ky) * K5 * ldw;
            UNROLL_FULLY
            for (long kx = 0; kx < K5; kx++) {
                const __m512 w0 = _mm512_loadu_ps(wr + kx * ldw);
                const __m512 w1 = NV > 1 ? _mm512_loadu_ps(wr + kx * ldw + 16) : _mm512_setzero_ps();
                const float *r = row + kx;
                for (int t = 0; t < T; t++) {
                    const __m512 v = _mm512_set1_ps(r[t]);
                    a0[t] = _mm512_fmadd_ps(w0, v, a0[t]);
                    if (NV > 1) a1[t] = _mm512_fmadd_ps(w1, v, a1[t]);
                }
            }
        }
    }
    for (int t = 0; t < T; t++) {
        _mm512_storeu_ps(out + t * ldo, a0[t]);
        if (NV > 1) _mm512_storeu_ps(out + t * ldo + 16, a1[t]);
    }
}

// The last 1–13 positions of a row: one tile of exactly that many.
#define REMAINDER_CASE(n) case n: conv_tile512(out, ldo, x, w, ldw, C, H, W, n, NV); break;
TARGET static ALWAYS_INLINE void
conv_remainder512(float *out, long ldo, const float *x, const float *w, long ldw, long C, long H, long W,
                  long count, const int NV) {
    switch (count) {
    REMAINDER_CASE(1) REMAINDER_CASE(2) REMAINDER_CASE(3) REMAINDER_CASE(4) REMAINDER_CASE(5)
    REMAINDER_CASE(6) REMAINDER_CASE(7) REMAINDER_CASE(8) REMAINDER_CASE(9)
    case 10: if (NV == 1) conv_tile512(out, ldo, x, w, ldw, C, H, W, 10, 1); break;
    case 11: if (NV == 1) conv_tile512(out, ldo, x, w, ldw, C, H, W, 11, 1); break;
    case 12: if (NV == 1) conv_tile512(out, ldo, x, w, ldw, C, H, W, 12, 1); break;
    case 13: if (NV == 1) conv_tile512(out, ldo, x, w, ldw, C, H, W, 13, 1); break;
    default: break;
    }
}

// One output row's positions [0, count) for channels [g, g + 16·NV).
TARGET static ALWAYS_INLINE void
conv_row512(float *out, long ldo, const float *x, const float *w, long ldw, long C, long H, long W,
            long count, const int NV) {
    const long tile = NV > 1 ? TILE2 : TILE1;
    long t = 0;
    for (; t + tile <= count; t += tile) conv_tile512(out + t * ldo, ldo, x + t, w, ldw, C, H, W, NV > 1 ? TILE2 : TILE1, NV);
    if (t < count) conv_remainder512(out + t * ldo, ldo, x + t, w, ldw, C, H, W, count - t, NV);
}

TARGET
void lenet_conv5x5_pool_relu_avx512(float *y, const float *x, const float *wp, const float *b,
                                    long C, long H, long W, long OC, long py0, long py1, float *rows) {
    const long OW = W - K5 + 1, PH = (H - K5 + 1) / 2, PW = OW / 2, CW = 2 * PW;
    // Groups of 32 channels, then 16, then 8, each over all the rows (its
    // packed weights stay in L1 while the rows pass).
    for (long g = 0; g < OC;) {
        const long width = OC - g >= 32 ? 32 : OC - g >= 16 ? 16 : 8;
        for (long py = py0; py < py1; py++) {
            for (long r = 0; r < 2; r++) {
                const float *xr = x + (2 * py + r) * W;
                float *out = rows + r * CW * OC;  // (CW, OC)
                if (width == 32) conv_row512(out + g, OC, xr, wp + g, OC, C, H, W, CW, 2);
                else if (width == 16) conv_row512(out + g, OC, xr, wp + g, OC, C, H, W, CW, 1);
                else conv_row(out + g, OC, xr, wp + g, OC, C, H, W, K5, CW, 1);
            }
            pool_relu_row(y, rows, b, OC, PH, PW, py, g, width);
        }
        g += width;
    }
}

// The convolution alone, as lenet_conv5x5_channels_last_avx2: row by row
// into the scratch (OW, OCp), then out to y (OC, OH, OW) with the bias.
TARGET
void lenet_conv5x5_channels_last_avx512(float *y, const float *x, const float *wp, const float *b,
                                        long C, long H, long W, long OC, long OCp, long oy0, long oy1, float *rows) {
    const long OH = H - K5 + 1, OW = W - K5 + 1;
    for (long oy = oy0; oy < oy1; oy++) {
        const float *xr = x + oy * W;
        long g = 0;
        for (; g + 32 <= OCp; g += 32) conv_row512(rows + g, OCp, xr, wp + g, OCp, C, H, W, OW, 2);
        for (; g + 16 <= OCp; g += 16) conv_row512(rows + g, OCp, xr, wp + g, OCp, C, H, W, OW, 1);
        if (g < OCp) conv_row(rows + g, OCp, xr, wp + g, OCp, C, H, W, K5, OW, 1);
        scatter_row(y, rows, b, OC, OCp, OH, OW, oy);
    }
}
#else
void lenet_conv5x5_channels_last_avx512(float *y, const float *x, const float *wp, const float *b,
                                        long C, long H, long W, long OC, long OCp, long oy0, long oy1, float *rows) {
    (void)y; (void)x; (void)wp; (void)b; (void)C; (void)H; (void)W; (void)OC; (void)OCp; (void)oy0; (void)oy1; (void)rows;
}

void lenet_conv5x5_pool_relu_avx512(float *y, const float *x, const float *wp, const float *b,
                                    long C, long H, long W, long OC, long py0, long py1, float *rows) {
    (void)y; (void)x; (void)wp; (void)b; (void)C; (void)H; (void)W; (void)OC; (void)py0; (void)py1; (void)rows;
}
#endif

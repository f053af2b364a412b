// A 5×5 convolution (stride 1, no padding) + bias + 2×2 max pool + ReLU for one
// sample, with AVX2/FMA: the forward-only stage the inference path runs for
// the CIFAR LeNet's conv → pool → ReLU pairs (Kernels/ConvPoolReLU.swift).
//
// The vector runs across output channels, not along a row: the weights are
// packed (C·K·K, OC), so one reduction step loads 16 output channels' weights
// as two vectors and multiplies them by one broadcast input value per output
// position. A tile of 6 positions × 16 channels keeps 12 accumulators in
// registers (AVX2 has 16), enough independent FMA chains to cover the FMA
// latency on two ports, at 8 loads per 12 FMAs. Each pair of output rows is
// pooled from a small row buffer while it is still in L1, so the
// convolution's full output map is never written.
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "AVX2.h"
#define TILE 6       // positions per tile with two vectors of channels (12 accumulators)
#define WIDE_TILE 12 // with one vector of channels
#define K5 5
#if defined(__clang__)
#define UNROLL_FULLY _Pragma("clang loop unroll(full)")
#else
#define UNROLL_FULLY
#endif

// out[t·ldo + 0..<8·NV] = Σ_{c, ky, kx} w[((c·K + ky)·K + kx)·ldw + 0..<8·NV] · x[(c·H + ky)·W + kx + t]
// for t < T: T output positions along a row, NV vectors of output channels.
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
conv_tile(float *out, long ldo, const float *x, const float *w, long ldw,
          long C, long H, long W, long K, const int T, const int NV) {
    __m256 a0[WIDE_TILE], a1[TILE];
    for (int t = 0; t < T; t++) a0[t] = _mm256_setzero_ps();
    for (int t = 0; t < T && NV > 1; t++) a1[t] = _mm256_setzero_ps();
    for (long c = 0; c < C; c++) {
        for (long ky = 0; ky < K; ky++) {
            const float *row = x + (c * H + ky) * W;
            const float *wr = w + (c * K + ky) * K * ldw;
            UNROLL_FULLY
            for (long kx = 0; kx < K; kx++) {
                const __m256 w0 = _mm256_loadu_ps(wr + kx * ldw);
                const __m256 w1 = NV > 1 ? _mm256_loadu_ps(wr + kx * ldw + 8) : _mm256_setzero_ps();
                // Hide that r[t] is the previous step's r[t + 1]: reusing
                // those broadcasts needs more registers than AVX2 has left
                // beside 12 accumulators, and the spills cost more than the
                // loads (the 6×16 tile ran at half the FMA peak with them).
                const float *r = row + kx;
                __asm__("" : "+r"(r));
                for (int t = 0; t < T; t++) {
                    const __m256 v = _mm256_broadcast_ss(r + t);
                    a0[t] = _mm256_fmadd_ps(w0, v, a0[t]);
                    if (NV > 1) a1[t] = _mm256_fmadd_ps(w1, v, a1[t]);
                }
            }
        }
    }
    for (int t = 0; t < T; t++) {
        _mm256_storeu_ps(out + t * ldo, a0[t]);
        if (NV > 1) _mm256_storeu_ps(out + t * ldo + 8, a1[t]);
    }
}

// One output row's positions [0, count) for channels [g, g + 8·NV), in tiles
// of 6 (of 12 first with one vector of channels: 12 accumulators either way).
__attribute__((target("avx2,fma"))) static ALWAYS_INLINE void
conv_row(float *out, long ldo, const float *x, const float *w, long ldw,
         long C, long H, long W, long K, long count, const int NV) {
    long t = 0;
    if (NV == 1)
        for (; t + WIDE_TILE <= count; t += WIDE_TILE) conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, WIDE_TILE, 1);
    for (; t + TILE <= count; t += TILE) conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, TILE, NV);
    switch (count - t) {
    case 5: conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, 5, NV); break;
    case 4: conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, 4, NV); break;
    case 3: conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, 3, NV); break;
    case 2: conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, 2, NV); break;
    case 1: conv_tile(out + t * ldo, ldo, x + t, w, ldw, C, H, W, K, 1, NV); break;
    default: break;
    }
}

__attribute__((target("avx2,fma")))
void lenet_conv5x5_pool_relu_avx2(float *y, const float *x, const float *wp, const float *b,
                                  long C, long H, long W, long OC, long py0, long py1, float *rows) {
    const long OW = W - K5 + 1, PH = (H - K5 + 1) / 2, PW = OW / 2, CW = 2 * PW;
    float lanes[8];
    // One group of 16 output channels (or a last one of 8) at a time over
    // all the rows: its packed weights (C·25·16 floats, 25.6 KB for conv2)
    // can stay in L1 while the rows pass, where both groups' (51 KB) cannot.
    // (In isolation the two orders measured within this machine's noise.)
    for (long g = 0; g < OC; g += 16) {
        const long width = OC - g >= 16 ? 16 : 8;
        for (long py = py0; py < py1; py++) {
            for (long r = 0; r < 2; r++) {
                const float *xr = x + (2 * py + r) * W;
                float *out = rows + r * CW * OC;  // (CW, OC)
                // K is a constant 5, so the kx loop unrolls.
                if (width == 16) conv_row(out + g, OC, xr, wp + g, OC, C, H, W, K5, CW, 2);
                else conv_row(out + g, OC, xr, wp + g, OC, C, H, W, K5, CW, 1);
            }
            const float *r0 = rows, *r1 = rows + CW * OC;
            for (long px = 0; px < PW; px++) {
                for (long v = g; v < g + width; v += 8) {
                    const long i = 2 * px * OC + v;
                    const __m256 top = _mm256_max_ps(_mm256_loadu_ps(r0 + i), _mm256_loadu_ps(r0 + i + OC));
                    const __m256 bottom = _mm256_max_ps(_mm256_loadu_ps(r1 + i), _mm256_loadu_ps(r1 + i + OC));
                    // Rounding is monotonic, so adding the bias after the max
                    // gives the bits of adding it to each of the four first.
                    const __m256 m = _mm256_add_ps(_mm256_max_ps(top, bottom), _mm256_loadu_ps(b + v));
                    // The ReLU layer's max(m, 0): 0 where 0 >= m, else m (NaN stays NaN, −0 becomes 0).
                    const __m256 off = _mm256_cmp_ps(_mm256_setzero_ps(), m, _CMP_GE_OQ);
                    _mm256_storeu_ps(lanes, _mm256_andnot_ps(off, m));
                    for (int l = 0; l < 8; l++) y[((v + l) * PH + py) * PW + px] = lanes[l];
                }
            }
        }
    }
}

// The convolution alone, for a layer whose output goes on to something
// other than a max pool (LeNet-5's C1 and C3, tanh next): row by row into
// the scratch (OW, OCp), then out to y in (OC, OH, OW) with the bias.
__attribute__((target("avx2,fma")))
void lenet_conv5x5_channels_last_avx2(float *y, const float *x, const float *wp, const float *b,
                                      long C, long H, long W, long OC, long OCp, long oy0, long oy1, float *rows) {
    const long OH = H - K5 + 1, OW = W - K5 + 1;
    for (long oy = oy0; oy < oy1; oy++) {
        const float *xr = x + oy * W;
        long g = 0;
        for (; g + 16 <= OCp; g += 16) conv_row(rows + g, OCp, xr, wp + g, OCp, C, H, W, K5, OW, 2);
        if (g < OCp) conv_row(rows + g, OCp, xr, wp + g, OCp, C, H, W, K5, OW, 1);
        for (long oc = 0; oc < OC; oc++) {
            float *out = y + (oc * OH + oy) * OW;
            const float bias = b[oc];
            for (long ox = 0; ox < OW; ox++) out[ox] = rows[ox * OCp + oc] + bias;
        }
    }
}

// packed (K, OC) = w (OC, K)ᵀ, OC a multiple of 8: 8×8 blocks transposed in
// registers: the scalar loop's strided stores took a seventh of a batch-1
// pass (docs/PERFORMANCE.md).
__attribute__((target("avx2,fma")))
void lenet_pack_channels_last_avx2(float *packed, const float *w, long OC, long K) {
    long k = 0;
    for (; k + 8 <= K; k += 8) {
        for (long oc = 0; oc < OC; oc += 8) {
            __m256 r[8], t[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(w + (oc + i) * K + k);
            // Rows i of the 8×8 block become its columns, in three rounds of shuffles.
            for (int i = 0; i < 8; i += 2) {
                t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
                t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
            }
            for (int i = 0; i < 8; i += 4) {
                r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
                r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
                r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
                r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
            }
            for (int i = 0; i < 4; i++) {
                t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
                t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
            }
            // t[j] is column j of the block: input k + j for output channels oc..<oc + 8.
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(packed + (k + j) * OC + oc, t[j]);
        }
    }
    for (; k < K; k++)
        for (long oc = 0; oc < OC; oc++) packed[k * OC + oc] = w[oc * K + k];
}

#else
void lenet_conv5x5_channels_last_avx2(float *y, const float *x, const float *wp, const float *b,
                                      long C, long H, long W, long OC, long OCp, long oy0, long oy1, float *rows) {
    (void)y; (void)x; (void)wp; (void)b; (void)C; (void)H; (void)W; (void)OC; (void)OCp; (void)oy0; (void)oy1; (void)rows;
}
void lenet_pack_channels_last_avx2(float *packed, const float *w, long OC, long K) {
    (void)packed; (void)w; (void)OC; (void)K;
}
void lenet_conv5x5_pool_relu_avx2(float *y, const float *x, const float *wp, const float *b,
                                  long C, long H, long W, long OC, long py0, long py1, float *rows) {
    (void)y; (void)x; (void)wp; (void)b; (void)C; (void)H; (void)W; (void)OC; (void)py0; (void)py1; (void)rows;
}
#endif

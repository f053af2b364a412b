// The backward pass of a 5×5 convolution (stride 1, no padding) for one
// sample, with AVX-512: the weight and input gradients without im2col or
// sgemm. LeNet-5's C3 (6 → 16 maps on 14×14, with its connection table)
// ran its backward as im2col + two sgemms of 16-wide products and col2im,
// a third of a training step; here the weight gradient runs with a vector
// across the 16 output maps, and the input gradient with a vector along
// an input row, skipping the pairs the table leaves out.
// Kernels/DirectConvolution.swift says where Conv2D uses it, measured.
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include "AVX2.h"  // ALWAYS_INLINE, immintrin.h

// Rows of the input gradient summed in registers at once: 7 makes
// C3's (and conv2's) 14 rows two whole blocks; 8 computed 16 (measured
// 0.247 against 0.228 ms for C3 at batch 36). conv5x5BackwardSizes in
// Swift rounds H to it.
#define ROWS 7

// The loops over kernel positions and rows must unroll for the
// accumulators to stay in registers; clang left these to run.
#define UNROLL _Pragma("clang loop unroll(full)")

// dwT[(c·25 + k)·OCp + g .. + 16] += Σ_p x[c, patch p, k] · dy[g .. g + 16, p]: 25
// accumulators, one per kernel position, each a chain over the positions.
__attribute__((target("avx512f,avx2,fma"))) static ALWAYS_INLINE void
weight_gradient_group(float *dwT, const float *dyT, const float *xc, long W, long OH, long OW, long OCp) {
    __m512 a[25];
    UNROLL for (int k = 0; k < 25; k++) a[k] = _mm512_setzero_ps();
    for (long i = 0; i < OH; i++) {
        for (long j = 0; j < OW; j++) {
            const __m512 d = _mm512_loadu_ps(dyT + (i * OW + j) * OCp);
            const float *xp = xc + i * W + j;
            UNROLL for (int kh = 0; kh < 5; kh++)
                UNROLL for (int kw = 0; kw < 5; kw++)
                    a[kh * 5 + kw] = _mm512_fmadd_ps(d, _mm512_set1_ps(xp[kh * W + kw]), a[kh * 5 + kw]);
        }
    }
    for (int k = 0; k < 25; k++) _mm512_storeu_ps(dwT + k * OCp, _mm512_add_ps(_mm512_loadu_ps(dwT + k * OCp), a[k]));
}

// Rows u0 ..< u0 + ROWS of dx[c], columns 16·v ..< 16·v + 16: each padded
// row of dy[oc] is loaded once per kernel column and feeds up to five of
// the rows (one per kernel row).
__attribute__((target("avx512f,avx2,fma"))) static ALWAYS_INLINE void
input_gradient_block(float *dxc, const float *pad, const float *w, const uint8_t *connected,
                     long C, long c, long H, long W, long OC, long PH, long PW, long u0, long v) {
    __m512 a[ROWS];
    UNROLL for (int b = 0; b < ROWS; b++) a[b] = _mm512_setzero_ps();
    for (long oc = 0; oc < OC; oc++) {
        if (connected && !connected[oc * C + c]) continue;
        const float *k = w + (oc * C + c) * 25;
        const float *rows = pad + oc * PH * PW + u0 * PW + 16 * v;
        UNROLL for (int kw = 0; kw < 5; kw++) {
            __m512 wk[5];
            UNROLL for (int kh = 0; kh < 5; kh++) wk[kh] = _mm512_set1_ps(k[kh * 5 + kw]);
            // Padded row u0 + t holds dy row u0 + t − 4: it meets dx row
            // u0 + b through kernel row kh = b − t + 4.
            UNROLL for (int t = 0; t < ROWS + 4; t++) {
                const __m512 row = _mm512_loadu_ps(rows + t * PW + 4 - kw);
                UNROLL for (int b = 0; b < ROWS; b++) {
                    const int kh = b - t + 4;
                    if (kh >= 0 && kh < 5) a[b] = _mm512_fmadd_ps(row, wk[kh], a[b]);
                }
            }
        }
    }
    const long rest = W - 16 * v;
    const __mmask16 lanes = rest >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << rest) - 1);
    for (int b = 0; b < ROWS && u0 + b < H; b++) _mm512_mask_storeu_ps(dxc + (u0 + b) * W + 16 * v, lanes, a[b]);
}

__attribute__((target("avx512f,avx2,fma")))
void lenet_conv5x5_backward_avx512(float *dwT, float *dx, const float *dy, const float *x, const float *w,
                                   long C, long H, long W, long OC, const uint8_t *connected, float *scratch) {
    const long OH = H - 4, OW = W - 4, P = OH * OW, OCp = (OC + 15) / 16 * 16;
    float *dyT = scratch;  // (P, OCp): dy with the maps last, the lanes past OC 0
    for (long p = 0; p < P; p++)
        for (long oc = 0; oc < OCp; oc++) dyT[p * OCp + oc] = oc < OC ? dy[oc * P + p] : 0;
    for (long c = 0; c < C; c++)
        for (long g = 0; g < OCp; g += 16)
            weight_gradient_group(dwT + c * 25 * OCp + g, dyT + g, x + c * H * W, W, OH, OW, OCp);
    if (!dx) return;

    // dy[oc] with four zero rows and columns before it, and zero rows after
    // it up to a whole number of ROWS blocks: (OC, PH, PW), and 16 floats
    // that the last row's vectors read past it.
    const long Hr = (H + ROWS - 1) / ROWS * ROWS, PH = Hr + 4, PW = W + 4;
    float *pad = scratch + P * OCp;
    for (long i = 0; i < OC * PH * PW + 16; i++) pad[i] = 0;
    for (long oc = 0; oc < OC; oc++)
        for (long i = 0; i < OH; i++)
            for (long j = 0; j < OW; j++) pad[(oc * PH + i + 4) * PW + 4 + j] = dy[(oc * OH + i) * OW + j];
    for (long c = 0; c < C; c++)
        for (long u0 = 0; u0 < H; u0 += ROWS)
            for (long v = 0; v < (W + 15) / 16; v++)
                input_gradient_block(dx + c * H * W, pad, w, connected, C, c, H, W, OC, PH, PW, u0, v);
}
#else
void lenet_conv5x5_backward_avx512(float *dwT, float *dx, const float *dy, const float *x, const float *w,
                                   long C, long H, long W, long OC, const uint8_t *connected, float *scratch) {
    (void)dwT; (void)dx; (void)dy; (void)x; (void)w; (void)C; (void)H; (void)W; (void)OC; (void)connected; (void)scratch;
}
#endif

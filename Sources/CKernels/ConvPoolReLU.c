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
#include "ConvRows.h"

__attribute__((target("avx2,fma")))
void lenet_conv5x5_pool_relu_avx2(float *y, const float *x, const float *wp, const float *b,
                                  long C, long H, long W, long OC, long py0, long py1, float *rows) {
    const long OW = W - K5 + 1, PH = (H - K5 + 1) / 2, PW = OW / 2, CW = 2 * PW;
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
            pool_relu_row(y, rows, b, OC, PH, PW, py, g, width);
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
        scatter_row(y, rows, b, OC, OCp, OH, OW, oy);
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
